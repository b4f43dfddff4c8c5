"""`ngcws config` prints a valid ngcws.yaml: loaded back, it gives the same desired state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ngcws.load import load
from ngcws.resolved import dump_yaml, resolved_file
from ngcws.spec import DesiredState, Identity, Invoker, Secrets, desired_state
from tests.unit.test_schema_agreement import VALID, workspace

ROOT = Path(__file__).resolve().parents[2]
INVOKER = Invoker(uid=1000, gid=1000, name="me", group="me")
KEY = b"k" * 32

#: Values that a naive printer would not give back: `$`, YAML 1.2 non-strings, every port form.
TRICKY = {
    "dollars": "    env: {PRICE: $$5, LITERAL: 'a$$b', REF: '${X}'}\n    command: [echo, $$HOME]\n",
    "yaml12 words": "    env: {O: '0o17', H: '0x1F', T: 'true', N: 'null', E: ''}\n    labels: {a: '017'}\n",
    "ports": '    ports: [8888, "22:22", "127.0.0.1:6006:6006/udp", "[::1]:7000:7000", "127.0.0.1::9000"]\n',
    "env_file under env": "    env_file: vars.env\n    env: {B: '2'}\n",
    "mounts": "    mounts: ['./data:/data:ro', 'cache:/cache', {type: tmpfs, target: /t}, "
    "{source: ./new, target: /new, create_host_path: true}]\n",
    "everything": "    gpus: [0, 1]\n    capabilities: [compute, utility]\n    shm_size: 1.5g\n    ulimits: {memlock: -1,"
    " nofile: {soft: 1024, hard: 2048}}\n    user: host\n    working_dir: /w\n    restart: always\n    pull: never\n"
    "    init: false\n    command: python train.py --lr 1e-3\n",
}


def state_of(project: Any) -> DesiredState:
    identity = Identity(project.name, str(project.directory), "ngcws.yaml")  # the same file name for both
    return desired_state(identity, project.workspaces, INVOKER, Secrets(KEY, project.secret_env, project.secret_values))


def round_trip(folder: Path, text: str, environ: dict[str, str]) -> tuple[DesiredState, DesiredState, str]:
    (folder / "ngcws.yaml").write_text(text)
    project = load(cwd=folder, environ=environ)
    printed = dump_yaml(resolved_file(project))
    (folder / "printed.yaml").write_text(printed)
    again = load("printed.yaml", cwd=folder, environ={})
    return state_of(project), state_of(again), printed


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "vars.env").write_text("A=1\nB=1\nC=$${x}\n")
    return tmp_path


CORPUS = {**{f"valid: {k}": v for k, v in VALID.items()}, **{f"tricky: {k}": v for k, v in TRICKY.items()}}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_config_output_loads_back_to_the_same_desired_state(folder: Path, case: str) -> None:
    before, after, printed = round_trip(folder, "name: rt\n" + workspace(CORPUS[case]), {"X": "x"})
    assert after == before, printed


def test_the_example_file_round_trips(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(folder))
    (folder / "datasets").mkdir()
    before, after, printed = round_trip(folder, (ROOT / "ngcws.yaml.example").read_text(), {})
    assert after == before, printed


def test_the_command_prints_what_loads_back(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text("name: rt\n" + workspace(TRICKY["ports"] + "    env: {P: '${P}'}\n"))
    result = subprocess.run(
        [sys.executable, "-m", "ngcws", "config"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={**os.environ, "P": "a$b"},
    )
    assert result.returncode == 0, result.stderr
    (folder / "printed.yaml").write_text(result.stdout)
    assert state_of(load("printed.yaml", cwd=folder, environ={})) == state_of(load(cwd=folder, environ={"P": "a$b"}))
