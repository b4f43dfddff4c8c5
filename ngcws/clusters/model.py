"""The ``distributed:`` block of ngcws.yaml: how one workspace runs on many nodes. Pure models.

It may sit at the top of the file (for every workspace) or in a workspace (overriding the top
block field by field, see :func:`ngcws.clusters.job.merged_distributed`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, field_validator, model_validator

from ngcws import values

_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_SBATCH_OPTION = re.compile(r"^[a-z][a-z0-9-]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _sbatch_extra(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected a map of sbatch options, e.g. {{qos: high}}, got {value!r}")
    out: dict[str, str] = {}
    for key, item in value.items():
        name = str(key).lstrip("-")
        if not _SBATCH_OPTION.match(name):
            raise ValueError(f"{key!r} is not an sbatch long option name (e.g. qos, constraint, mem)")
        if name in ("nodes", "ntasks-per-node", "gres", "gpus-per-node", "time", "output", "job-name", "exclusive"):
            raise ValueError(f"sbatch option {name!r} is set by ngcws from distributed:; set it there")
        if name.startswith("container-"):
            raise ValueError(f"--{name} is a pyxis option of srun, not of sbatch; ngcws writes it itself")
        if isinstance(item, bool):
            if item:
                out[name] = ""
            continue
        out[name] = values.scalar_text(item)
    return out


class Slurm(_Strict):
    """How the job runs on Slurm."""

    runtime: Literal["auto", "pyxis", "docker"] = Field(
        default="auto", description="auto: pyxis when `srun --help` lists [pyxis], else docker on each node"
    )
    partition: str | None = None
    account: str | None = None
    time: str = Field(
        default="01:00:00",
        description="Time limit, always written to the script: minutes, [D-]HH:MM:SS (never UNLIMITED)",
        json_schema_extra={"type": ["string", "integer"]},
    )
    exclusive: bool | None = Field(
        default=None, description="Whole nodes; default: yes for the docker runtime (it is outside Slurm's cgroups)"
    )
    sbatch: Annotated[
        dict[str, str],
        PlainValidator(_sbatch_extra, json_schema_input_type=Any),
        Field(json_schema_extra={"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}),
    ] = Field(default_factory=dict, description="Extra sbatch options, e.g. {qos: high, constraint: a100}")

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # minutes, as sbatch reads a bare number
        if not isinstance(value, str):
            raise ValueError(f'expected a whole number of minutes or "HH:MM:SS", got {value!r}')
        text = value.strip()
        if text.lower() in ("unlimited", "infinite", "-1"):
            raise ValueError("the time limit must be finite: UNLIMITED jobs wait behind maintenance reservations")
        if not _TIME.match(text):
            raise ValueError(f"expected MINUTES, HH:MM:SS or D-HH:MM:SS, got {value!r}")
        return text

    @model_validator(mode="after")
    def _docker_is_exclusive(self) -> Slurm:
        if self.runtime == "docker" and self.exclusive is False:
            raise ValueError(
                "the docker runtime needs whole nodes (containers run outside Slurm's cgroups): drop exclusive: false"
            )
        return self


class Volume(_Strict):
    """What a host path of ``mounts:`` becomes on Kubernetes."""

    pvc: str | None = Field(default=None, description="A PersistentVolumeClaim name")
    host_path: str | None = Field(default=None, description="A path on every node")

    @model_validator(mode="after")
    def _one(self) -> Volume:
        if (self.pvc is None) == (self.host_path is None):
            raise ValueError("give exactly one of pvc or host_path")
        if self.host_path is not None and not self.host_path.startswith("/"):
            raise ValueError(f"host_path must be absolute, got {self.host_path!r}")
        return self


class Kubernetes(_Strict):
    """How ``ngcws export k8s`` writes the job."""

    kind: Literal["indexed-job", "jobset"] = "indexed-job"
    namespace: str | None = Field(default=None, pattern=_K8S_NAME.pattern)
    image_pull_secret: str | None = Field(
        default=None,
        pattern=_K8S_NAME.pattern,
        description="e.g. ngc-pull: kubectl create secret docker-registry ngc-pull --docker-server=nvcr.io"
        " --docker-username='$oauthtoken' --docker-password=$NGC_API_KEY",
    )
    volumes: dict[str, Volume] = Field(
        default_factory=dict,
        description="Host path of a bind mount (as written in mounts:, or absolute) → {pvc: NAME} or {host_path: PATH}",
    )


_COMMAND_SCHEMA = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "number"]}}]}
Command = Annotated[
    list[str],
    PlainValidator(values.parse_command, json_schema_input_type=Any),
    Field(json_schema_extra=_COMMAND_SCHEMA),
]


class Distributed(_Strict):
    """A workspace as a multi-node job (``ngcws submit``, ``ngcws export k8s``)."""

    nodes: int = Field(default=1, ge=1)
    gpus_per_node: int | None = Field(
        default=None, ge=0, description="Default: the workspace's gpus when it is a count or a list"
    )
    procs_per_node: int | None = Field(default=None, ge=1, description="Default: gpus_per_node, or 1 without GPUs")
    launcher: Literal["torchrun", "srun"] = Field(
        default="torchrun",
        description="torchrun: one agent per node, c10d rendezvous; srun: one task per process"
        " (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set)",
    )
    command: Command | None = Field(
        default=None,
        description="torchrun: the script and its arguments (or -m module ...); srun: the whole command."
        " Default: the workspace's command",
    )
    rdzv_port: int = Field(default=29500, ge=1, le=65535)
    slurm: Slurm = Field(default_factory=Slurm)
    kubernetes: Kubernetes = Field(default_factory=Kubernetes)
