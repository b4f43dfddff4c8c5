"""``ngcws init``: a commented ngcws.yaml for the current folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ngcws.errors import UsageError
from ngcws.imageref import parse_image
from ngcws.locate import CONFIG_NAME
from ngcws.schema import render
from ngcws.schema import render as render_schema

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
    # user: host                # NGC images run as root: files they write to . become root's; this runs
    #                           # as your uid:gid instead (see docs/safety.md, "the default user")
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


OVERRIDE_HEADER = """\
# ngcws.override.yaml: this machine's specifics, merged over ngcws.yaml by every ngcws command.
# Keep it out of git; `ngcws config --sources` shows which file each value comes from.
# Merge rules: docs/configuration.md (Override files) in ngcws's documentation.
workspaces:
"""


def machine_gpus(host: Any = None) -> list[str] | None:
    """This machine's GPU UUIDs (stable across reboots, unlike indexes), from doctor's discovery, or None."""
    from ngcws.hostinfo import Host

    info = (host or Host()).discover(processes=False)
    uuids = [gpu.uuid for gpu in info.gpus if gpu.uuid.startswith("GPU-")]
    return uuids or None


def write_override(folder: Path, force: bool, gpus: list[str] | None, infiniband: bool) -> Path:
    """Write ngcws.override.yaml beside ngcws.yaml with what this machine has; list it in .gitignore."""
    from ngcws.locate import OVERRIDE_NAME, Located, read_document

    config = folder / CONFIG_NAME
    if not config.is_file():
        raise UsageError(f"no {CONFIG_NAME} in {folder}: write one first (`ngcws init`)")
    path = folder / OVERRIDE_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to overwrite it")
    doc = read_document(Located(config, folder), _Lenient())
    names = list((doc.data.get("workspaces") or {}) if isinstance(doc.data, dict) else {}) or ["main"]
    gpu_line = (
        f"    gpus: [{', '.join(gpus)}]   # this machine's GPUs, by UUID (nvidia-smi)"
        if gpus
        else "    # gpus: [0, 1]            # this machine's GPUs (no nvidia-smi found here)"
    )
    fabric = ["network_mode: host", "devices: [/dev/infiniband]", "cap_add: [IPC_LOCK]"]
    ib = [f"    {line}" if infiniband else f"    # {line}" for line in fabric]
    body = [
        gpu_line,
        '    # mounts: ["/raid/datasets:/data:ro"]   # replaces the mount at /data in ngcws.yaml',
        "    # InfiniBand" + (" (found /dev/infiniband)" if infiniband else ", multi-node on this box:"),
        *ib,
    ]
    workspaces = (doc.data.get("workspaces") or {}) if isinstance(doc.data, dict) else {}

    def dropped(name: str) -> list[str]:
        """What the shared file says that host networking cannot have: removed, saying why."""
        entry = workspaces.get(name)
        found: dict[str, Any] = entry if isinstance(entry, dict) else {}
        fields = [f for f in ("ports", "hostname", "extra_hosts", "dns") if infiniband and f in found]
        return [f"    {field}: !reset null   # not with network_mode: host" for field in fields]

    text = OVERRIDE_HEADER + "".join(f"  {name}:\n" + "\n".join([*body, *dropped(name)]) + "\n" for name in names)
    path.write_text(text)
    _ignore_in_git(folder, OVERRIDE_NAME)
    return path


class _Lenient(dict[str, str]):
    """Variables for reading workspace names only: an unset one is not an error here."""

    def __missing__(self, key: str) -> str:
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        return os.environ.get(key, "")


def _ignore_in_git(folder: Path, name: str) -> None:
    if not (folder / ".git").exists():
        return
    ignore = folder / ".gitignore"
    lines = ignore.read_text().splitlines() if ignore.is_file() else []
    if name not in lines and f"/{name}" not in lines:
        ignore.write_text("".join(f"{line}\n" for line in [*lines, name]))


def write_from_run(folder: Path, line: str, force: bool, print_only: bool) -> tuple[str, list[str], Path | None]:
    """``init --from-docker-run``: the translated file's text, what to tell the user (untranslated
    options, dropped flags), and where it was written (None when printed: ``--print`` or ``-``)."""
    from pydantic import ValidationError

    from ngcws.fromrun import FromRunError, render, translate
    from ngcws.model import Workspace

    try:
        translation = translate(line)
    except FromRunError as exc:
        raise UsageError(f"--from-docker-run: {exc}") from None
    try:
        Workspace.model_validate(translation.workspace)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"--from-docker-run: {where}: {first['msg']}") from None
    problems = [
        f"not translated (no ngcws.yaml field; listed in the file): {flag}" for flag in translation.untranslated
    ]
    problems += [f"note: {note}" for note in translation.notes]
    text = render(translation, line, SCHEMA_NAME)
    if print_only:
        return text, problems, None
    path = folder / CONFIG_NAME
    if path.exists() and not force:
        raise UsageError(f"{path} already exists; pass --force to overwrite it (or --print to see the file)")
    (folder / SCHEMA_NAME).write_text(render_schema())
    path.write_text(text)
    return text, problems, path
