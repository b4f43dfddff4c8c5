"""End to end with real PyTorch (where the test bed could build its image): the shm failure NGC
warns about, reproduced, and fixed by one line of ngcws.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import Workspace

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "demo" / "train.py"


@pytest.fixture
def torch_image(testbed: dict[str, str]) -> str:
    if not testbed.get("NGCWS_TB_TORCH"):
        pytest.skip("this machine keeps no CPU build of PyTorch, so the test bed has no PyTorch image")
    return testbed["NGCWS_TB_TORCH"]


def test_dataloader_workers_need_shm_size(project: Workspace, torch_image: str) -> None:
    shutil.copy(TRAIN, project.dir / "train.py")
    base = f"workspaces:\n  train:\n    image: {torch_image}\n    gpus: none\n    mounts: ['.:/workspace']\n    working_dir: /workspace\n"
    project.write(base)
    project.ok("up")
    failed = project.ngcws("exec", "python", "train.py", env={"STEPS": "2"}, timeout=300)
    assert failed.returncode != 0
    assert b"shared memory" in failed.stderr or b"Bus error" in failed.stderr or b"No space left" in failed.stderr
    project.write(base + "    shm_size: 1g\n")
    assert "shm_size unset → 1g" in project.ok("plan")
    project.ok("up")
    trained = project.ngcws("exec", "python", "train.py", timeout=300)
    assert trained.returncode == 0, trained.stderr
    assert b"trained 6 steps" in trained.stdout
