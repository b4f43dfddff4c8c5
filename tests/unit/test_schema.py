"""The checked-in JSON Schema is what the models generate, and the example satisfies it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from ngcws.schema import json_schema
from ngcws.yamlsource import parse

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_schema_is_up_to_date() -> None:
    checked_in = json.loads((ROOT / "schemas" / "ngcws.schema.json").read_text())
    assert checked_in == json_schema(), "run: python -m ngcws schema > schemas/ngcws.schema.json"


def test_example_validates_against_the_schema() -> None:
    example = parse((ROOT / "ngcws.yaml.example").read_text(), "ngcws.yaml.example").data  # YAML 1.2, as loaded
    jsonschema.validate(example, json_schema())


@pytest.mark.parametrize(
    "bad",
    [
        {"workspaces": {"t": {"image": "x", "shm": "1g"}}},
        {"workspaces": {"t": {"image": "x", "ipc": "hots"}}},
        {"workspaces": {"t": {"gpus": "all"}}},
        {"nope": 1, "workspaces": {"t": {"image": "x"}}},
    ],
)
def test_schema_rejects_what_the_loader_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())


def test_schema_accepts_the_short_forms() -> None:
    jsonschema.validate(
        {
            "x-anchors": {},
            "workspaces": {
                "t": {
                    "image": "x",
                    "gpus": 2,
                    "shm_size": "16g",
                    "ulimits": {"memlock": -1, "nofile": {"soft": 1, "hard": 2}},
                    "mounts": [".:/w", {"target": "/t", "type": "tmpfs"}],
                    "env": ["A=1"],
                    "command": "python x.py",
                    "ports": [8888, "6006:6006"],
                }
            },
        },
        json_schema(),
    )
