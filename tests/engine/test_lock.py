"""Two `up`s on one project: the second waits on the lock and says for what; a killed holder never blocks."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.conftest import NGCWS, Workspace
from tests.engine.test_engine_faults import wait_stopped, yaml


def test_second_up_waits_names_the_holder_and_a_killed_holder_never_blocks(
    project: Workspace, testbed: dict[str, str]
) -> None:
    project.write(yaml(testbed))
    env = {**os.environ, "NGCWS_TEST_STEP": "stop:1"}  # the first freezes holding the lock, after its create
    first = subprocess.Popen([*NGCWS, "up"], cwd=project.dir, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_stopped(first)
        with subprocess.Popen([*NGCWS, "up"], cwd=project.dir, stderr=subprocess.PIPE) as second:
            assert second.stderr is not None
            line = second.stderr.readline().decode()
            assert f"waiting for `ngcws up` (pid {first.pid}), which is working on project {project.name!r}" in line
            first.send_signal(signal.SIGKILL)  # killed while holding the lock
            rest = second.stderr.read().decode()
            assert second.wait(timeout=120) == 0, rest
    finally:
        first.kill()
        first.wait()
    [container] = project.containers()
    assert container["State"] == "running"
    # The lock file the killed process left does not make anyone wait.
    result = project.ngcws("up")
    assert result.returncode == 0 and b"waiting" not in result.stderr, result.stderr
