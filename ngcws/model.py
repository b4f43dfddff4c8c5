"""The ngcws.yaml models: strict on input, canonical on output.

Every field accepts the spellings users bring from ``docker run`` and Docker Compose and is
validated into one canonical value (sizes in bytes, GPU ids as strings, mounts in long form), so
two files that mean the same container produce the same model. Paths and env files are resolved
against the project folder given in the validation context (see :mod:`ngcws.load`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ngcws import inputs, values
from ngcws.clusters.model import Distributed
from ngcws.imageref import parse_image

LABEL_PREFIX = "ngcws."
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
WORKSPACE_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
USER_PATTERN = r"^(host|[a-z_][a-z0-9_.-]*\$?|\d+)(:([a-z_][a-z0-9_.-]*|\d+))?$"
ULIMIT_NAMES = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip


_IMAGE_SCHEMA = {
    "type": "string",
    "description": "Image reference, e.g. nvcr.io/nvidia/pytorch:23.08-py3 (or nvcr.io#nvidia/pytorch:23.08-py3)",
}
_GPU_ID = {"type": ["string", "integer"], "description": "index (0), GPU-<uuid>, MIG index (0:1) or MIG-<uuid>"}
_GPUS_SCHEMA = {
    "description": "all | none | a count | a list of GPU ids",
    "anyOf": [
        {"enum": ["all", "none"]},
        {"type": "integer", "minimum": 1},
        {"type": "array", "items": _GPU_ID, "minItems": 1},
        {"type": "string", "pattern": "^device=", "description": "docker's device=0,1 spelling"},
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "count": {"type": "integer", "minimum": 1},
                "device_ids": {"type": "array", "items": _GPU_ID},
            },
        },
    ],
}
_SIZE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[bkmgtBKMGT]?(i?[bB])?\s*$"},
    ],
    "description": "bytes, or a number with b/k/m/g/t",
}
_CAPS_SCHEMA = {
    "type": "array",
    "items": {"enum": [*values.CAPABILITIES, "all"]},
    "description": "NVIDIA driver capabilities; unset keeps the image's NVIDIA_DRIVER_CAPABILITIES",
}
_MAP_SCHEMA = {
    "anyOf": [
        {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        {"type": "array", "items": {"type": "string"}},
    ]
}
_COMMAND_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "number"]}}]}
_PORT_SCHEMA = {
    "type": "array",
    "items": {"type": ["string", "integer"]},
    "description": '"HOST:CONTAINER[/proto]", "IP:HOST:CONTAINER" or CONTAINER',
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


ULIMIT_EXPECTED = "expected a limit (a whole number, -1 for unlimited) or {soft: N, hard: N}"


def _limit(value: Any) -> int:
    limit = values.parse_integer(value, "a whole number, -1 for unlimited")
    if limit < -1:
        raise ValueError(f"a limit is -1 (unlimited) or more, got {limit}")
    return limit


_INTEGER_TEXT = {"type": "string", "pattern": values.INTEGER_TEXT}
_LIMIT_SCHEMA = {"anyOf": [{"type": "integer", "minimum": -1}, {**_INTEGER_TEXT, "description": "interpolated"}]}
Limit = Annotated[int, PlainValidator(_limit, json_schema_input_type=Any), Field(json_schema_extra=_LIMIT_SCHEMA)]
Bool = Annotated[
    bool,
    PlainValidator(values.parse_bool, json_schema_input_type=Any),
    Field(json_schema_extra={"anyOf": [{"type": "boolean"}, {"enum": list(values.BOOL_TEXTS)}]}),
]


def _count(value: Any) -> int:
    count = values.parse_integer(value, "a whole number, 0 or more")
    if count < 0:
        raise ValueError(f"expected a whole number, 0 or more, got {count}")
    return count


Count = Annotated[
    int,
    PlainValidator(_count, json_schema_input_type=Any),
    Field(json_schema_extra={"anyOf": [{"type": "integer", "minimum": 0}, _INTEGER_TEXT]}),
]


class Ulimit(_Strict):
    """One resource limit; ``-1`` means unlimited."""

    model_config = ConfigDict(json_schema_extra={"description": "a limit, or {soft: N, hard: N}"})

    soft: Limit
    hard: Limit

    @model_validator(mode="before")
    @classmethod
    def _from_int(cls, data: Any) -> Any:
        if isinstance(data, (dict, cls)):
            return data
        try:
            limit = _limit(data)
        except ValueError:
            raise ValueError(f"{ULIMIT_EXPECTED}, got {values.shown(data)}") from None
        return {"soft": limit, "hard": limit}

    @model_validator(mode="after")
    def _soft_within_hard(self) -> Ulimit:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError(f"soft limit {self.soft} exceeds hard limit {self.hard}")
        return self


class Mount(_Strict):
    """A bind mount, named volume or tmpfs, in long form."""

    type: Literal["bind", "volume", "tmpfs"] = "bind"
    source: str | None = Field(default=None, description="Host path (bind) or volume name (volume)")
    target: str = Field(description="Absolute path inside the container")
    read_only: Bool = False
    create_host_path: Bool = Field(
        default=False, description="bind: create a missing source folder (owned by you) instead of failing"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_short(cls, data: Any) -> Any:
        if not isinstance(data, str):
            return data
        parts = data.split(":")
        mode = None
        if len(parts) == 3 or (len(parts) == 2 and parts[1] in ("ro", "rw")):
            *parts, mode = parts
            if mode not in ("ro", "rw"):
                raise ValueError(f"unknown mount mode {mode!r}: use ro or rw")
        if len(parts) == 1:
            return {"type": "volume", "target": parts[0], "read_only": mode == "ro"}
        if len(parts) != 2 or not parts[0]:
            raise ValueError(f"expected SOURCE:TARGET[:ro|rw], got {data!r}")
        source, target = parts
        kind = "bind" if source.startswith(("/", ".", "~", "$")) else "volume"
        return {"type": kind, "source": source, "target": target, "read_only": mode == "ro"}

    @field_validator("target")
    @classmethod
    def _absolute_target(cls, target: str) -> str:
        if not target.startswith("/"):
            raise ValueError(f"the mount target must be an absolute path inside the container, got {target!r}")
        return target.rstrip("/") or "/"

    @model_validator(mode="after")
    def _resolve_source(self, info: ValidationInfo) -> Mount:
        if self.type == "tmpfs":
            if self.source:
                raise ValueError("a tmpfs mount has no source")
            return self
        if self.type == "volume":
            if self.source and not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", self.source):
                raise ValueError(f"{self.source!r} is not a volume name (a host path must start with /, ./ or ~)")
            return self
        if not self.source:
            raise ValueError("a bind mount needs a source path")
        base = Path((info.context or {}).get("project_dir", "."))
        resolved = inputs.resolve(info.context, base / os.path.expanduser(self.source))
        if not resolved.exists() and not self.create_host_path:
            raise ValueError(
                f"the bind-mount source {str(resolved)!r} does not exist; create it, fix the path,"
                " or use the long form with create_host_path: true"
            )
        object.__setattr__(self, "source", str(resolved))
        return self


Image = Annotated[str, PlainValidator(parse_image, json_schema_input_type=Any), Field(json_schema_extra=_IMAGE_SCHEMA)]
Gpus = Annotated[
    str | int | list[str],
    PlainValidator(values.parse_gpus, json_schema_input_type=Any),
    Field(json_schema_extra=_GPUS_SCHEMA),
]
Size = Annotated[
    int, PlainValidator(values.parse_size, json_schema_input_type=Any), Field(json_schema_extra=_SIZE_SCHEMA)
]
Capabilities = Annotated[
    list[str],
    PlainValidator(values.parse_capabilities, json_schema_input_type=Any),
    Field(json_schema_extra=_CAPS_SCHEMA),
]
Command = Annotated[
    list[str],
    PlainValidator(values.parse_command, json_schema_input_type=Any),
    Field(json_schema_extra=_COMMAND_SCHEMA),
]


def _env(value: Any, info: ValidationInfo) -> dict[str, str]:
    return values.parse_mapping(value, "env", (info.context or {}).get("variables", os.environ))


def _labels(value: Any) -> dict[str, str]:
    labels = values.parse_mapping(value, "labels")
    for key in labels:
        if key.startswith(LABEL_PREFIX):
            raise ValueError(f"label {key!r}: the {LABEL_PREFIX} prefix is reserved for ngcws")
    return labels


def _ports(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise ValueError(f"expected a list of ports, got {value!r}")
    return [values.parse_port(item) for item in value]


def _env_files(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a path or a list of paths, got {value!r}")
    return items


_STRINGS_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_DURATION_SCHEMA = {
    "type": ["string", "number"],
    "description": "a duration such as 10s, 1m30s or 500ms (a number is seconds)",
}


class FieldConflict(ValueError):
    """Two fields of one workspace that cannot be combined; errors point at ``fields[0]``."""

    def __init__(self, message: str, fields: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fields = fields


class Healthcheck(_Strict):
    """``HEALTHCHECK`` for the workspace: ``ngcws ps`` shows healthy / unhealthy."""

    test: Annotated[
        list[str] | None,
        PlainValidator(values.parse_healthcheck_test, json_schema_input_type=Any),
        Field(json_schema_extra=_COMMAND_SCHEMA),
    ] = Field(default=None, description='a shell command, or ["CMD", ...] / ["CMD-SHELL", "..."] / ["NONE"]')
    interval: Annotated[
        int | None,
        PlainValidator(values.parse_duration, json_schema_input_type=Any),
        Field(json_schema_extra=_DURATION_SCHEMA),
    ] = None
    timeout: Annotated[
        int | None,
        PlainValidator(values.parse_duration, json_schema_input_type=Any),
        Field(json_schema_extra=_DURATION_SCHEMA),
    ] = None
    start_period: Annotated[
        int | None,
        PlainValidator(values.parse_duration, json_schema_input_type=Any),
        Field(json_schema_extra=_DURATION_SCHEMA),
    ] = None
    retries: Count | None = None
    disable: Bool = False

    @model_validator(mode="after")
    def _test_or_disable(self) -> Healthcheck:
        if self.disable and self.test not in (None, ["NONE"]):
            raise ValueError("disable: true and a test cannot be combined; drop one")
        if not self.disable and self.test is None:
            raise ValueError("a healthcheck needs a test (or disable: true to turn off the image's)")
        return self


Duration = Annotated[
    int, PlainValidator(values.parse_duration, json_schema_input_type=Any), Field(json_schema_extra=_DURATION_SCHEMA)
]


def _strings(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in items):
        raise ValueError(f"expected a string or a list of strings, got {value!r}")
    return [str(i).strip() for i in items]


def _network_mode(value: Any) -> str:
    if isinstance(value, str):
        text = value.strip()
        if text in ("bridge", "host", "none"):
            return text
        if text.startswith("container:") and re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", text[len("container:") :]):
            return text
    raise ValueError(
        f"expected bridge, host, none or container:NAME, got {value!r}"
        + (" (to join a network by name, use networks:)" if isinstance(value, str) else "")
    )


def _networks(value: Any) -> list[str]:
    if isinstance(value, dict):
        for name, options in value.items():
            if options not in (None, {}):
                raise ValueError(f"network {name!r}: per-network options are not supported; write {name}: {{}}")
        value = list(value)
    items = _strings(value)
    for name in items:
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", name):
            raise ValueError(f"{name!r} is not a network name")
        if name in ("host", "none"):
            raise ValueError(f"{name!r} is a network mode: write network_mode: {name}")
    if len(set(items)) != len(items):
        raise ValueError("a network is listed twice")
    return sorted(items)


def _devices(value: Any) -> list[dict[str, str]]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected a list of devices, got {value!r}")
    out = [values.parse_device(item) for item in items]
    targets = [d["target"] for d in out]
    for target in targets:
        if targets.count(target) > 1:
            raise ValueError(f"two devices target {target!r}")
    return out


def _security_opt(value: Any, info: ValidationInfo) -> list[str]:
    """As written, except that ``seccomp=PROFILE.json`` becomes the profile's content, as the docker
    CLI sends it (the engine cannot read the client's files); the file is recorded as read."""
    out = []
    for item in _strings(value):
        key, _, rest = item.partition("=")
        if re.split(r"[=:]", item, maxsplit=1)[0] not in SECURITY_OPTIONS:
            raise ValueError(
                f"unknown security option {item!r}; expected seccomp=..., apparmor=..., label=..., no-new-privileges"
            )
        if key == "seccomp" and rest not in ("unconfined", "builtin", "") and not rest.lstrip().startswith("{"):
            base = Path((info.context or {}).get("project_dir", "."))
            profile = inputs.resolve(info.context, base / os.path.expanduser(rest))
            try:
                content = json.loads(inputs.read_text(info.context, profile))  # recorded for the cache
            except OSError as exc:
                raise ValueError(f"seccomp profile {str(profile)!r} cannot be read: {exc.strerror}") from None
            except ValueError as exc:
                raise ValueError(f"seccomp profile {str(profile)!r} is not JSON: {exc}") from None
            item = "seccomp=" + json.dumps(content, separators=(",", ":"), ensure_ascii=False)
        out.append(item)
    return out


SECURITY_OPTIONS = ("seccomp", "apparmor", "label", "no-new-privileges", "systempaths", "mask", "unmask")


def _dns(value: Any) -> list[str]:
    return [values.parse_ip(item, "dns") for item in _strings(value)]


def _sysctls(value: Any) -> dict[str, str]:
    found = values.parse_mapping(value, "sysctls")
    for key in found:
        if not re.match(r"^[a-z0-9_]+(\.[a-zA-Z0-9_*-]+)+$", key):
            raise ValueError(f"{key!r} is not a sysctl name such as net.core.somaxconn")
    return dict(sorted(found.items()))


def _group_add(value: Any) -> list[str]:
    items = _strings(value)
    for item in items:
        if not re.match(r"^([a-z_][a-z0-9_.-]*\$?|\d+)$", item):
            raise ValueError(f"{item!r} is not a group name or id")
    return sorted(set(items), key=items.index)


def _memswap(value: Any) -> int:
    if value == -1 or value == "-1":
        return -1
    return values.parse_size(value)


def _pids_limit(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a number of processes (or -1 for unlimited), got {value!r}")
    if value < -1:
        raise ValueError(f"expected a number of processes (or -1 for unlimited), got {value}")
    return value if value > 0 else None  # 0 and -1 both mean unlimited, as with docker


def _entrypoint(value: Any) -> list[str]:
    if value == "" or value == []:
        return [""]  # docker run --entrypoint '': drop the image's entrypoint
    return values.parse_command(value)


def _cpus(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number of CPUs such as 1.5, got {value!r}")
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number of CPUs such as 1.5, got {value!r}") from None
    if not 0.01 <= cpus <= 10_000 or round(cpus * 1e9) % 10_000_000:
        raise ValueError(f"cpus must be at least 0.01, in steps of 0.01, got {value!r}")
    return cpus


_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$")


#: A restart_on entry: relative, inside the project folder (no leading / or ~, no .. segment).
RESTART_ON_PATTERN = r"^(?![/~])(?!(.*/)?\.\.(/|$)).+$"


class Workspace(_Strict):
    """One container: an NGC image with the GPUs, memory settings, mounts and env it needs."""

    image: Image
    gpus: Gpus = "all"
    capabilities: Capabilities | None = None
    gpu_request: Literal["auto", "device-requests", "runtime", "cdi"] = Field(
        default="auto",
        description="How GPUs are asked of the engine: device-requests (docker run --gpus; Docker >= 19.03), "
        "runtime (--runtime=nvidia with NVIDIA_VISIBLE_DEVICES, the nvidia-docker era), cdi (CDI device names "
        "nvidia.com/gpu=N; Docker >= 25 with CDI enabled), auto (device-requests, or runtime on engines older "
        "than API 1.40)",
    )
    shm_size: Size | None = None
    ipc: Literal["private", "shareable", "host", "none"] | None = None
    ulimits: dict[str, Ulimit] = Field(
        default_factory=dict,
        description="e.g. {memlock: -1, stack: 67108864}",
    )
    mounts: list[Mount] = Field(
        default_factory=list,
        description='"SRC:DST[:ro|rw]" or the long form',
    )
    env: Annotated[
        dict[str, str], PlainValidator(_env, json_schema_input_type=Any), Field(json_schema_extra=_MAP_SCHEMA)
    ] = Field(default_factory=dict)
    env_file: Annotated[
        list[str],
        PlainValidator(_env_files, json_schema_input_type=Any),
        Field(json_schema_extra={"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
    ] = Field(default_factory=list)
    working_dir: str | None = None
    user: str | None = Field(default=None, description='root | "UID[:GID]" | a user name | host (your uid:gid)')
    command: Command | None = None
    ports: Annotated[
        list[dict[str, Any]], PlainValidator(_ports, json_schema_input_type=Any), Field(json_schema_extra=_PORT_SCHEMA)
    ] = Field(default_factory=list)
    restart: Literal["no", "always", "on-failure", "unless-stopped"] = "no"
    pull: Literal["missing", "always", "never"] = "missing"
    init: Bool = True
    labels: Annotated[
        dict[str, str], PlainValidator(_labels, json_schema_input_type=Any), Field(json_schema_extra=_MAP_SCHEMA)
    ] = Field(default_factory=dict)
    ignore_changes: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description="Paths in the container whose changes are never work to keep (added to the built-in list: "
        "caches, /tmp, bytecode); '/opt/scratch' from the root, '*.log' by name. See docs/safety.md",
    )
    distributed: Distributed | None = Field(
        default=None, description="Multi-node: ngcws submit (Slurm), ngcws export k8s; over the top-level block"
    )
    restart_on: list[str] = Field(
        default_factory=list,
        description='Under `ngcws up --watch`: paths (globs relative to this file, e.g. "src/**/*.py") whose '
        "changes restart the workspace",
        json_schema_extra={"items": {"type": "string", "pattern": RESTART_ON_PATTERN}},
    )

    @field_validator("restart_on")
    @classmethod
    def _relative_patterns(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if not pattern or pattern.startswith(("/", "~")) or ".." in pattern.split("/"):
                raise ValueError(f"restart_on: {pattern!r} must be a path relative to ngcws.yaml's folder, inside it")
        return patterns

    network_mode: Annotated[
        str | None,
        PlainValidator(_network_mode, json_schema_input_type=Any),
        Field(
            json_schema_extra={
                "anyOf": [{"enum": ["bridge", "host", "none"]}, {"type": "string", "pattern": "^container:"}]
            }
        ),
    ] = None
    networks: Annotated[
        list[str],
        PlainValidator(_networks, json_schema_input_type=Any),
        Field(
            json_schema_extra={
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
                "description": "existing networks to join",
            }
        ),
    ] = Field(default_factory=list)
    devices: Annotated[
        list[dict[str, str]],
        PlainValidator(_devices, json_schema_input_type=Any),
        Field(
            json_schema_extra={
                "type": "array",
                "items": {"type": "string"},
                "description": '"/dev/HOST[:/dev/CONTAINER][:rwm]"',
            }
        ),
    ] = Field(default_factory=list)
    cap_add: Annotated[
        list[str],
        PlainValidator(values.parse_linux_capabilities, json_schema_input_type=Any),
        Field(json_schema_extra=_STRINGS_SCHEMA),
    ] = Field(default_factory=list)
    cap_drop: Annotated[
        list[str],
        PlainValidator(values.parse_linux_capabilities, json_schema_input_type=Any),
        Field(json_schema_extra=_STRINGS_SCHEMA),
    ] = Field(default_factory=list)
    security_opt: Annotated[
        list[str], PlainValidator(_security_opt, json_schema_input_type=Any), Field(json_schema_extra=_STRINGS_SCHEMA)
    ] = Field(default_factory=list)
    privileged: Bool = False
    entrypoint: Annotated[
        list[str] | None,
        PlainValidator(_entrypoint, json_schema_input_type=Any),
        Field(json_schema_extra=_COMMAND_SCHEMA),
    ] = None
    hostname: str | None = Field(default=None, pattern=_HOSTNAME.pattern)
    extra_hosts: Annotated[
        list[str],
        PlainValidator(values.parse_extra_hosts, json_schema_input_type=Any),
        Field(
            json_schema_extra={
                "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
                "description": '"HOST:IP", "HOST=IP" or {HOST: IP}',
            }
        ),
    ] = Field(default_factory=list)
    dns: Annotated[
        list[str], PlainValidator(_dns, json_schema_input_type=Any), Field(json_schema_extra=_STRINGS_SCHEMA)
    ] = Field(default_factory=list)
    cpus: Annotated[
        float | None,
        PlainValidator(_cpus, json_schema_input_type=Any),
        Field(json_schema_extra={"type": ["number", "string"]}),
    ] = None
    cpuset: str | None = Field(
        default=None, pattern=r"^\d+(-\d+)?(,\d+(-\d+)?)*$", description='CPUs allowed, e.g. "0-3,8"'
    )
    mem_limit: Size | None = None
    memswap_limit: Annotated[
        int | None,
        PlainValidator(_memswap, json_schema_input_type=Any),
        Field(json_schema_extra={"anyOf": [_SIZE_SCHEMA, {"const": -1}]}),
    ] = None
    pids_limit: Annotated[
        int | None,
        PlainValidator(_pids_limit, json_schema_input_type=Any),
        Field(json_schema_extra={"type": "integer", "minimum": -1}),
    ] = None
    tmpfs: Annotated[
        dict[str, str],
        PlainValidator(values.parse_tmpfs, json_schema_input_type=Any),
        Field(json_schema_extra=_STRINGS_SCHEMA),
    ] = Field(default_factory=dict)
    sysctls: Annotated[
        dict[str, str], PlainValidator(_sysctls, json_schema_input_type=Any), Field(json_schema_extra=_MAP_SCHEMA)
    ] = Field(default_factory=dict)
    group_add: Annotated[
        list[str],
        PlainValidator(_group_add, json_schema_input_type=Any),
        Field(json_schema_extra={"type": "array", "items": {"type": ["string", "integer"]}}),
    ] = Field(default_factory=list)
    read_only: Bool = False
    stop_signal: Annotated[
        str | None,
        PlainValidator(values.parse_signal, json_schema_input_type=Any),
        Field(json_schema_extra={"type": ["string", "integer"]}),
    ] = None
    stop_grace_period: Annotated[
        int | None,
        PlainValidator(values.whole_seconds, json_schema_input_type=Any),
        Field(json_schema_extra=_DURATION_SCHEMA),
    ] = None
    runtime: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", description="e.g. runc, nvidia")
    healthcheck: Healthcheck | None = None

    #: The env names whose values came from an env_file (secret, see ngcws.redact).
    _from_env_file: frozenset[str] = PrivateAttr(default=frozenset())

    @property
    def env_from_files(self) -> frozenset[str]:
        return self._from_env_file

    @field_validator("ulimits", mode="before")
    @classmethod
    def _ulimit_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name in value:
                if name not in ULIMIT_NAMES:
                    raise ValueError(f"unknown ulimit {name!r}" + values.suggest(str(name), ULIMIT_NAMES))
        return value

    @field_validator("working_dir")
    @classmethod
    def _absolute_working_dir(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"working_dir must be an absolute path inside the container, got {value!r}")
        return value

    @field_validator("user", mode="before")
    @classmethod
    def _user(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and not re.match(USER_PATTERN, value):
            raise ValueError(f'expected root, host, a user name or "UID[:GID]", got {value!r}')
        return value

    @field_validator("env_file")
    @classmethod
    def _read_env_files(cls, paths: list[str], info: ValidationInfo) -> list[str]:
        base = Path((info.context or {}).get("project_dir", "."))
        resolved = []
        for path in paths:
            full = inputs.resolve(info.context, base / os.path.expanduser(path))
            if not full.is_file():
                raise ValueError(f"env_file {str(full)!r} does not exist")
            resolved.append(str(full))
        return resolved

    @model_validator(mode="after")
    def _merge_env_files(self, info: ValidationInfo) -> Workspace:
        if self.env_file:
            from ngcws.interpolate import parse_env_file

            variables = (info.context or {}).get("variables", os.environ)
            merged: dict[str, str] = {}
            for path in self.env_file:
                try:
                    merged.update(parse_env_file(inputs.read_text(info.context, Path(path)), variables))
                except (OSError, UnicodeDecodeError) as exc:
                    raise ValueError(f"env_file {path}: cannot read: {exc}") from None
                except ValueError as exc:
                    raise ValueError(f"env_file {path}: {exc}") from None
            self._from_env_file = frozenset(k for k in merged if k not in self.env)
            merged.update(self.env)  # env: wins over env_file, as in Compose
            object.__setattr__(self, "env", merged)
        if self.ipc == "host" and self.shm_size is not None:
            raise FieldConflict(
                "shm_size has no effect with ipc: host (the host's /dev/shm is shared); drop one", ("shm_size", "ipc")
            )
        return self

    @model_validator(mode="after")
    def _compatible(self) -> Workspace:
        """Combinations the engine would refuse, or silently ignore, refused here in the file's terms."""
        mode = self.network_mode or ""
        shared = mode == "host" or mode.startswith("container:")
        if self.networks and self.network_mode:
            raise FieldConflict(
                f"networks cannot be combined with network_mode: {mode} (networks joins user networks in bridge mode)",
                ("networks", "network_mode"),
            )
        if self.ports and (shared or mode == "none"):
            raise FieldConflict(
                f"ports cannot be published with network_mode: {mode}"
                + (" (the host's ports are the container's: drop ports)" if mode == "host" else ""),
                ("ports", "network_mode"),
            )
        for name in ("hostname", "extra_hosts", "dns"):
            if getattr(self, name) and shared:
                raise FieldConflict(
                    f"{name} cannot be set with network_mode: {mode} (the network namespace, with its name"
                    " and resolver, is shared)",
                    (name, "network_mode"),
                )
        if self.memswap_limit is not None and self.mem_limit is None:
            raise FieldConflict(
                "memswap_limit needs mem_limit (as docker's --memory-swap needs --memory)",
                ("memswap_limit", "mem_limit"),
            )
        if self.memswap_limit not in (None, -1) and self.mem_limit is not None and self.memswap_limit < self.mem_limit:
            raise FieldConflict(
                f"memswap_limit ({values.format_size(self.memswap_limit)}) is memory plus swap and must be at least"
                f" mem_limit ({values.format_size(self.mem_limit)})",
                ("memswap_limit", "mem_limit"),
            )
        if self.read_only and self.user == "host":
            raise FieldConflict(
                "read_only: true leaves no way to add your user to /etc/passwd, which user: host needs; drop one",
                ("read_only", "user"),
            )
        if self.runtime not in (None, "nvidia") and self.gpu_request == "runtime" and self.gpus != "none":
            raise FieldConflict(
                f"runtime: {self.runtime} cannot be combined with gpu_request: runtime, which runs the nvidia runtime",
                ("runtime", "gpu_request"),
            )
        targets = {m.target for m in self.mounts}
        for path in self.tmpfs:
            if path in targets:
                raise FieldConflict(f"tmpfs {path!r} and a mount both target {path!r}", ("tmpfs", "mounts"))
        return self

    @model_validator(mode="after")
    def _gpu_request(self) -> Workspace:
        if self.gpu_request == "cdi" and self.capabilities is not None:
            raise ValueError(
                "capabilities do not apply to gpu_request: cdi (the CDI spec decides what is injected); drop one"
            )
        if self.gpu_request == "runtime" and "NVIDIA_VISIBLE_DEVICES" in self.env:
            raise ValueError(
                "with gpu_request: runtime, gpus sets NVIDIA_VISIBLE_DEVICES: write gpus: [0, 1] instead of the env"
            )
        self._gpus_agree_with_env()
        return self

    def _gpus_agree_with_env(self) -> None:
        """``gpus``/``capabilities`` and the NVIDIA_* env they set must not say different things:
        the engine would get both (or ngcws would override the env), whichever the file meant."""
        from ngcws.spec import visible_devices

        gpus = "gpus: " + (values_text(self.gpus) if "gpus" in self.model_fields_set else "all (the default)")
        if self.gpus == "none" and self.capabilities is not None:
            raise FieldConflict(
                f"capabilities: [{', '.join(self.capabilities)}] asks for GPU driver capabilities, but gpus: none"
                " gives no GPU: drop capabilities, or say which GPUs (gpus: all)",
                ("capabilities", "gpus"),
            )
        visible = self.env.get("NVIDIA_VISIBLE_DEVICES")
        if visible is not None and visible.replace(" ", "") != visible_devices(self.gpus):
            if self.gpus == "none":
                said = "gpus: none, which sets NVIDIA_VISIBLE_DEVICES=void (NGC images see every GPU otherwise)"
            else:
                said = f"{gpus}, which asks the engine for {visible_devices(self.gpus)}"
            raise FieldConflict(
                f"env NVIDIA_VISIBLE_DEVICES={visible} contradicts {said}: say the GPUs once, in gpus:"
                f" (gpus: {_gpus_for(visible)})",
                ("env", "gpus"),
            )
        wanted = self.env.get("NVIDIA_DRIVER_CAPABILITIES")
        caps = self.capabilities
        if wanted is not None and caps is not None and sorted(wanted.replace(" ", "").split(",")) != sorted(caps):
            raise FieldConflict(
                f"env NVIDIA_DRIVER_CAPABILITIES={wanted} contradicts capabilities: [{', '.join(caps)}]:"
                " say them once, in capabilities:",
                ("env", "capabilities"),
            )

    @model_validator(mode="after")
    def _unique_targets(self) -> Workspace:
        seen: set[str] = set()
        for mount in self.mounts:
            if mount.target in seen:
                raise ValueError(f"two mounts target {mount.target!r}")
            seen.add(mount.target)
        return self


def values_text(gpus: Any) -> str:
    """A canonical ``gpus`` as the file would spell it: ``all``, ``2``, ``[0, 1]``."""
    return f"[{', '.join(gpus)}]" if isinstance(gpus, list) else str(gpus)


def _gpus_for(visible: str) -> str:
    """The ``gpus`` value meaning an NVIDIA_VISIBLE_DEVICES value."""
    text = visible.replace(" ", "")
    if text in ("void", "none", ""):
        return "none"
    if text == "all":
        return "all"
    return f"[{', '.join(text.split(','))}]"


class ProjectFile(_Strict):
    """The whole ngcws.yaml."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="ngcws.yaml",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "patternProperties": {"^x-": {"description": "extension fields, e.g. for YAML anchors; ignored"}},
        },
    )

    name: str | None = Field(
        default=None, pattern=NAME_PATTERN, description="Project name; default: the folder's name, normalised"
    )
    workspaces: dict[Annotated[str, Field(pattern=WORKSPACE_PATTERN)], Workspace] = Field(
        min_length=1, description="The first is the default target of exec/shell/logs"
    )
    distributed: Distributed | None = Field(
        default=None, description="Multi-node defaults for every workspace (docs/clusters.md)"
    )

    @model_validator(mode="before")
    @classmethod
    def _drop_extensions(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
        return data

    @field_validator("workspaces", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if value is None or value == {}:
            raise ValueError(
                "define at least one workspace, e.g. workspaces: {train: {image: nvcr.io/nvidia/pytorch:23.08-py3}}"
            )
        return value
