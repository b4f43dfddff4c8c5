"""Engine states and odd situations against the real engine: paused containers, failed starts,
one-off containers, moved project folders, `run` without a command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ngcws.engine import Engine
from tests.conftest import Workspace, memlock_is_allowed
from tests.engine.test_reconcile import ngc, one


def pause(container_id: str) -> None:
    response = Engine().transport.request("POST", f"/containers/{container_id}/pause")
    assert response.status == 204, response.error_message()
    response.read()


def test_a_paused_workspace_is_unpaused_by_up_and_start_not_refused(
    project: Workspace, testbed: dict[str, str]
) -> None:
    project.write(ngc(testbed, image=testbed["NGCWS_TB_TINY"]))
    project.ok("up")
    first = one(project)["Id"]
    pause(first)
    assert "unpause    train: " in project.ok("plan") and one(project)["State"] == "paused"
    result = project.ngcws("up")
    assert result.returncode == 0 and b"unpause" in result.stderr, result.stderr
    assert (one(project)["Id"], one(project)["State"]) == (first, "running")
    pause(first)
    exec_refused = project.ngcws("exec", "true")
    assert exec_refused.returncode == 1 and b"paused" in exec_refused.stderr and b"ngcws start" in exec_refused.stderr
    result = project.ngcws("start")
    assert result.returncode == 0, result.stderr
    assert (one(project)["Id"], one(project)["State"]) == (first, "running")
    pause(first)
    assert project.ngcws("stop").returncode == 0 and one(project)["State"] == "exited"
    project.ok("start")
    pause(first)
    project.ok("down")
    assert project.containers() == []


def test_ps_says_that_the_last_start_failed_and_why(project: Workspace, testbed: dict[str, str]) -> None:
    """This test bed cannot raise memlock (testbed.md): a real start failure, kept by the engine."""
    project.write(ngc(testbed, "    ulimits: {memlock: -1}\n", image=testbed["NGCWS_TB_TINY"]))
    if memlock_is_allowed(testbed):
        project.ok("up")
        row = json.loads(project.ok("ps", "--format", "json"))[0]
        assert row["state"] == "running" and row["error"] == ""
        return
    # The preflight refuses this before creating anything; skipped, the engine's refusal is real.
    assert project.ngcws("up", "--skip-preflight").returncode == 1
    row = json.loads(project.ok("ps", "--format", "json"))[0]
    assert row["state"] == "created" and row["drift"] == "up to date"
    assert row["status"].startswith("start failed: ") and "rlimit type 8" in row["status"], row
    assert "error setting rlimit type 8: operation not permitted" in row["error"]
    table = project.ok("ps")
    assert "start failed: " in table and "rlimit" in table
    refused = project.ngcws("exec", "true")
    assert refused.returncode == 1 and b"is not running (created); its last start failed: " in refused.stderr
    assert "start      train: " in project.ok("plan")  # up tries again (and explains it again)


def test_a_moved_project_folder_is_explained_and_taken_over(
    make_project: Callable[[str], Workspace], testbed: dict[str, str]
) -> None:
    old = make_project("movable")
    (old.dir / "data").mkdir()
    old.write(ngc(testbed, "    mounts: ['./data:/data']\n", image=testbed["NGCWS_TB_TINY"]))
    old.ok("up")
    before = one(old)["Id"]
    new = Workspace(old.dir.parent.parent / "moved-here" / "movable", "movable")
    new.dir.parent.mkdir()
    old.dir.rename(new.dir)
    for command in (("up",), ("exec", "true")):
        result = new.ngcws(*command)
        err = result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in err, err
        assert f"made in {old.dir}, which no longer has its ngcws.yaml" in err and "ngcws up --take-over" in err
    result = new.ngcws("down")
    assert result.returncode == 0 and b"ngcws down --take-over" in result.stderr
    assert one(new)["Id"] == before  # nothing removed without being asked
    row = json.loads(new.ok("ps", "--format", "json"))[-1]
    assert row["drift"] == f"left in {old.dir}, moved? (ngcws up --take-over)"
    result = new.ngcws("up", "--take-over")
    assert result.returncode == 0 and f"taken over from {old.dir}".encode() in result.stderr, result.stderr
    after = one(new)
    assert after["Id"] != before and after["Labels"]["ngcws.project-dir"] == str(new.dir)
    assert new.ok("exec", "sh", "-c", "touch /data/x && echo ok") == "ok\n" and (new.dir / "data" / "x").exists()
    assert "nothing to do" in new.ok("plan")
    new.ok("down")
    assert new.containers() == []


def make_dead(container_id: str) -> Path:
    """A real dead container: its removal fails on an immutable file in its writable layer (as a
    busy or broken storage driver makes it fail). Returns the file, to be made mutable again."""
    engine = Engine()
    found = engine.inspect_container(container_id)
    assert found is not None
    upper = Path(found["GraphDriver"]["Data"]["UpperDir"])
    stuck = upper / "stuck"
    stuck.write_text("x")
    subprocess.run(["chattr", "+i", str(stuck)], check=True)
    response = engine.transport.request("DELETE", f"/containers/{container_id}", params={"force": True})
    assert response.status == 500, response.status
    response.read()
    state = engine.inspect_container(container_id)
    assert state is not None and state["State"]["Status"] == "dead"
    return stuck


@pytest.fixture
def can_make_dead(testbed: dict[str, str]) -> None:
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("making a container dead needs root and chattr on the engine's machine")


@pytest.mark.parametrize("command", ["up", "start"])
def test_a_dead_workspace_is_recreated_not_started(
    project: Workspace, testbed: dict[str, str], can_make_dead: None, command: str
) -> None:
    project.write(ngc(testbed, image=testbed["NGCWS_TB_TINY"]))
    project.ok("up")
    dead = one(project)["Id"]
    stuck = make_dead(dead)
    try:
        assert one(project)["State"] in ("dead", "removing")  # 20.10's list still says removing
        assert "is dead (it cannot be started)" in project.ok("plan")
        row = json.loads(project.ok("ps", "--format", "json"))[0]
        assert row["state"] == "dead" and row["status"].startswith("removal failed: "), row
        subprocess.run(["chattr", "-i", str(stuck)], check=True)  # its removal can succeed now
        result = project.ngcws(command)
        assert result.returncode == 0 and b"recreate" in result.stderr, result.stderr
        assert one(project)["Id"] != dead and one(project)["State"] == "running"
        assert Engine().inspect_container(dead) is None
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=False, capture_output=True)


def test_ps_says_which_workspace_ngcws_stop_stopped(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        f"  serve:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
    )
    project.ok("up")
    project.ok("stop", "train")
    serve = next(c for c in project.containers() if c["Labels"]["ngcws.workspace"] == "serve")
    subprocess.run(["docker", "stop", "-t", "1", str(serve["Id"])], check=True, capture_output=True)  # not ours
    rows = {row["workspace"]: row for row in json.loads(project.ok("ps", "--format", "json"))}
    assert rows["train"]["state"] == "exited" and rows["train"]["stopped_by_user"] is True
    assert "stopped by `ngcws stop`; `ngcws start` or `up` brings it back" in rows["train"]["status"]
    assert rows["serve"]["state"] == "exited" and rows["serve"]["stopped_by_user"] is False
    table = project.ok("ps").splitlines()
    assert "stopped by `ngcws stop`" in next(line for line in table if line.startswith("train "))
    assert "ngcws stop" not in next(line for line in table if line.startswith("serve "))
    project.ok("start", "train")
    rows = {row["workspace"]: row for row in json.loads(project.ok("ps", "--format", "json"))}
    assert rows["train"]["state"] == "running" and rows["train"]["stopped_by_user"] is False
