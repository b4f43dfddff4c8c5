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


def test_an_interpolated_scalar_stays_text_and_each_field_parses_it(tmp_path: Path) -> None:
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"
        "    gpus: ${N}\n    init: ${I}\n    user: ${U}\n    shm_size: ${S}\n    ulimits:\n      nofile: ${L}\n"
        "    ports:\n      - ${P}\n    env:\n      A: ${N}\n      B: '${I}'\n      C: ${E}\n"
    )
    environ = {"N": "2", "I": "false", "U": "1000:59", "S": "1073741824", "L": "1000", "P": "8888", "E": "0x1F"}
    ws = load(cwd=tmp_path, environ=environ).workspaces["t"]
    assert (ws.gpus, ws.init, ws.user, ws.shm_size) == (2, False, "1000:59", 1 << 30)
    assert (ws.ulimits["nofile"].soft, ws.ports[0]["container_port"]) == (1000, 8888)
    assert ws.env == {"A": "2", "B": "false", "C": "0x1F"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("user", "0o17", "a user name"),  # the text 0o17, never the octal number 15
        ("gpus", "017", "not a GPU count"),  # never a count of 17
        ("init", "yes", "expected true or false"),
        ("shm_size", "", "expected a size"),  # an empty value is not a null that means the default
        ("working_dir", "", "absolute path"),  # not a null that means the default
    ],
)
def test_an_interpolated_value_never_changes_kind(tmp_path: Path, field: str, value: str, message: str) -> None:
    base = "" if field == "image" else "    image: nvcr.io/nvidia/pytorch:23.08-py3\n"
    (tmp_path / "ngcws.yaml").write_text(f"workspaces:\n  t:\n{base}    {field}: ${{V}}\n")
    with pytest.raises(ConfigError, match=message):
        load(cwd=tmp_path, environ={"V": value})


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


def test_an_env_value_interpolated_to_empty_or_null_is_that_text_never_the_host_value(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("E=\nV=null\nT=~\n")
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n    env:\n"
        "      CUDA_VISIBLE_DEVICES: ${GPUS:-}\n      OTHER: ${GPUS-}\n      D2: ${E-d2}\n"
        "      X: ${V}\n      Y: ${T}\n      FROM_HOST:\n"
    )
    host = {"CUDA_VISIBLE_DEVICES": "7", "OTHER": "hostother", "D2": "host", "X": "host", "Y": "host", "FROM_HOST": "h"}
    ws = load(cwd=tmp_path, environ=host).workspaces["t"]
    assert ws.env == {"CUDA_VISIBLE_DEVICES": "", "OTHER": "", "D2": "", "X": "null", "Y": "~", "FROM_HOST": "h"}


def test_a_byte_order_mark_is_ignored_in_ngcws_yaml_dotenv_and_env_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("\ufeffTAG=23.08-py3\n")
    (tmp_path / "vars.env").write_text("\ufeffA=1\n")
    (tmp_path / "ngcws.yaml").write_text(
        "\ufeffworkspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:${TAG}\n    env_file: vars.env\n"
    )
    ws = load(cwd=tmp_path, environ={}).workspaces["t"]
    assert (ws.image, ws.env) == ("nvcr.io/nvidia/pytorch:23.08-py3", {"A": "1"})
