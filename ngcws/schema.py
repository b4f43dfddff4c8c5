"""The JSON Schema of ngcws.yaml, generated from the models (checked in as schemas/ngcws.schema.json)."""

from __future__ import annotations

import json
from typing import Any

SCHEMA_URL = "https://raw.githubusercontent.com/ngcws/ngcws/main/schemas/ngcws.schema.json"


def json_schema() -> dict[str, Any]:
    from ngcws.model import ProjectFile

    schema = ProjectFile.model_json_schema()
    schema["$id"] = SCHEMA_URL
    return schema


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
