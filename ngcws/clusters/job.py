"""A workspace + its ``distributed:`` block → a :class:`ClusterJob`, what every engine renders. Pure.

The job carries the workspace's *essence* (:func:`ngcws.spec.essence_of`), not its raw fields, so
what the local engine gets and what a cluster gets come from one canonical description, and a
field added to the essence later is either rendered by each engine or reported by
:func:`unhandled` as not carried over: never silently dropped.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from ngcws.clusters.model import Distributed, Kubernetes, Slurm
from ngcws.errors import ConfigError, UsageError
from ngcws.spec import Invoker, essence_of

#: The essence's fields with the value that means "not set"; a field not listed here is new to
#: the cluster renderers and reported by :func:`unhandled` whenever it is set.
ESSENCE_DEFAULTS: dict[str, Any] = {
    "image": None,
    "command": None,
    "gpus": "all",
    "capabilities": None,
    "shm_size": None,
    "ipc": None,
    "ulimits": {},
    "mounts": [],
    "env": {},
    "working_dir": None,
    "user": None,
    "ports": [],
    "restart": "no",
    "init": True,
    "labels": {},
}


@dataclass(frozen=True)
class ClusterJob:
    """One workspace as an N-node job, with every value resolved."""

    project: str
    workspace: str
    project_dir: str
    config_file: str
    essence: dict[str, Any]
    pull: str
    nodes: int
    gpus_per_node: int
    procs_per_node: int
    launcher: str
    command: list[str]
    rdzv_port: int
    slurm: Slurm
    kubernetes: Kubernetes
    user_is_host: bool = False  # user: host (the submitter), which pyxis honours as it is
    #: env names whose values are secret (ngcws.redact): never written into a script or manifest.
    secret_env: frozenset[str] = frozenset()
    #: secret variables' values interpolated outside env (value → the variable's name).
    secret_elsewhere: tuple[tuple[str, str], ...] = ()

    def secret_notes(self, where: str) -> list[str]:
        """What says that a secret variable's value is written into the script or manifest as it is."""
        outside = json.dumps([{k: v for k, v in self.essence.items() if k != "env"}, self.command])
        names = sorted({name for value, name in self.secret_elsewhere if value in outside})
        if not names:
            return []
        return [
            f"{self.workspace}: the value of the secret variable{'s' if len(names) > 1 else ''} {', '.join(names)} "
            f"(used outside env:) is written into {where} as it is; pass it in env: and refer to it inside "
            "(`sh -c '... $$NAME'`) to keep it out"
        ]

    @property
    def secret_values(self) -> dict[str, str]:
        """The secret env values, for the environment of the process that submits the job."""
        return {k: v for k, v in self.essence["env"].items() if k in self.secret_env}

    @property
    def name(self) -> str:
        """The job's name on every engine (Slurm job name, Kubernetes object name)."""
        return f"ngcws-{self.project}-{self.workspace}".lower().replace("_", "-").replace(".", "-")

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def merged_distributed(top: Distributed | None, own: Distributed | None) -> Distributed | None:
    """The workspace's block over the file's top-level block, field by field (nested maps too)."""
    if top is None or own is None:
        return own or top
    merged = _deep_merge(top.model_dump(exclude_unset=True), own.model_dump(exclude_unset=True))
    return Distributed.model_validate(merged)


def gpus_per_node_of(essence: dict[str, Any], distributed: Distributed) -> int:
    """GPUs each node runs with: ``gpus_per_node``, else what the workspace's ``gpus`` counts."""
    gpus = essence["gpus"]
    if distributed.gpus_per_node is not None:
        if gpus == "none" and distributed.gpus_per_node > 0:
            raise ConfigError(
                f"distributed.gpus_per_node is {distributed.gpus_per_node} but the workspace has gpus: none"
            )
        return distributed.gpus_per_node
    if gpus == "none":
        return 0
    if isinstance(gpus, int):
        return gpus
    if isinstance(gpus, list):
        return len(gpus)
    raise ConfigError(
        "gpus: all does not say how many GPUs each node has: set distributed.gpus_per_node",
        hint="e.g. distributed: {nodes: 2, gpus_per_node: 8}",
    )


def resolve(
    project: Any,
    workspace_name: str,
    invoker: Invoker | None,
    nodes: int | None = None,
) -> ClusterJob:
    """The job of one workspace of a loaded project (:class:`ngcws.load.Project`)."""
    workspaces = project.workspaces
    if workspace_name not in workspaces:
        from ngcws.spec import unknown_workspace

        raise unknown_workspace(workspace_name, list(workspaces), str(project.config_file))
    model = workspaces[workspace_name]
    distributed = merged_distributed(project.file.distributed, model.distributed)
    if distributed is None:
        raise UsageError(
            f"workspace {workspace_name!r} has no distributed: block",
            hint="add e.g. distributed: {nodes: 2, gpus_per_node: 1, command: [train.py]} (docs/clusters.md)",
        )
    if nodes is not None:
        if nodes < 1:
            raise UsageError(f"--nodes {nodes}: expected 1 or more")
        distributed = distributed.model_copy(update={"nodes": nodes})
    essence = essence_of(model, project.name, invoker)
    gpus = gpus_per_node_of(essence, distributed)
    command = distributed.command if distributed.command is not None else essence["command"]
    if not command:
        raise ConfigError(
            f"workspace {workspace_name!r}: distributed.command is not set and the workspace has no command",
            hint="e.g. distributed: {command: [train.py, --epochs, '10']} (torchrun runs it on every node)",
        )
    return ClusterJob(
        project=project.name,
        workspace=workspace_name,
        project_dir=str(project.directory),
        config_file=str(project.config_file),
        essence=essence,
        pull=model.pull,
        nodes=distributed.nodes,
        gpus_per_node=gpus,
        procs_per_node=distributed.procs_per_node or max(gpus, 1),
        launcher=distributed.launcher,
        command=list(command),
        rdzv_port=distributed.rdzv_port,
        slurm=distributed.slurm,
        kubernetes=distributed.kubernetes,
        user_is_host=model.user == "host",
        secret_env=frozenset(getattr(project, "secret_env", {}).get(workspace_name, frozenset())) & set(essence["env"]),
        secret_elsewhere=tuple(sorted(getattr(project, "secret_values", {}).get(workspace_name, {}).items())),
    )


def unhandled(essence: dict[str, Any]) -> list[str]:
    """Set essence fields the cluster renderers do not know (added to the essence after them)."""
    return sorted(k for k, v in essence.items() if k not in ESSENCE_DEFAULTS and v not in (None, [], {}, "", False))


def launch_command(job: ClusterJob, *, is_host: str, rdzv: str, rdzv_id: str, local_addr: str | None = None) -> str:
    """The shell command run once per task inside the container (bash), as a string.

    ``is_host``, ``rdzv``, ``rdzv_id`` and ``local_addr`` are shell words (usually variables)
    expanded by the shell inside the task, never by the batch script. torchrun's c10d rendezvous
    ignores ``--node-rank`` and ``--master-addr``; the store's host is pinned by ``is_host``
    rather than left to c10d's hostname matching, which fails behind NATs and secondary NICs.
    """
    user_command = " ".join(shlex.quote(arg) for arg in job.command)
    if job.launcher == "srun":
        return f"exec {user_command}"
    args = [
        "exec python -m torch.distributed.run",
        f"--nnodes={job.nodes}",
        f"--nproc-per-node={job.procs_per_node}",
        "--rdzv-backend=c10d",
        f'--rdzv-endpoint="{rdzv}"',
        f'--rdzv-id="{rdzv_id}"',
        f"--rdzv-conf=is_host={is_host}",
    ]
    if local_addr:
        args.append(f'--local-addr="{local_addr}"')
    return " ".join([*args, user_command])
