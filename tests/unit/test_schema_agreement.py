"""The JSON Schema accepts and rejects exactly what the loader does.

Each case is a workspace (or whole file) run through both: the loader (``ngcws.load``) and
``jsonschema`` over the same YAML 1.2 data an editor sees. Any disagreement fails, in either
direction. Cases the schema cannot decide by its nature (a bind source that does not exist on this
machine, an env_file that is missing) are not in the corpus; they are loader errors only.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from ngcws.errors import ConfigError
from ngcws.load import load
from ngcws.schema import json_schema
from ngcws.yamlsource import parse

IMAGE = "    image: nvcr.io/nvidia/pytorch:23.08-py3\n"

VALID = {
    "init quoted (the text of an interpolated value)": "    init: 'true'\n",
    "ulimit as text": "    ulimits: {nofile: '1024'}\n",
    "minimal": "",
    "gpus all": "    gpus: all\n",
    "gpus none": "    gpus: none\n",
    "gpus count": "    gpus: 2\n",
    "gpus ids": "    gpus: [0, 1]\n",
    "gpus uuid": "    gpus: [GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f]\n",
    "gpus mig": "    gpus: [0:1, MIG-abc/1/2]\n",
    "gpus device=": "    gpus: device=0,1\n",
    "gpus id string": "    gpus: '1,2'\n",
    "gpus count string": "    gpus: '2'\n",
    "gpus long count": "    gpus: {count: 2}\n",
    "gpus long ids": "    gpus: {device_ids: [0, 3]}\n",
    "capabilities": "    capabilities: [utility, compute]\n",
    "capabilities all": "    capabilities: [all]\n",
    "capabilities string": "    capabilities: utility,compute\n",
    "shm size": "    shm_size: 16g\n",
    "shm bytes": "    shm_size: 1073741824\n",
    "shm spaced": "    shm_size: 1.5 GiB\n",
    "ipc": "    ipc: host\n",
    "ulimits": "    ulimits: {memlock: -1, stack: 67108864, nofile: {soft: 1024, hard: 4096}}\n",
    "mount short": "    mounts: ['.:/workspace', './data:/data:ro', 'cache:/root/.cache', /scratch]\n",
    "mount long": "    mounts: [{type: bind, source: ., target: /w, read_only: true}, {type: tmpfs, target: /t}]\n",
    "mount create": "    mounts: [{source: ./new, target: /n, create_host_path: true}]\n",
    "env map": "    env: {A: 1, B: x, C: true, D: null, E: 1.5}\n",
    "env list": "    env: [A=1, B]\n",
    "env_file": "    env_file: vars.env\n",
    "env_files": "    env_file: [vars.env]\n",
    "working_dir": "    working_dir: /workspace\n",
    "user uid gid": "    user: 1000:1000\n",
    "user number": "    user: 1000\n",
    "user host": "    user: host\n",
    "user name": "    user: ubuntu\n",
    "command string": "    command: python train.py --lr 1e-3\n",
    "command list": "    command: [python, train.py, 3, 1.5]\n",
    "command bool item": "    command: [python, train.py, --flag, true]\n",  # arguments are text as written
    "ports": "    ports: [8888, '6006:6006', 127.0.0.1:8080:80/udp, 22:22]\n",
    "restart": "    restart: unless-stopped\n",
    "pull": "    pull: always\n",
    "init": "    init: false\n",
    "labels map": "    labels: {team: vision, n: 1}\n",
    "labels list": "    labels: [team=vision]\n",
    "restart_on": "    restart_on: ['src/**/*.py', serve.py, conf/, a..b.py]\n",
    "enroot image": "    image: nvcr.io#nvidia/pytorch:23.08-py3\n",
    "image digest": "    image: nvcr.io/nvidia/pytorch@sha256:" + "a" * 64 + "\n",
}

INVALID = {
    "unknown key": "    shm: 1g\n",
    "ipc typo": "    ipc: hots\n",
    "gpus typo": "    gpus: al\n",
    "gpus negative": "    gpus: -1\n",
    "gpus zero": "    gpus: 0\n",  # docker's Count 0, which guide readers take for GPU 0
    "gpus long zero": "    gpus: {count: 0}\n",
    "gpus zero string": "    gpus: '0'\n",
    "gpus empty list": "    gpus: []\n",
    "gpus bool": "    gpus: true\n",
    "gpus bad id": "    gpus: [abc]\n",
    "gpus short uuid": "    gpus: [GPU-3a23c669]\n",
    "gpus twice": "    gpus: [0, 0]\n",
    "gpus count and ids": "    gpus: {count: 1, device_ids: [0]}\n",
    "gpus long extra": "    gpus: {count: 1, driver: nvidia}\n",
    "gpus float": "    gpus: 1.5\n",
    "capability typo": "    capabilities: [utilities]\n",
    "shm unit": "    shm_size: 16x\n",
    "shm negative": "    shm_size: -1\n",
    "shm bool": "    shm_size: true\n",
    "ipc with shm": "    ipc: host\n    shm_size: 1g\n",
    "ulimit name": "    ulimits: {memlok: -1}\n",
    "ulimit soft only": "    ulimits: {nofile: {soft: 1}}\n",
    "ulimit below -1": "    ulimits: {nofile: -2}\n",
    "ulimit string": "    ulimits: {nofile: lots}\n",
    "mount relative target": "    mounts: ['.:workspace']\n",
    "mount bad mode": "    mounts: ['.:/w:rx']\n",
    "mount no target": "    mounts: [{type: bind, source: .}]\n",
    "mount tmpfs source": "    mounts: [{type: tmpfs, source: x, target: /t}]\n",
    "mount bad volume name": "    mounts: [{type: volume, source: 'a b', target: /t}]\n",
    "mount number": "    mounts: [5]\n",
    "env scalar": "    env: 5\n",
    "env list of numbers": "    env: [5]\n",
    "env nested": "    env: {A: [1]}\n",
    "env_file number": "    env_file: 5\n",
    "working_dir relative": "    working_dir: workspace\n",
    "user bad": "    user: 'bad user!'\n",
    "user bool": "    user: true\n",
    "command number": "    command: 5\n",
    "command null item": "    command: [python, ~]\n",
    "port text": "    ports: [abc]\n",
    "port range": "    ports: [99999]\n",
    "port zero": "    ports: [0]\n",
    "ports scalar": "    ports: 8888\n",
    "restart typo": "    restart: sometimes\n",
    "pull typo": "    pull: sometimes\n",
    "init yes": "    init: yes\n",
    "init number": "    init: 1\n",
    "label reserved": "    labels: {ngcws.project: x}\n",
    "image bad": "    image: Bad Image\n",
    "image number": "    image: 5\n",
    "image empty": "    image: ''\n",
    "restart_on absolute": "    restart_on: [/etc/x]\n",
    "restart_on home": "    restart_on: [~/x]\n",
    "restart_on outside": "    restart_on: [src/../../x]\n",
    "restart_on not a list": "    restart_on: src\n",
}

#: Rules JSON Schema cannot express: a shell-like split, uniqueness of a property across list
#: items, a comparison of two numbers. The loader refuses these; editors will not flag them.
LOADER_ONLY = {
    "command unbalanced": "    command: python 'x\n",
    "mount duplicate targets": "    mounts: ['.:/w', 'v:/w']\n",
    "ulimit soft over hard": "    ulimits: {nofile: {soft: 10, hard: 5}}\n",
}

WHOLE_FILES = {
    "no workspaces": ("name: x\n", False),
    "empty workspaces": ("workspaces: {}\n", False),
    "no image": ("workspaces:\n  t: {}\n", False),
    "bad workspace name": ("workspaces:\n  -t:\n" + IMAGE, False),
    "bad project name": ("name: Bad Name\nworkspaces:\n  t:\n" + IMAGE, False),
    "top-level extra": ("nope: 1\nworkspaces:\n  t:\n" + IMAGE, False),
    "extension fields": ("x-common: &c\n  image: nvcr.io/nvidia/pytorch:23.08-py3\nworkspaces:\n  t: *c\n", True),
    "named": ("name: lab-1\nworkspaces:\n  t:\n" + IMAGE, True),
    "workspace null": ("workspaces:\n  t:\n", False),
}


def verdicts(folder: Path, text: str) -> tuple[bool, bool, str]:
    (folder / "ngcws.yaml").write_text(text)
    try:
        load(cwd=folder, environ={"B": "inherited"})
        loader, why = True, ""
    except ConfigError as exc:
        loader, why = False, str(exc)
    try:
        jsonschema.validate(parse(text, "ngcws.yaml").data, json_schema())
        schema = True
    except jsonschema.ValidationError as exc:
        schema, why = False, why or exc.message
    return loader, schema, why


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "vars.env").write_text("A=1\n")
    return tmp_path


def workspace(body: str) -> str:
    return "workspaces:\n  t:\n" + ("" if body.startswith("    image:") else IMAGE) + body


@pytest.mark.parametrize("case", sorted(VALID))
def test_both_accept(folder: Path, case: str) -> None:
    loader, schema, why = verdicts(folder, workspace(VALID[case]))
    assert (loader, schema) == (True, True), why


@pytest.mark.parametrize("case", sorted(INVALID))
def test_both_reject(folder: Path, case: str) -> None:
    loader, schema, why = verdicts(folder, workspace(INVALID[case]))
    assert (loader, schema) == (False, False), why


@pytest.mark.parametrize("case", sorted(LOADER_ONLY))
def test_what_only_the_loader_can_refuse(folder: Path, case: str) -> None:
    loader, schema, why = verdicts(folder, workspace(LOADER_ONLY[case]))
    assert (loader, schema) == (False, True), f"the schema decides this now: move {case!r} to INVALID ({why})"


@pytest.mark.parametrize("case", sorted(WHOLE_FILES))
def test_whole_files(folder: Path, case: str) -> None:
    text, valid = WHOLE_FILES[case]
    loader, schema, why = verdicts(folder, text)
    assert (loader, schema) == (valid, valid), why
