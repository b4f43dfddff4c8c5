"""Equivalent single-workspace configurations for ngcws and its peers (same image, shm, mount, init)."""

from __future__ import annotations

import json
from pathlib import Path


def ngcws_file(folder: Path, image: str) -> None:
    (folder / "ngcws.yaml").write_text(
        f"name: benchn\nworkspaces:\n  train:\n    image: {image}\n    gpus: none\n    shm_size: 1g\n"
        "    mounts: ['.:/workspace']\n    working_dir: /workspace\n"
    )


def compose_file(folder: Path, image: str) -> None:
    (folder / "docker-compose.yml").write_text(
        f"version: '2.4'\nservices:\n  train:\n    image: {image}\n    shm_size: 1g\n    init: true\n"
        "    volumes: ['.:/workspace']\n    working_dir: /workspace\n    command: [sleep, infinity]\n"
    )


def devcontainer_json(folder: Path, image: str) -> None:
    (folder / ".devcontainer").mkdir()
    (folder / ".devcontainer" / "devcontainer.json").write_text(
        json.dumps(
            {
                "image": image,
                "runArgs": ["--shm-size=1g", "--init"],
                "workspaceMount": "source=${localWorkspaceFolder},target=/workspace,type=bind",
                "workspaceFolder": "/workspace",
            }
        )
    )
