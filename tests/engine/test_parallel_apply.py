"""`up` and `down` apply independent workspaces at the same time (parallel.py) against the real
engine: a workspace that fails does not stop the others, every failure is named, output stays in
the file's order, a workspace joining another's network waits for it, and Ctrl-C mid-way leaves
nothing that the next `up` does not repair."""

from __future__ import annotations

import json
import os
import signal
import subprocess

from tests.conftest import NGCWS, Workspace


def workspaces(testbed: dict[str, str], names: list[str], extra: dict[str, str] | None = None) -> str:
    body = "workspaces:\n"
    for name in names:
        body += f"  {name}:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    command: [sleep, infinity]\n"
        body += (extra or {}).get(name, "")
    return body


def states(project: Workspace) -> dict[str, str]:
    return {c["Labels"]["ngcws.workspace"]: str(c["State"]) for c in project.containers()}  # type: ignore[index]


def action_lines(stderr: bytes) -> list[str]:
    return [
        " ".join(line.split()[:2])
        for line in stderr.decode().splitlines()
        if line.split()[:1] in (["create"], ["start"], ["remove"])
    ]


def test_failing_workspaces_do_not_stop_the_others_and_each_is_named(
    project: Workspace, testbed: dict[str, str]
) -> None:
    names = [f"w{i}" for i in range(8)]
    broken = {
        "w2": "    init: false\n    entrypoint: [/no-such-program-w2]\n",
        "w5": "    init: false\n    entrypoint: [/no-such-program-w5]\n",
    }
    project.write(workspaces(testbed, names, broken))
    result = project.ngcws("up", env={"NGCWS_PARALLEL_LIMIT": "8"})
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert "w2, w5 failed" in err and "no-such-program-w2" in err and "no-such-program-w5" in err
    assert "Everything else was applied" in err
    assert states(project) == {n: "created" if n in broken else "running" for n in names}
    # whole lines, in the file's order, as if applied one by one
    expected = [f"{verb} {n}:" for n in names for verb in ("create", "start")]
    assert action_lines(result.stderr) == expected

    project.write(workspaces(testbed, names))  # fixed: the next up repairs only those two
    again = project.ngcws("up")
    assert again.returncode == 0, again.stderr.decode()
    assert set(states(project).values()) == {"running"}

    down = project.ngcws("down", env={"NGCWS_PARALLEL_LIMIT": "8"})
    assert down.returncode == 0, down.stderr.decode()
    assert action_lines(down.stderr) == [f"remove {n}:" for n in names]
    assert project.containers() == []


def test_one_failure_among_many_keeps_its_own_error_named_after_its_workspace(
    project: Workspace, testbed: dict[str, str]
) -> None:
    project.write(workspaces(testbed, ["a", "b", "c"], {"b": "    init: false\n    entrypoint: [/no-such-program]\n"}))
    result = project.ngcws("up")
    err = result.stderr.decode()
    assert result.returncode == 1 and "error: b: " in err and "no-such-program" in err, err
    assert "Everything else was applied" in err
    assert states(project) == {"a": "running", "b": "created", "c": "running"}


def test_a_workspace_joining_anothers_network_waits_for_it(project: Workspace, testbed: dict[str, str]) -> None:
    net = f"{project.name}-net"
    joins = {"app": f"    network_mode: container:{net}\n"}
    project.write(workspaces(testbed, ["app", "other", "net"], joins))  # app comes first in the file
    result = project.ngcws("up", env={"NGCWS_PARALLEL_LIMIT": "8"})
    assert result.returncode == 0, result.stderr.decode()
    assert states(project) == {"app": "running", "other": "running", "net": "running"}
    down = project.ngcws("down")
    assert down.returncode == 0, down.stderr.decode()
    assert project.containers() == []

    project.write(
        workspaces(testbed, ["app", "net"], {**joins, "net": "    init: false\n    entrypoint: [/no-such-program]\n"})
    )
    failed = project.ngcws("up")
    err = failed.stderr.decode()
    assert failed.returncode == 1 and "app: not applied: it joins the network of net, which failed" in err, err
    assert states(project) == {"net": "created"}


def test_ctrl_c_during_a_parallel_up_leaves_what_the_next_up_repairs(
    project: Workspace, testbed: dict[str, str]
) -> None:
    names = [f"w{i}" for i in range(6)]
    slow = "    init: false\n    stop_grace_period: 5s\n"  # sleep as PID 1 ignores SIGTERM: each stop takes 5 s
    project.write(workspaces(testbed, names, dict.fromkeys(names, slow)))
    project.ok("up")
    project.write(workspaces(testbed, names, dict.fromkeys(names, slow + "    env: {CHANGED: '1'}\n")))
    process = subprocess.Popen(
        [*NGCWS, "up"], cwd=project.dir, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        env={**os.environ, "NGCWS_PARALLEL_LIMIT": "4"},
    )  # fmt: skip
    assert process.stderr is not None
    first = process.stderr.readline()  # announced once begun: four workers are now stopping old containers
    assert first.startswith(b"recreate"), first
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)  # twice, as `timeout -s INT` does (to the process and its group)
    rest = process.stderr.read()
    process.stderr.close()
    assert process.wait(60) == 130 and b"Traceback" not in rest, rest
    assert b"interrupted" in rest
    # Every recreate that began is told, in the file's order; every other workspace is named.
    told = [line.split()[1].rstrip(":") for line in (first + rest).decode().splitlines() if line.startswith("recreate")]
    assert told == sorted(told, key=names.index) and len(told) > 1, rest
    changed = {
        c["Labels"]["ngcws.workspace"]  # type: ignore[index]
        for c in project.containers()
        if json.loads(c["Labels"]["ngcws.spec"])["env"].get("CHANGED") == "1"  # type: ignore[index]
    }
    assert changed <= set(told), rest
    untold = [n for n in names if n not in told]
    if untold:
        assert f"not begun: {', '.join(untold)} (`ngcws up` applies them)".encode() in rest, rest
    again = project.ngcws("up")
    assert again.returncode == 0, again.stderr.decode()
    containers = project.containers()
    assert states(project) == dict.fromkeys(names, "running")
    assert sorted(c["Names"][0] for c in containers) == sorted(f"/{project.name}-{n}" for n in names)  # type: ignore[index]
    assert all(json.loads(c["Labels"]["ngcws.spec"])["env"].get("CHANGED") == "1" for c in containers)  # type: ignore[index]


def test_a_workspace_in_anothers_network_follows_its_recreation(project: Workspace, testbed: dict[str, str]) -> None:
    """The engine keeps the id of the container a workspace joined: recreating the parent alone
    would leave the dependent with no network (and unable to start again)."""
    net = f"{project.name}-net"
    joins = {"app": f"    network_mode: container:{net}\n"}
    project.write(workspaces(testbed, ["net", "app"], joins))
    assert project.ngcws("up").returncode == 0

    def joined() -> tuple[str, str]:
        found = {c["Labels"]["ngcws.workspace"]: c for c in project.containers()}  # type: ignore[index]
        return str(found["net"]["Id"]), str(found["app"]["HostConfig"]["NetworkMode"])  # type: ignore[index]

    parent, mode = joined()
    assert mode == f"container:{parent}"
    project.write(workspaces(testbed, ["net", "app"], {**joins, "net": "    env: {X: '1'}\n"}))
    planned = project.ngcws("plan")
    plan = planned.stdout.decode() + planned.stderr.decode()
    assert f"recreate   app: joins the network namespace of {net}, which is replaced" in plan, plan
    result = project.ngcws("up")
    assert result.returncode == 0, result.stderr.decode()
    new_parent, mode = joined()
    assert new_parent != parent and mode == f"container:{new_parent}"
    assert states(project) == {"net": "running", "app": "running"}
    # Replaced behind ngcws's back (docker rm -f, then an up of the parent alone): found by the id.
    subprocess.run(["docker", "rm", "-f", net], check=True, capture_output=True)
    assert project.ngcws("up", "net").returncode == 0
    result = project.ngcws("up")
    assert result.returncode == 0 and b"replaced since" in result.stderr, result.stderr
    newest, mode = joined()
    assert mode == f"container:{newest}" and states(project) == {"net": "running", "app": "running"}
