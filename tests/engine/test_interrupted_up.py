"""Ctrl-C at each step of `up`: the next `up` converges, with no leftovers.

``NGCWS_TEST_STEP=interrupt:N`` makes ngcws send itself SIGINT right after its Nth engine write
(controller._step), so each step is interrupted exactly, without racing the engine.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ngcws.engine import Engine
from tests.conftest import Workspace


def yaml(testbed: dict[str, str], extra: str = "") -> str:
    return f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    command: [sleep, infinity]\n{extra}"


def converged(containers: list[dict[str, Any]], name: str, shm: int | None) -> None:
    """Exactly one container: the workspace's name, running, every ngcws label, the file's spec."""
    assert len(containers) == 1, [c["Names"] for c in containers]
    [container] = containers
    assert container["Names"] == [f"/{name}-train"] and container["State"] == "running"
    labels = container["Labels"]
    for key in ("ngcws.project", "ngcws.workspace", "ngcws.project-dir", "ngcws.spec", "ngcws.spec-hash"):
        assert labels.get(key), key
    assert json.loads(labels["ngcws.spec"])["shm_size"] == shm


@pytest.mark.parametrize("step", [1, 2])  # 1: after create, 2: after start
def test_ctrl_c_during_a_first_up(project: Workspace, testbed: dict[str, str], step: int) -> None:
    project.write(yaml(testbed))
    result = project.ngcws("up", env={"NGCWS_TEST_STEP": f"interrupt:{step}"})
    assert result.returncode == 130 and b"Traceback" not in result.stderr, result.stderr
    project.ok("up")
    converged(project.containers(), project.name, None)


@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6])
# after: create new, stop old, rename old aside, rename new, start new, remove old
def test_ctrl_c_during_a_recreate(project: Workspace, testbed: dict[str, str], step: int) -> None:
    project.write(yaml(testbed))
    project.ok("up")
    old = project.containers()[0]["Id"]
    project.write(yaml(testbed, "    shm_size: 128m\n"))
    result = project.ngcws("up", env={"NGCWS_TEST_STEP": f"interrupt:{step}"})
    assert result.returncode == 130 and b"Traceback" not in result.stderr, result.stderr
    result = project.ngcws("up")
    assert result.returncode == 0, result.stderr
    converged(project.containers(), project.name, 128 * 2**20)
    assert Engine().inspect_container(old) is None
    assert "nothing to do" in project.ok("plan")
