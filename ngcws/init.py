"""``ngcws init``: a commented ngcws.yaml for the current folder."""

from __future__ import annotations

from pathlib import Path

from ngcws.errors import UsageError
from ngcws.locate import CONFIG_NAME
from ngcws.schema import render
from ngcws.values import parse_image

DEFAULT_IMAGE = "nvcr.io/nvidia/pytorch:23.08-py3"

#: Written next to ngcws.yaml so that editors find the schema of the ngcws that wrote the file.
SCHEMA_NAME = ".ngcws.schema.json"

TEMPLATE = """\
# yaml-language-server: $schema=./{schema}
# ngcws.yaml: this project's NGC workspace. `ngcws up`, `ngcws exec python train.py`, `ngcws down`.
# Every field is described in {schema} (`ngcws schema` prints it; after upgrading ngcws,
# `ngcws schema > {schema}`); `ngcws config` prints this file as ngcws reads it.
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


def write_init(folder: Path, image: str | None, force: bool) -> Path:
    """Write ngcws.yaml (and the JSON Schema its modeline names) into ``folder``; refuse to
    overwrite ngcws.yaml unless ``force``."""
    try:
        ref = parse_image(image or DEFAULT_IMAGE)
    except ValueError as exc:
        raise UsageError(f"--image: {exc}") from None
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to overwrite it")
    (folder / SCHEMA_NAME).write_text(render())
    path.write_text(TEMPLATE.format(image=ref, schema=SCHEMA_NAME))
    return path
