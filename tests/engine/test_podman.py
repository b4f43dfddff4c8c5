"""Podman's Docker-compatible service (`podman system service`, beside dockerd) as the engine.

The test bed runs it on a socket of its own, and puts a CDI spec in /var/run/cdi whose "GPUs" only
set marker variables (NGCWS_CDI_GPU_<n>=1): a container's init environment says exactly which
devices it got. No GPU is involved. The limits in the files below are what this machine allows
(Podman's own defaults for nofile/nproc exceed them: see docs/engines.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from ngcws.engine import Engine
from ngcws.engine.transport import Transport
from tests.conftest import Workspace

LIMITS = "    ulimits: {nofile: 4096, nproc: 4096}\n"


@pytest.fixture
def podman(testbed: dict[str, str], project: Workspace) -> Iterator[str]:
    host = testbed.get("NGCWS_TB_PODMAN_HOST")
    if not host:
        message = "the test bed has no Podman service (NGCWS_TB_PODMAN_HOST): run scripts/testbed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield host
    engine = Engine(Transport(host))
    for container in engine.list_containers({"ngcws.project": project.name}):
        engine.remove(str(container["Id"]), force=True, volumes=True)


def on_podman(host: str, project: Workspace) -> list[dict[str, object]]:
    return Engine(Transport(host)).list_containers({"ngcws.project": project.name})


def init_markers(project: Workspace, env: dict[str, str]) -> list[str]:
    out = project.ok("exec", "sh", "-c", "tr '\\0' '\\n' </proc/1/environ", env=env)
    return sorted(line for line in out.splitlines() if line.startswith("NGCWS_CDI_GPU_"))


def test_the_workspace_lifecycle_on_podman(project: Workspace, testbed: dict[str, str], podman: str) -> None:
    env = {"DOCKER_HOST": podman}
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        "    command: [sleep, infinity]\n    init: true\n    shm_size: 256m\n    mounts: ['.:/workspace']\n" + LIMITS
    )
    (project.dir / "data.txt").write_text("from the host\n")
    project.ok("up", env=env)
    assert [c["State"] for c in on_podman(podman, project)] == ["running"]
    assert project.containers() == []  # nothing on dockerd
    assert project.ok("exec", "cat", "/workspace/data.txt", env=env) == "from the host\n"
    assert project.ok("exec", "sh", "-c", "df -k /dev/shm | tail -1", env=env).split()[1] == "262144"
    result = project.ngcws("exec", "-T", "sh", "-c", "wc -l; exit 7", input=b"1\n2\n", env=env)
    assert (result.returncode, result.stdout.decode().strip()) == (7, "2")
    assert "up to date" in project.ok("plan", env=env)
    doctor = project.ngcws("doctor", env=env).stdout.decode()
    assert f"{podman}: default context, from DOCKER_HOST" in doctor and "Podman (Docker-compatible API) 4." in doctor
    project.ok("down", env=env)
    assert on_podman(podman, project) == []


def test_gpus_on_podman_are_cdi_devices_exactly_as_asked(
    project: Workspace, testbed: dict[str, str], podman: str
) -> None:
    env = {"DOCKER_HOST": podman}
    body = f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    command: [sleep, infinity]\n" + LIMITS
    project.write(body + "    gpus: [0, 2]\n")
    project.ok("up", env=env)
    assert init_markers(project, env) == ["NGCWS_CDI_GPU_0=1", "NGCWS_CDI_GPU_2=1"]
    assert "up to date" in project.ok("plan", env=env)  # a libpod-made container is no drift
    project.write(body + "    gpus: 1\n")
    project.ok("up", env=env)
    assert init_markers(project, env) == ["NGCWS_CDI_GPU_0=1"]
    project.ok("down", env=env)


@pytest.mark.parametrize("mode", ["device-requests", "runtime"])
def test_a_gpu_request_podman_would_drop_fails_before_creating(
    project: Workspace, testbed: dict[str, str], podman: str, mode: str
) -> None:
    env = {"DOCKER_HOST": podman}
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    command: [sleep, infinity]\n"
        f"    gpus: all\n    gpu_request: {mode}\n" + LIMITS
    )
    for flags in ([], ["--skip-preflight"]):  # preflight says it; the engine adapter refuses regardless
        result = project.ngcws("up", *flags, env=env)
        err = result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in err, err
        assert "Podman" in err and "no GPU" in err and "cdi" in err
        assert on_podman(podman, project) == []
