"""The JSON Schema of ngcws.yaml, generated from the models (checked in as schemas/ngcws.schema.json)."""

from __future__ import annotations

import json
from typing import Any

#: An identifier, not a location: the schema is in the package (`ngcws schema`), in the source
#: tree (schemas/ngcws.schema.json) and next to each ngcws.yaml that `ngcws init` wrote.
SCHEMA_ID = "urn:ngcws:schema:ngcws.yaml"


def json_schema() -> dict[str, Any]:
    from ngcws.model import ProjectFile

    schema = ProjectFile.model_json_schema()
    schema["$id"] = SCHEMA_ID
    # The models validate long forms; the file may also use the short forms their validators
    # accept (`memlock: -1`, `".:/workspace"`), so the schema says so too.
    props = schema["$defs"]["Workspace"]["properties"]
    props["ulimits"]["additionalProperties"] = {
        "anyOf": [{"type": "integer", "minimum": -1}, {"$ref": "#/$defs/Ulimit"}]
    }
    props["mounts"]["items"] = {
        "anyOf": [{"type": "string", "description": "SRC:DST[:ro|rw]"}, {"$ref": "#/$defs/Mount"}]
    }
    return schema


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
