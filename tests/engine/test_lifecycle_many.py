"""`ngcws start` / `stop` / `restart` of several workspaces against the real engine: like `up`,
every workspace is tried (in parallel, output in the file's order, lines naming the workspace), a
failure is named after its workspace and does not stop the others, and `stop` of a container that
is not running leaves it as it is but records it (intent.py), while a workspace without one is not
recorded."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.conftest import Workspace
from tests.engine.test_parallel_apply import states, workspaces


def verb_lines(stderr: bytes, verb: str) -> list[str]:
    return [line for line in stderr.decode().splitlines() if line.split()[:1] == [verb]]


def test_start_tries_every_workspace_and_names_the_one_that_failed(project: Workspace, testbed: dict[str, str]) -> None:
    names = [f"w{i}" for i in range(6)]
    data = project.dir / "data-w2"
    data.mkdir()
    project.write(
        workspaces(
            testbed,
            names,
            {"w2": f"    mounts: [{{type: bind, source: '{data}', target: /data, create_host_path: true}}]\n"},
        )
    )
    project.ok("up")
    stop = project.ngcws("stop", env={"NGCWS_PARALLEL_LIMIT": "8"})
    assert stop.returncode == 0, stop.stderr.decode()
    assert verb_lines(stop.stderr, "stop") == [f"stop {n}" for n in names]  # the file's order, workspace names
    shutil.rmtree(data)  # w2 can no longer start: its bind mount's source is gone

    result = project.ngcws("start", env={"NGCWS_PARALLEL_LIMIT": "8"})
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert "error: w2: " in err and "Everything else was applied" in err, err
    assert verb_lines(result.stderr, "start") == [f"start {n}" for n in names]
    assert states(project) == {n: "exited" if n == "w2" else "running" for n in names}
    rows = {row["workspace"]: row for row in json.loads(project.ok("ps", "--format", "json"))}
    assert not any(row["stopped_by_user"] for row in rows.values())  # `start` was asked for all of them

    restart = project.ngcws("restart", "w4", "w1", "w2")
    assert restart.returncode == 1 and "error: w2: " in restart.stderr.decode(), restart.stderr.decode()
    assert verb_lines(restart.stderr, "restart") == ["restart w1", "restart w2", "restart w4"]
    assert states(project) == {n: "exited" if n == "w2" else "running" for n in names}


def test_stop_of_a_container_already_down_only_records_it_and_nothing_is_recorded_without_one(
    project: Workspace, testbed: dict[str, str]
) -> None:
    from ngcws.intent import stopped

    project.write(workspaces(testbed, ["a", "b", "c", "d"]))
    project.ok("up", "a", "b", "c")  # d has no container
    b = next(c for c in project.containers() if c["Labels"]["ngcws.workspace"] == "b")  # type: ignore[index]
    subprocess.run(["docker", "stop", "-t", "1", str(b["Id"])], check=True, capture_output=True)  # exited on its own
    result = project.ngcws("stop")
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert verb_lines(result.stderr, "stop") == ["stop a", "stop c"]
    assert "b is not running (exited): nothing to stop; it stays down" in err, err
    assert "workspace 'd' has no container" in err, err
    rows = {row["workspace"]: row for row in json.loads(project.ok("ps", "--format", "json"))}
    assert {n: (rows[n]["state"], rows[n]["stopped_by_user"]) for n in "abc"} == dict.fromkeys("abc", ("exited", True))
    assert stopped(project.name, str(project.dir.resolve())) == {"a", "b", "c"}  # not d: a watcher creates it
