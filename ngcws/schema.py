"""The JSON Schema of ngcws.yaml, generated from the models (checked in as schemas/ngcws.schema.json)."""

from __future__ import annotations

import json
from typing import Any

#: An identifier, not a location: the schema is in the package (`ngcws schema`), in the source
#: tree (schemas/ngcws.schema.json) and next to each ngcws.yaml that `ngcws init` wrote.
SCHEMA_ID = "urn:ngcws:schema:ngcws.yaml"


def json_schema() -> dict[str, Any]:
    """The models' schema, plus the hand-written fragments for what a model's validator decides
    in code (each one is exercised by tests/unit/test_schema_agreement.py)."""
    from ngcws import values
    from ngcws.imageref import IMAGE_PATTERN
    from ngcws.model import ULIMIT_NAMES, USER_PATTERN, WORKSPACE_PATTERN
    from ngcws.values import INTEGER_TEXT

    schema = _model_schema()
    schema["$id"] = SCHEMA_ID
    defs = schema["$defs"]
    props = defs["Workspace"]["properties"]
    gpu_id = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": f"^{values.GPU_ID_PATTERN}$"}]}
    caps = "(?:" + "|".join([*values.CAPABILITIES, "all"]) + ")"
    not_reserved = {"not": {"pattern": r"^ngcws\."}}
    # Short forms the validators accept: `memlock: -1`, `".:/workspace"`, `gpus: "0,1"`, ...
    props["ulimits"]["additionalProperties"] = {
        "anyOf": [
            {"type": "integer", "minimum": -1},
            {"type": "string", "pattern": INTEGER_TEXT},
            {"$ref": "#/$defs/Ulimit"},
        ]
    }
    props["ulimits"]["propertyNames"] = {"enum": list(ULIMIT_NAMES)}
    volume = r"[a-zA-Z0-9][a-zA-Z0-9_.-]*"
    props["mounts"]["items"] = {
        "anyOf": [
            {
                "type": "string",
                "description": "SRC:DST[:ro|rw] (SRC starting with / . ~ is a host path, else a volume name), or DST",
                "pattern": rf"^(?:(?:[/.~][^:]*|{volume}):)?/[^:]*(?::(?:ro|rw))?$",
            },
            {"$ref": "#/$defs/Mount"},
        ]
    }
    props["gpus"]["anyOf"][1]["minimum"] = 1  # gpus: 0 is refused (docker: Count 0; guide readers: GPU 0)
    props["gpus"]["anyOf"][2]["items"] = gpu_id
    props["gpus"]["anyOf"][2]["uniqueItems"] = True
    props["gpus"]["anyOf"][3]["pattern"] = rf"^(?!0+$)(?:device=)?{values.GPU_ID_PATTERN}(?:,{values.GPU_ID_PATTERN})*$"
    props["gpus"]["anyOf"][3]["description"] = "a count, GPU ids separated by commas, or docker's device=0,1"
    long_gpus = props["gpus"]["anyOf"][4]
    long_gpus["properties"]["device_ids"]["items"] = gpu_id
    long_gpus["properties"]["device_ids"].update(minItems=1, uniqueItems=True)
    long_gpus.update(minProperties=1, maxProperties=1)  # count or device_ids, not both
    props["capabilities"]["anyOf"].insert(
        1, {"type": "string", "pattern": rf"^\s*{caps}\s*(?:,\s*{caps}\s*)*$", "description": "comma-separated"}
    )
    props["image"]["pattern"] = IMAGE_PATTERN
    props["working_dir"]["anyOf"][0]["pattern"] = "^/"
    props["user"]["anyOf"] = [
        {"type": "string", "pattern": USER_PATTERN},
        {"type": "integer", "minimum": 0},
        {"type": "null"},
    ]
    props["ports"]["items"] = {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": values.PORT_PATTERN},
        ]
    }
    props["command"]["anyOf"][1]["items"] = {"type": ["string", "number", "boolean"]}  # arguments as written
    for name, item in (("env", {"pattern": "^[^=]"}), ("labels", {"pattern": "^[^=]", **not_reserved})):
        props[name]["anyOf"][1]["items"] = {"type": "string", **item}
    props["labels"]["anyOf"][0]["propertyNames"] = not_reserved
    # shm_size has no effect with ipc: host
    defs["Workspace"]["not"] = {"required": ["ipc", "shm_size"], "properties": {"ipc": {"const": "host"}}}
    # A mount's target is absolute; tmpfs has no source; a volume source is a volume name; a bind
    # mount (the default type) needs a source.
    mount = defs["Mount"]
    mount["properties"]["target"]["pattern"] = "^/"
    mount["allOf"] = [
        {"if": _type_is("tmpfs"), "then": {"not": {"required": ["source"]}}},
        {"if": _type_is("volume"), "then": {"properties": {"source": {"pattern": f"^{volume}$"}}}},
        {"if": {"not": {"anyOf": [_type_is("tmpfs"), _type_is("volume")]}}, "then": {"required": ["source"]}},
    ]
    schema["properties"]["workspaces"]["propertyNames"] = {"pattern": WORKSPACE_PATTERN}
    return schema


def _type_is(kind: str) -> dict[str, Any]:
    return {"required": ["type"], "properties": {"type": {"const": kind}}}


def _model_schema() -> dict[str, Any]:
    from ngcws.model import ProjectFile

    return ProjectFile.model_json_schema()


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
