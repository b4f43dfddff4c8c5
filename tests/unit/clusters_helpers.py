"""Shared helpers of the cluster generator tests: a project on disk, its job, golden files."""

from __future__ import annotations

import os
from pathlib import Path

from ngcws.clusters.job import ClusterJob, resolve
from ngcws.load import load
from ngcws.spec import Invoker

GOLDENS = Path(__file__).parent / "goldens"
ALICE = Invoker(uid=1000, gid=1000, name="alice", group="alice")

#: The NVIDIA-guide workspace of docs/clusters.md: 2 nodes x 8 GPUs, shm, ulimits, mounts, env, user.
LLM = """\
name: llm
distributed:
  nodes: 2
  gpus_per_node: 8
  command: [train.py, --cfg, cfg.yaml]
  slurm: {partition: gpu, account: proj, time: "04:00:00", sbatch: {qos: high}}
  kubernetes:
    namespace: ml
    image_pull_secret: ngc-pull
    volumes: {./data: {pvc: datasets}}
workspaces:
  train:
    image: nvcr.io/nvidia/pytorch:23.08-py3
    gpus: all
    capabilities: [compute, utility]
    shm_size: 16g
    ulimits: {memlock: -1, stack: 67108864}
    mounts: [".:/workspace", "./data:/data:ro"]
    working_dir: /workspace
    env: {NCCL_DEBUG: WARN, MSG: "it's $$HOME"}
    user: host
"""


def project_file(tmp_path: Path, text: str = LLM) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "ngcws.yaml"
    path.write_text(text)
    return path


def job_of(tmp_path: Path, text: str = LLM, workspace: str = "train", nodes: int | None = None) -> ClusterJob:
    project = load(str(project_file(tmp_path, text)), environ={})
    return resolve(project, workspace, ALICE, nodes)


def golden(name: str, text: str, tmp_path: Path) -> None:
    """Compare with tests/unit/goldens/NAME (the project folder written /PROJECT);
    NGCWS_UPDATE_GOLDENS=1 rewrites it."""
    text = text.replace(str(tmp_path), "/PROJECT")
    path = GOLDENS / name
    if os.environ.get("NGCWS_UPDATE_GOLDENS") == "1":
        path.write_text(text)
    assert path.is_file(), f"no golden {path}: run with NGCWS_UPDATE_GOLDENS=1"
    assert text == path.read_text(), f"{name} differs from its golden (NGCWS_UPDATE_GOLDENS=1 to accept)"
