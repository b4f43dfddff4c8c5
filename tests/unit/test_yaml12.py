"""Values mean what the file says: YAML 1.2 core-schema scalars, as Docker Compose reads its files.

PyYAML's defaults are YAML 1.1; each row below is a scalar whose meaning differs between the two,
with the value YAML 1.2 (and so Compose) gives it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from ngcws.errors import ConfigError
from ngcws.load import load
from ngcws.yamlsource import parse

# (unquoted scalar, YAML 1.2 core schema value, what PyYAML's YAML 1.1 SafeLoader makes of it)
TABLE: list[tuple[str, Any, Any]] = [
    ("22:22", "22:22", 1342),  # base-60 in 1.1: a port mapping became container port 1342
    ("1:30:00", "1:30:00", 5400),
    ("1:30", "1:30", 90),  # a MIG device index (GPU 1, instance 30)
    ("1000:59", "1000:59", 60059),  # user: UID:GID
    ("yes", "yes", True),
    ("no", "no", False),
    ("on", "on", True),
    ("off", "off", False),
    ("y", "y", "y"),
    ("Yes", "Yes", True),
    ("TRUE", True, True),
    ("false", False, False),
    ("017", 17, 15),  # decimal in 1.2, octal in 1.1
    ("0o17", 15, "0o17"),
    ("0x1F", 31, 31),
    ("1_000", "1_000", 1000),
    ("0b101", "0b101", 5),
    ("+12", 12, 12),
    ("-0o17", "-0o17", "-0o17"),
    ("1e3", 1000.0, "1e3"),
    ("1.50", 1.5, 1.5),
    (".inf", math.inf, math.inf),
    ("2001-12-14", "2001-12-14", "-"),  # a datetime.date in 1.1
    ("~", None, None),
    ("null", None, None),
    ("NULL", None, None),
    ("nul", "nul", "nul"),
    ("=", "=", "-"),  # PyYAML cannot even load it
]


@pytest.mark.parametrize(("text", "core", "yaml11"), TABLE, ids=[row[0] for row in TABLE])
def test_unquoted_scalars_follow_yaml_1_2(text: str, core: Any, yaml11: Any) -> None:
    value = parse(f"v: {text}\n", "f").data["v"]
    assert value == core and type(value) is type(core)
    if yaml11 != "-":  # what PyYAML's default makes of it
        old = yaml.safe_load(f"v: {text}\n")["v"]
        assert old == yaml11 or (math.isinf(yaml11) and math.isinf(old))


def test_keys_are_text_as_written() -> None:
    assert parse("env: {0x10: a, yes: b, 1: c}\n", "f").data["env"] == {"0x10": "a", "yes": "b", "1": "c"}


def test_quoted_and_explicitly_tagged_scalars() -> None:
    data = parse("a: '017'\nb: !!str 5\nc: !!int '7'\nd: \"yes\"\n", "f").data
    assert data == {"a": "017", "b": "5", "c": 7, "d": "yes"}
    with pytest.raises(ConfigError, match=r"f:1:4: a: unsupported tag"):
        parse("a: !!binary aGk=\n", "f")
    with pytest.raises(ConfigError, match="is not an integer"):
        parse("a: !!int five\n", "f")


def test_interpolated_plain_scalars_are_typed_by_their_result(tmp_path: Path) -> None:
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"
        "    gpus: ${N}\n    init: ${I}\n    user: ${U}\n    env:\n      A: ${N}\n      B: '${I}'\n"
    )
    ws = load(cwd=tmp_path, environ={"N": "2", "I": "false", "U": "1000:59"}).workspaces["t"]
    assert (ws.gpus, ws.init, ws.user, ws.env) == (2, False, "1000:59", {"A": "2", "B": "false"})


def write(folder: Path, text: str) -> None:
    (folder / "ngcws.yaml").write_text("workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n" + text)


def test_through_the_loader_fields_keep_the_users_text(tmp_path: Path) -> None:
    write(
        tmp_path,
        "    ports: [22:22, 8888, 127.0.0.1:6006:6006]\n"
        "    user: 1000:1000\n"
        "    gpus: [0:1, 1]\n"
        "    env: {NCCL_IB_DISABLE: yes, MODE: on, MASK: 017, LR: 1e-3, BIG: 1_000, HEX: 0x1F, F: 1.50, T: TRUE}\n"
        "    labels: {zero: 017}\n"
        "    command: [python, train.py, --lr, 1e-3, --epochs, 010, --flag, yes]\n",
    )
    ws = load(cwd=tmp_path, environ={}).workspaces["t"]
    assert [(p["host_port"], p["container_port"]) for p in ws.ports] == [(22, 22), (None, 8888), (6006, 6006)]
    assert ws.user == "1000:1000"
    assert ws.gpus == ["0:1", "1"]
    assert ws.env == {
        "NCCL_IB_DISABLE": "yes", "MODE": "on", "MASK": "017", "LR": "1e-3", "BIG": "1_000", "HEX": "0x1F",
        "F": "1.50", "T": "TRUE",
    }  # fmt: skip
    assert ws.labels == {"zero": "017"}
    assert ws.command == ["python", "train.py", "--lr", "1e-3", "--epochs", "010", "--flag", "yes"]


def test_a_field_that_needs_a_boolean_refuses_yes(tmp_path: Path) -> None:
    write(tmp_path, "    init: yes\n")
    with pytest.raises(ConfigError, match=r"workspaces\.t\.init"):
        load(cwd=tmp_path, environ={})
