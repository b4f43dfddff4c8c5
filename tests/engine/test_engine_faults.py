"""The engine not there, not running, not ours to use, or dying in the middle of `up`.

Every test here runs its own dockerd (tests/private_engine.py): the shared one is never stopped.
``NGCWS_TEST_STEP=stop:N`` freezes ngcws (SIGSTOP) right after its Nth engine write, so the test
kills the engine at that exact step, then lets ngcws go on into the dead engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NGCWS, Workspace
from tests.private_engine import PrivateEngine


def yaml(testbed: dict[str, str], extra: str = "") -> str:
    return f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    command: [sleep, infinity]\n{extra}"


def wait_stopped(proc: subprocess.Popen[bytes]) -> None:
    """Until the process has frozen itself (state T), or ended (a failure the caller sees)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("T", "t"):
            return
        time.sleep(0.05)
    raise AssertionError(f"ngcws did not reach the step (exit {proc.poll()})")


def up_killing_the_engine_at(
    project: Workspace, engine: PrivateEngine, step: int
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DOCKER_HOST": engine.host, "NGCWS_TEST_STEP": f"stop:{step}"}
    proc = subprocess.Popen([*NGCWS, "up"], cwd=project.dir, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        wait_stopped(proc)
        engine.kill()
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def converged(engine: PrivateEngine, project: Workspace, shm: int | None) -> None:
    found: list[dict[str, Any]] = engine.engine().list_containers({"ngcws.project": project.name})
    assert len(found) == 1, [c["Names"] for c in found]
    [container] = found
    assert container["Names"] == [f"/{project.name}-train"] and container["State"] == "running"
    assert json.loads(container["Labels"]["ngcws.spec"])["shm_size"] == shm
    assert engine.engine().list_containers({}) == found  # nothing without its labels either


def test_engine_killed_between_create_and_start(
    project: Workspace, testbed: dict[str, str], private_engine: PrivateEngine
) -> None:
    project.write(yaml(testbed))
    result = up_killing_the_engine_at(project, private_engine, 1)
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    assert b"Docker engine" in result.stderr, result.stderr
    private_engine.start()
    project.ok("up", env={"DOCKER_HOST": private_engine.host})
    converged(private_engine, project, None)


@pytest.mark.parametrize("step", [1, 2, 3, 4])  # after: create new, stop old, rename old aside, rename new
def test_engine_killed_during_a_recreate(
    project: Workspace, testbed: dict[str, str], private_engine: PrivateEngine, step: int
) -> None:
    env = {"DOCKER_HOST": private_engine.host}
    project.write(yaml(testbed))
    project.ok("up", env=env)
    project.write(yaml(testbed, "    shm_size: 128m\n"))
    result = up_killing_the_engine_at(project, private_engine, step)
    assert result.returncode == 1 and b"Traceback" not in result.stderr, result.stderr
    private_engine.start()
    result = project.ngcws("up", env=env)
    assert result.returncode == 0, result.stderr
    converged(private_engine, project, 128 * 2**20)
    assert "nothing to do" in project.ok("plan", env=env)


def test_engine_not_running_or_socket_missing(
    project: Workspace, testbed: dict[str, str], private_engine: PrivateEngine
) -> None:
    env = {"DOCKER_HOST": private_engine.host}
    project.write(yaml(testbed))
    private_engine.kill()  # the socket stays behind, nobody answers
    assert private_engine.socket.exists()
    result = project.ngcws("up", env=env)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert f"the Docker engine is not running: nothing answers on {private_engine.socket}" in err
    assert "sudo systemctl start docker" in err and "rootless" in err
    private_engine.socket.unlink()
    err = project.ngcws("up", env=env).stderr.decode()
    assert f"its socket {private_engine.socket} does not exist" in err and "sudo systemctl start docker" in err


def test_permission_denied_on_the_socket(
    testbed: dict[str, str], private_engine: PrivateEngine, system_python_install: Path
) -> None:
    """As a user outside the docker group (nobody), on an engine socket only root may use."""
    os.chmod(private_engine.socket, 0o600)
    folder = Path(tempfile.mkdtemp(prefix="ngcws-perm-"))
    try:
        folder.chmod(0o777)
        (folder / "ngcws.yaml").write_text(yaml(testbed))
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(system_python_install),
            "DOCKER_HOST": private_engine.host,
            "XDG_CACHE_HOME": str(folder / "cache"),
            "HOME": str(folder),
        }
        result = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-m", "ngcws", "ps"],
            cwd=folder,
            env=env,
            capture_output=True,
            timeout=60,
        )
        err = result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in err, err
        assert f"permission denied on the Docker engine's socket {private_engine.socket}" in err
        assert "usermod -aG docker" in err and "rootless" in err
    finally:
        shutil.rmtree(folder, ignore_errors=True)
