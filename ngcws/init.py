"""``ngcws init``: a commented ngcws.yaml for the current folder."""

from __future__ import annotations

from pathlib import Path

from ngcws.errors import UsageError
from ngcws.locate import CONFIG_NAME
from ngcws.schema import SCHEMA_URL
from ngcws.values import parse_image

DEFAULT_IMAGE = "nvcr.io/nvidia/pytorch:23.08-py3"

TEMPLATE = """\
# yaml-language-server: $schema={schema}
# ngcws.yaml: this project's NGC workspace. `ngcws up`, `ngcws exec python train.py`, `ngcws down`.
# Reference: https://github.com/ngcws/ngcws/blob/main/docs/configuration.md
workspaces:
  main:
    image: {image}
    gpus: all                   # all | none | a count | a list of ids: [0, 1] / GPU-<uuid> / MIG-<uuid>
    shm_size: 16g               # PyTorch DataLoader workers share batches through /dev/shm (Docker: 64m)
    ulimits:
      memlock: -1               # as NVIDIA recommends; needs a host that lets containers lock memory
      stack: 67108864
    mounts:
      - .:/workspace            # this folder, as `-v $PWD:/workspace`
    working_dir: /workspace
    # user: host                # run as your uid:gid so files written to mounts stay yours
    # env: {{WANDB_MODE: offline}}
    # ports: ["8888:8888"]
"""


def write_init(folder: Path, image: str | None, force: bool, schema: str = SCHEMA_URL) -> Path:
    """Write ngcws.yaml into ``folder``; refuse to overwrite unless ``force``."""
    try:
        ref = parse_image(image or DEFAULT_IMAGE)
    except ValueError as exc:
        raise UsageError(f"--image: {exc}") from None
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to overwrite it")
    path.write_text(TEMPLATE.format(image=ref, schema=schema))
    return path
