"""The fields beyond NVIDIA's guide and override files, on the real engine."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ngcws.engine import Engine
from tests.conftest import Workspace, docker_cli_available


def body(testbed: dict[str, str], extra: str = "") -> str:
    return f"workspaces:\n  w:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n{extra}"


def inspect(project: Workspace) -> dict[str, Any]:
    (found,) = project.containers()
    inspected = Engine().inspect_container(str(found["Id"]))
    assert inspected is not None
    return inspected


def test_editing_the_override_file_recreates_naming_the_field(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(body(testbed, "    cap_add: [IPC_LOCK]\n"))
    project.ok("up")
    first = inspect(project)["Id"]
    override = project.dir / "ngcws.override.yaml"
    override.write_text("workspaces:\n  w:\n    cap_add: [SYS_NICE]\n    tmpfs: [/scratch]\n")
    result = project.ngcws("up")
    assert result.returncode == 0, result.stderr
    assert 'recreate   w: cap_add: + CAP_SYS_NICE; tmpfs./scratch unset → ""' in result.stderr.decode()
    after = inspect(project)
    assert after["Id"] != first and after["State"]["Running"]
    assert after["HostConfig"]["CapAdd"] == ["CAP_IPC_LOCK", "CAP_SYS_NICE"]
    assert project.ok("up") is not None and len(project.containers()) == 1
    assert b"up to date" in project.ngcws("up").stderr
    override.unlink()  # the override goes away: back to what ngcws.yaml says
    project.ok("up")
    assert inspect(project)["HostConfig"]["CapAdd"] == ["CAP_IPC_LOCK"]


@pytest.fixture
def networks(testbed: dict[str, str]) -> Iterator[list[str]]:
    if not docker_cli_available():
        pytest.skip("needs the docker CLI to make networks")
    label = f"ngcws.test={uuid.uuid4().hex}"
    names = [f"ngcwsnet{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        subprocess.run(["docker", "network", "create", "--label", label, name], check=True, capture_output=True)
    yield sorted(names)
    for name in names:  # the project's container is still attached here (its fixture ends later)
        found = subprocess.run(
            ["docker", "network", "inspect", "--format", "{{range $id, $c := .Containers}}{{$id}} {{end}}", name],
            capture_output=True,
            text=True,
        )
        for container in found.stdout.split():
            subprocess.run(["docker", "network", "disconnect", "-f", name, container], capture_output=True)
        subprocess.run(["docker", "network", "rm", name], capture_output=True)


def test_networks_joins_every_network_before_start(
    project: Workspace, testbed: dict[str, str], networks: list[str]
) -> None:
    project.write(body(testbed, f"    networks: [{networks[1]}, {networks[0]}]\n"))
    project.ok("up")
    joined = inspect(project)["NetworkSettings"]["Networks"]
    assert sorted(joined) == networks
    assert all(joined[n]["IPAddress"] for n in networks)  # connected while running


def test_a_network_that_does_not_exist_is_the_engines_refusal(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(body(testbed, "    networks: [no-such-net-ngcws]\n"))
    result = project.ngcws("up")
    assert result.returncode == 1
    assert b"no-such-net-ngcws" in result.stderr and b"Traceback" not in result.stderr
    assert project.containers() == []


def test_a_combination_is_refused_before_anything_is_touched(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(body(testbed, "    ports: ['8888:8888']\n"))
    (project.dir / "ngcws.override.yaml").write_text("workspaces:\n  w:\n    network_mode: host\n")
    result = project.ngcws("up")
    assert result.returncode == 2
    assert b"ports cannot be published with network_mode: host" in result.stderr
    assert b"network_mode at ngcws.override.yaml:3:19" in result.stderr
    assert project.containers() == []


def test_ps_tells_a_healthy_workspace(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(body(testbed, "    healthcheck: {test: 'test -e /tmp/ready', interval: 1s, retries: 1}\n"))
    project.ok("up")
    project.ok("exec", "touch", "/tmp/ready")
    for _ in range(60):  # the engine runs the check every second; wait for its verdict, not for a time
        rows = json.loads(project.ok("ps", "--format", "json"))
        if rows[0]["health"] != "starting":
            break
        time.sleep(0.5)
    assert rows[0]["health"] == "healthy"
    project.ok("exec", "rm", "/tmp/ready")
    for _ in range(60):
        rows = json.loads(project.ok("ps", "--format", "json"))
        if rows[0]["health"] == "unhealthy":
            break
        time.sleep(0.5)
    assert rows[0]["health"] == "unhealthy"
    assert "HEALTH" in project.ok("ps").splitlines()[0]


def test_equivalent_spellings_keep_the_container(project: Workspace, testbed: dict[str, str]) -> None:
    """`stop_signal: INT` is SIGINT; `runtime: runc` on an engine whose default is runc is no runtime."""
    project.write(body(testbed, "    stop_signal: SIGINT\n"))
    project.ok("up")
    first = inspect(project)
    assert first["Config"]["StopSignal"] == "SIGINT"
    default = Engine().info()["DefaultRuntime"]
    for extra in ("    stop_signal: INT\n", "    stop_signal: 2\n", f"    stop_signal: int\n    runtime: {default}\n"):
        project.write(body(testbed, extra))
        assert "nothing to do" in project.ok("plan"), extra
        result = project.ngcws("up")
        assert result.returncode == 0 and b"recreate" not in result.stderr, result.stderr
    assert inspect(project)["Id"] == first["Id"]
    # A real change still recreates.
    project.write(body(testbed, "    stop_signal: SIGTERM\n"))
    assert b"recreate   w: stop_signal SIGINT" in project.ngcws("up").stderr


@pytest.mark.parametrize("field", ["cap_add: [ALL]", "privileged: true"])
def test_capabilities_the_host_forbids_are_explained(project: Workspace, testbed: dict[str, str], field: str) -> None:
    """On this test bed (dockerd in a container) runc may not apply every capability: `up` says why and
    what to do, keeping the engine's own words, and leaves the container created, as `docker run` does."""
    project.write(body(testbed, f"    {field}\n"))
    result = project.ngcws("up")
    if result.returncode == 0:
        pytest.skip("this host grants every capability")
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert "unable to apply caps: operation not permitted" in err  # the original
    assert "forbids the capabilities" in err and "cap_add: [SYS_PTRACE]" in err, err
    assert inspect(project)["State"]["Status"] == "created"
