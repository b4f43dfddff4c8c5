"""GPUs, doctor and preflight against the real engine (a simulated GPU host: a stub NVIDIA hook).

These prove what reaches the engine and what the engine refuses; no real GPU is attached here.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ngcws.engine import Engine
from tests.conftest import Workspace, docker_cli_available
from tests.private_engine import PrivateEngine

UUID = "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"
TEST_LABEL = "ngcws-test.gpus"


def inspect(container_id: str) -> dict[str, Any]:
    found = Engine().inspect_container(container_id)
    assert found is not None
    return found


@pytest.fixture
def cli_containers() -> Iterator[str]:
    """A label value for containers the docker CLI creates in a test; removed after, by label."""
    value = uuid.uuid4().hex[:10]
    yield value
    engine = Engine()
    for container in engine.list_containers({TEST_LABEL: value}):
        engine.remove(str(container["Id"]), force=True)


def docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# --- --gpus parity: the docker CLI is the oracle ----------------------------------------------------


@pytest.mark.gpu_sim
@pytest.mark.skipif(not docker_cli_available(), reason="needs the docker CLI as the oracle")
@pytest.mark.parametrize(
    ("flag", "yaml"),
    [
        ("all", "gpus: all"),
        ("2", "gpus: 2"),
        ('"device=1,2"', "gpus: [1, 2]"),
        ('"device=1,2"', "gpus: device=1,2"),
        (f'"device={UUID},1"', f"gpus: [{UUID}, 1]"),
        ("device=0:1", "gpus: ['0:1']"),
        ("all,capabilities=utility", "gpus: all\n    capabilities: [utility]"),
        ('all,"capabilities=compute,utility"', "gpus: all\n    capabilities: [compute, utility]"),
    ],
)
def test_device_requests_are_what_docker_run_gpus_sends(
    project: Workspace, testbed: dict[str, str], gpu_sim: None, cli_containers: str, flag: str, yaml: str
) -> None:
    image = testbed["NGCWS_TB_TINY"]
    oracle = docker("create", "--gpus", flag, "--label", f"{TEST_LABEL}={cli_containers}", image, "true")
    project.write(f"workspaces:\n  train:\n    image: {image}\n    {yaml}\n")
    project.ok("up")
    [ours] = project.containers()
    expected = inspect(oracle)["HostConfig"]["DeviceRequests"]
    assert inspect(str(ours["Id"]))["HostConfig"]["DeviceRequests"] == expected, flag


# --- preflight --------------------------------------------------------------------------------------

MEMLOCK_FIXED = os.environ.get("NGCWS_TEST_MEMLOCK_ALLOWED") == "1"


def memlock_refused(testbed: dict[str, str]) -> bool:
    message = Engine().probe_start(testbed["NGCWS_TB_TINY"], {"Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}]})
    return "rlimit" in message


def test_preflight_refuses_memlock_before_the_running_container_is_touched(
    project: Workspace, testbed: dict[str, str]
) -> None:
    if not memlock_refused(testbed):
        pytest.skip("this engine can set memlock -1 (a normal GPU server)")
    image = testbed["NGCWS_TB_TINY"]
    project.write(f"workspaces:\n  train:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n")
    project.ok("up")
    [before] = project.containers()
    project.write(
        f"workspaces:\n  train:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n"
        "    ulimits: {memlock: -1}\n"
    )
    result = project.ngcws("up")
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert "memlock unlimited cannot be honoured" in err and "error setting rlimit type 8" in err, err
    assert "Nothing was changed" in err and "--skip-preflight" in err
    [after] = project.containers()  # the old one, untouched, and no half-made new one
    assert (after["Id"], after["State"]) == (before["Id"], "running")
    # No probe container is left behind either.
    assert Engine().list_containers({"ngcws.probe": "true"}) == [] or all(
        c["Image"] != image for c in Engine().list_containers({"ngcws.probe": "true"})
    )

    skipped = project.ngcws("up", "--skip-preflight")  # the override: the engine's own failure, explained
    err = skipped.stderr.decode()
    assert skipped.returncode == 1 and "cannot start" in err and "lower or remove the memlock ulimit" in err


def test_run_is_preflighted_too(project: Workspace, testbed: dict[str, str]) -> None:
    if not memlock_refused(testbed):
        pytest.skip("this engine can set memlock -1")
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    ulimits: {{memlock: -1}}\n"
    )
    result = project.ngcws("run", "true")
    assert result.returncode == 125 and b"memlock unlimited cannot be honoured" in result.stderr
    assert project.containers() == []


def test_engine_without_nvidia_support_refused_before_anything_is_stopped(
    project: Workspace, testbed: dict[str, str]
) -> None:
    """A dockerd without the NVIDIA hook on its PATH: what users without nvidia-container-toolkit meet."""
    engine = PrivateEngine(gpu_stub=False)
    try:
        engine.start()
        engine.pull(testbed["NGCWS_TB_TINY"])
        env = {"DOCKER_HOST": engine.host}
        image = testbed["NGCWS_TB_TINY"]
        project.write(f"workspaces:\n  train:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n")
        project.ok("up", env=env)
        [before] = engine.engine().list_containers({"ngcws.project": project.name})
        project.write(f"workspaces:\n  train:\n    image: {image}\n    gpus: all\n    command: [sleep, infinity]\n")
        result = project.ngcws("up", env=env)
        err = result.stderr.decode()
        assert result.returncode == 1, err
        assert 'could not select device driver "" with capabilities: [[gpu]]' in err
        assert "install nvidia-container-toolkit" in err.lower() and "restart dockerd" in err
        [after] = engine.engine().list_containers({"ngcws.project": project.name})
        assert (after["Id"], after["State"]) == (before["Id"], "running")

        doctor = project.ngcws("doctor", "--format", "json", env=env)
        assert doctor.returncode == 1
        checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
        assert checks["gpu-support"]["verdict"] == "fail"
        assert "nvidia-container-toolkit" in checks["gpu-support"]["fix"]

        skipped = project.ngcws("up", "--skip-preflight", env=env)  # the engine's own refusal, translated
        assert skipped.returncode == 1 and b"could not select device driver" in skipped.stderr
        assert b"hint: Install nvidia-container-toolkit" in skipped.stderr
    finally:
        engine.destroy()


REQUIREMENT_ERROR = (
    "nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.8, please update your driver to a "
    "newer version, or use an earlier cuda container"
)


def test_driver_too_old_for_the_image_is_refused_first(
    project: Workspace, testbed: dict[str, str], tmp_path: Path
) -> None:
    """A dockerd whose NVIDIA hook refuses as libnvidia-container does when the driver is too old."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "nvidia-container-runtime-hook"
    hook.write_text(f"#!/bin/sh\ncat >/dev/null\necho '{REQUIREMENT_ERROR}' >&2\nexit 1\n")
    hook.chmod(0o755)
    engine = PrivateEngine(hook_dir=hooks)
    try:
        engine.start()
        engine.pull(testbed["NGCWS_TB_TINY"])
        env = {"DOCKER_HOST": engine.host}
        project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: all\n")
        result = project.ngcws("up", env=env)
        err = result.stderr.decode()
        assert result.returncode == 1 and "unsatisfied condition: cuda>=12.8" in err, err
        assert "update the driver" in err and "Nothing was changed" in err
        assert engine.engine().list_containers({"ngcws.project": project.name}) == []
        skipped = project.ngcws("up", "--skip-preflight", env=env)
        err = skipped.stderr.decode()
        assert skipped.returncode == 1 and "cannot start" in err and "unsatisfied condition: cuda>=12.8" in err
        assert "hint: The host's NVIDIA driver is older than this image needs" in err, err
    finally:
        engine.destroy()


def test_gpu_request_runtime_without_the_nvidia_runtime(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpu_request: runtime\n")
    result = project.ngcws("up")
    assert result.returncode == 1 and b"no nvidia runtime" in result.stderr, result.stderr
    assert project.containers() == []
    skipped = project.ngcws("up", "--skip-preflight")
    err = skipped.stderr.decode()
    assert (
        skipped.returncode == 1 and "Unknown runtime specified nvidia" in err and "nvidia-ctk runtime configure" in err
    )


# --- doctor -----------------------------------------------------------------------------------------


def test_doctor_on_the_test_bed(project: Workspace, testbed: dict[str, str], gpu_sim: None) -> None:
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: 2\n    ulimits: {{memlock: -1}}\n"
        f"  private:\n    image: {testbed['NGCWS_TB_AUTH_REGISTRY']}/nvidia/python:23.08-py3\n    gpus: none\n"
        "    ipc: host\n"
    )
    result = project.ngcws("doctor", "--format", "json", env={"NGC_API_KEY": ""})
    data = json.loads(result.stdout)
    verdicts = {(c["name"], c.get("workspace")): c["verdict"] for c in data["checks"]}
    assert verdicts[("engine", None)] == "pass"
    assert verdicts[("gpu-support", None)] == "pass"  # the stub hook: the engine accepts GPU requests
    assert verdicts[("shm", "train")] == "warn" and verdicts[("shm", "private")] == "pass"
    assert verdicts[("credentials", "private")] == "warn"
    if memlock_refused(testbed):
        assert verdicts[("memlock", "train")] == "fail"
        assert result.returncode == 1
    text = project.ngcws("doctor").stdout.decode()
    assert "fix: set `shm_size: 16g`" in text and "failed," in text


def test_doctor_outside_a_project(tmp_path: Path, testbed: dict[str, str]) -> None:
    result = subprocess.run(
        [*__import__("tests.conftest", fromlist=["NGCWS"]).NGCWS, "doctor"],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert b"engine" in result.stdout and b"Docker engine" in result.stdout, result.stderr
    data = json.loads(
        subprocess.run(
            [*__import__("tests.conftest", fromlist=["NGCWS"]).NGCWS, "doctor", "--format", "json"],
            cwd=tmp_path,
            capture_output=True,
            timeout=60,
        ).stdout
    )
    [memlock] = [c for c in data["checks"] if c["name"] == "memlock"]  # the host's facts, with no project
    assert "NGC's `--ulimit memlock=-1`" in memlock["summary"], memlock
    if memlock_refused(testbed):
        assert memlock["verdict"] == "warn" and "cannot be honoured" in memlock["summary"], memlock
    else:
        assert memlock["verdict"] == "pass", memlock


def test_doctor_warns_about_shm_only_where_it_matters(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(
        f"workspaces:\n  tiny:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        f"  ngc:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n"
        f"  gpu:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: [0]\n"
    )
    data = json.loads(project.ngcws("doctor", "--format", "json").stdout)
    shm = {c["workspace"]: c["verdict"] for c in data["checks"] if c["name"] == "shm"}
    assert shm == {"tiny": "pass", "ngc": "warn", "gpu": "warn"}, shm


# --- ps and sharing ---------------------------------------------------------------------------------


def fake_nvidia_smi(folder: Path, pid: int) -> str:
    """A fake nvidia-smi reporting two GPUs and one process (``pid``) on GPU 0; returns a PATH."""
    gpus = (
        f"0, NVIDIA A100-SXM4-80GB, {UUID}, 535.104.05, 8.0, 81920, 12034, 87, 00000000:07:00.0\n"
        "1, NVIDIA A100-SXM4-80GB, GPU-7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0e, 535.104.05, 8.0, 81920, 4, 0, 00000000:0F:00.0\n"
    )
    script = folder / "nvidia-smi"
    script.write_text(
        '#!/bin/sh\ncase "$1" in\n'
        f"  --query-gpu=*) printf '%s' '{gpus}' ;;\n"
        f"  --query-compute-apps=*) echo '{UUID}, {pid}, python, 11020' ;;\n"
        "  *) echo 'CUDA Version: 12.2' ;;\nesac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return f"{folder}:{os.environ['PATH']}"


def test_ps_shows_the_gpus_held_their_use_and_processes(
    project: Workspace, testbed: dict[str, str], gpu_sim: None, tmp_path: Path
) -> None:
    project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: 1\n")
    project.ok("up")
    [container] = project.containers()
    pid = inspect(str(container["Id"]))["State"]["Pid"]  # a real process of the container, on this host
    folder = tmp_path / "fakebin"
    folder.mkdir()
    env = {"PATH": fake_nvidia_smi(folder, pid)}
    table = project.ok("ps", env=env)
    assert "1 (0)" in table  # a count: the first GPUs
    assert f"train: GPU 0 NVIDIA A100-SXM4-80GB  11.8/80.0 GiB  87%  {pid} python (here) 11020 MiB" in table, table
    assert "GPU 1" not in table
    [row] = json.loads(project.ok("ps", "--format", "json", env=env))
    [gpu] = row["gpu_use"]
    assert gpu["uuid"] == UUID and gpu["processes"] == [
        {"pid": pid, "name": "python", "used_memory_mib": 11020, "this_container": True}
    ]


def test_sharing_gpus_with_other_containers_is_warned(
    make_project: Any, testbed: dict[str, str], gpu_sim: None, cli_containers: str
) -> None:
    image = testbed["NGCWS_TB_TINY"]
    first = make_project(f"s{uuid.uuid4().hex[:8]}")
    first.write(f"workspaces:\n  train:\n    image: {image}\n    gpus: [1]\n    command: [sleep, infinity]\n")
    first.ok("up")
    second = make_project(f"s{uuid.uuid4().hex[:8]}")
    second.write(
        f"workspaces:\n  train:\n    image: {image}\n    gpus: 2\n    command: [sleep, infinity]\n"
        f"  notebook:\n    image: {image}\n    gpus: [3]\n    command: [sleep, infinity]\n"
    )
    plan = second.ok("plan")
    assert "gpus: 2 means GPUs 0, 1" in plan
    [line] = lines(plan, "GPU 1 is shared by")  # the shared engine may hold other test runs' containers too
    assert f"workspace 'train' of project {first.name!r} ({first.name}-train) (GPU 1)" in line, plan
    assert "workspace 'train' (GPUs 0, 1)" in line, plan
    rival = f"rival-{cli_containers}"
    docker(
        "run",
        "-d",
        "--name",
        rival,
        "--gpus",
        '"device=0"',
        "--label",
        f"{TEST_LABEL}={cli_containers}",
        image,
        "sleep",
        "600",
    )
    result = second.ngcws("up")
    assert result.returncode == 0
    err = result.stderr.decode()
    [line] = lines(err, "GPU 0 is shared by")
    assert f"container {rival} (GPU 0)" in line and "workspace 'train' (GPUs 0, 1)" in line, err
    again = second.ok("plan")
    assert f"container {rival} (GPU 0)" in again and f"({first.name}-train) (GPU 1)" in again
    assert f"({second.name}-train)" not in again  # its own container is not a rival
    second.write(
        f"workspaces:\n  train:\n    image: {image}\n    gpus: 2\n    command: [sleep, infinity]\n"
        f"  notebook:\n    image: {image}\n    gpus: [0]\n    command: [sleep, infinity]\n"
    )
    siblings = second.ok("plan")  # two workspaces of one file asking for the same GPU: said once
    [line] = lines(siblings, "GPU 0 is shared by")
    assert "workspace 'notebook' (GPU 0)" in line and "workspace 'train' (GPUs 0, 1)" in line, siblings
    assert f"container {rival} (GPU 0)" in line, siblings

    # An orphan of this project (its workspace left the file) still holds its GPU.
    second.write(
        f"workspaces:\n  train:\n    image: {image}\n    gpus: 2\n    command: [sleep, infinity]\n"
        f"  eval:\n    image: {image}\n    gpus: [3]\n    command: [sleep, infinity]\n"
    )
    orphaned = second.ok("plan")
    [line] = lines(orphaned, "GPU 3 is shared by")
    assert f"orphan container {second.name}-notebook (workspace 'notebook', no longer in the file) (GPU 3)" in line
    assert "workspace 'eval' (GPU 3)" in line, orphaned
    doctor = json.loads(second.ngcws("doctor", "--format", "json").stdout)
    sharing = [c["summary"] for c in doctor["checks"] if c["name"] == "gpu-sharing"]
    assert len([s for s in sharing if s.startswith("GPU 3 is shared by")]) == 1, sharing


def lines(text: str, start: str) -> list[str]:
    """The lines (warnings) of ``text`` that begin with ``start`` after a ``warning: `` prefix."""
    return [line for line in text.splitlines() if line.removeprefix("warning: ").startswith(start)]


# --- engine messages translated -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_port_already_allocated_is_explained(project: Workspace, testbed: dict[str, str]) -> None:
    port = free_port()
    image = testbed["NGCWS_TB_TINY"]
    project.write(
        f"workspaces:\n  a:\n    image: {image}\n    gpus: none\n    ports: ['127.0.0.1:{port}:80']\n"
        f"  b:\n    image: {image}\n    gpus: none\n    ports: ['127.0.0.1:{port}:80']\n"
    )
    refused = project.ngcws("up")  # preflight: the file publishes the port twice
    assert refused.returncode == 1 and b"published twice in the file" in refused.stderr, refused.stderr
    result = project.ngcws("up", "--skip-preflight")  # the engine's own refusal, explained
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert "port is already allocated" in err and "map another host port in `ports:`" in err, err


def test_cdi_on_an_engine_before_docker_25_says_the_same_with_or_without_preflight(
    project: Workspace, testbed: dict[str, str]
) -> None:
    version = Engine().version()
    if tuple(int(p) for p in str(version.get("ApiVersion", "0.0")).split(".")) >= (1, 44):
        pytest.skip("this engine knows CDI (Docker 25+)")
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: [0]\n    gpu_request: cdi\n"
    )
    refused = project.ngcws("up")
    assert refused.returncode == 1 and b"predates CDI" in refused.stderr, refused.stderr
    skipped = project.ngcws("up", "--skip-preflight")  # the engine's own refusal, translated alike
    err = skipped.stderr.decode()
    assert skipped.returncode == 1 and 'could not select device driver "cdi"' in err, err
    assert "upgrade Docker to 25 or later, or use `gpu_request: device-requests`" in err, err
    assert "nvidia-container-toolkit" not in err, err
