"""Equivalent converged single-workspace projects for ngcws and its peers, brought up once.

Same image, shm size, bind mount, working dir and init for each (docker-compose 1.29 and the Dev
Containers CLI are used when installed). ``converged()`` yields the folders and the commands;
everything it started is removed afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import devcontainer_command, ngcws_command, testbed

CONTAINER = "benchn-train"


@dataclass
class Peers:
    root: Path
    ngcws: list[str]
    ngcws_dir: Path
    compose_dir: Path | None = None
    devcontainer: list[str] | None = None
    devcontainer_dir: Path | None = None


def _ngcws_file(folder: Path, image: str) -> None:
    (folder / "ngcws.yaml").write_text(
        f"name: benchn\nworkspaces:\n  train:\n    image: {image}\n    gpus: none\n    shm_size: 1g\n"
        "    mounts: ['.:/workspace']\n    working_dir: /workspace\n"
    )


def _compose_file(folder: Path, image: str) -> None:
    (folder / "docker-compose.yml").write_text(
        f"version: '2.4'\nservices:\n  train:\n    image: {image}\n    shm_size: 1g\n    init: true\n"
        "    volumes: ['.:/workspace']\n    working_dir: /workspace\n    command: [sleep, infinity]\n"
    )


def _devcontainer_json(folder: Path, image: str) -> None:
    (folder / ".devcontainer").mkdir()
    config = {
        "image": image,
        "runArgs": ["--shm-size=1g", "--init"],
        "workspaceMount": "source=${localWorkspaceFolder},target=/workspace,type=bind",
        "workspaceFolder": "/workspace",
    }
    (folder / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))


@contextmanager
def converged() -> Iterator[Peers]:
    image = testbed()["NGCWS_TB_NGC"]
    root = Path(tempfile.mkdtemp(prefix="ngcws-bench-"))
    peers = Peers(root, ngcws_command(), root / "n")
    try:
        peers.ngcws_dir.mkdir()
        _ngcws_file(peers.ngcws_dir, image)
        subprocess.run([*peers.ngcws, "up"], cwd=peers.ngcws_dir, check=True, capture_output=True)
        if shutil.which("docker-compose"):
            peers.compose_dir = root / "c"
            peers.compose_dir.mkdir()
            _compose_file(peers.compose_dir, image)
            subprocess.run(["docker-compose", "up", "-d"], cwd=peers.compose_dir, check=True, capture_output=True)
        peers.devcontainer = devcontainer_command()
        if peers.devcontainer:
            peers.devcontainer_dir = root / "d"
            peers.devcontainer_dir.mkdir()
            _devcontainer_json(peers.devcontainer_dir, image)
            up = [*peers.devcontainer, "up", "--workspace-folder", str(peers.devcontainer_dir)]
            subprocess.run(up, check=True, capture_output=True)
        yield peers
    finally:
        subprocess.run([*peers.ngcws, "down", "--force"], cwd=peers.ngcws_dir, capture_output=True)
        if peers.compose_dir:
            subprocess.run(["docker-compose", "down", "-t", "1"], cwd=peers.compose_dir, capture_output=True)
        if peers.devcontainer_dir:
            label = f"label=devcontainer.local_folder={peers.devcontainer_dir}"
            ids = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True).stdout
            if ids.split():
                subprocess.run(["docker", "rm", "-f", *ids.split()], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
