"""The engine going away and coming back, on a private dockerd (tests/private_engine.py)."""

from __future__ import annotations

from tests.conftest import Workspace
from tests.private_engine import PrivateEngine


def test_engine_killed_then_restarted_next_up_converges(
    project: Workspace, testbed: dict[str, str], private_engine: PrivateEngine
) -> None:
    env = {"DOCKER_HOST": private_engine.host}
    project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    command: [sleep, infinity]\n")
    project.ok("up", env=env)
    engine = private_engine.engine()
    [before] = engine.list_containers({"ngcws.project": project.name})
    assert before["State"] == "running"

    private_engine.kill()
    down = project.ngcws("ps", env=env)
    assert down.returncode == 1
    assert b"Traceback" not in down.stderr and b"Docker" in down.stderr, down.stderr

    private_engine.start()
    [after_crash] = engine.list_containers({"ngcws.project": project.name})
    assert after_crash["State"] == "exited"  # the crash took the container's process along
    project.ok("up", env=env)
    [after] = engine.list_containers({"ngcws.project": project.name})
    assert after["Id"] == before["Id"] and after["State"] == "running"
    # The shared engine never saw this project.
    assert project.containers() == []
