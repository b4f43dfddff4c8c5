"""A :class:`ClusterJob` → Kubernetes manifests. Pure.

* ``indexed-job`` (default, any cluster): a headless Service + a ``batch/v1`` Job with
  ``completionMode: Indexed``; pod *i* is ``<name>-<i>.<name>``, so node 0's address is known
  before any pod starts.
* ``jobset`` (where the JobSet controller runs): the same Job spec as the one replicated job of a
  ``jobset.x-k8s.io/v1alpha2`` JobSet, which makes the headless Service itself.

GPUs are ``nvidia.com/gpu`` limits, shm a memory ``emptyDir``, ``ipc: host`` ``hostIPC``. What
Kubernetes has no field for (ulimits, --init, host paths it cannot see) is said in a note and,
for ulimits, done by ``ulimit`` in the container's command.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ngcws.clusters.job import ClusterJob, launch_command, unhandled
from ngcws.clusters.slurm import ulimit_lines
from ngcws.errors import UsageError

JOBSET_API = "jobset.x-k8s.io/v1alpha2"
SHM_VOLUME = "dshm"


@dataclass(frozen=True)
class Manifest:
    documents: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return yaml.dump_all(self.documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the container's script) as literal blocks, readable in the manifest."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def quantity(size: int) -> str:
    """Bytes → a Kubernetes quantity (``16Gi``), exact."""
    for suffix, unit in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _volume_name(index: int, target: str) -> str:
    words = "".join(c if c.isalnum() else "-" for c in target.lower()).strip("-")
    return f"v{index}-{words}"[:63].rstrip("-")


def _mapped_volumes(job: ClusterJob) -> dict[str, Any]:
    out = {}
    for key, volume in job.kubernetes.volumes.items():
        path = str((Path(job.project_dir) / Path(key).expanduser()).resolve()) if not key.startswith("/") else key
        out[path.rstrip("/") or "/"] = volume
    return out


def _volumes(job: ClusterJob, notes: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    e = job.essence
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    mapped = _mapped_volumes(job)
    for i, m in enumerate(e["mounts"]):
        name = _volume_name(i, m["target"])
        source: dict[str, Any]
        if m["type"] == "bind":
            chosen = mapped.get(m["source"])
            if chosen is not None and chosen.pvc:
                source = {"persistentVolumeClaim": {"claimName": chosen.pvc, "readOnly": m["read_only"]}}
            else:
                path = chosen.host_path if chosen is not None else m["source"]
                source = {"hostPath": {"path": path, "type": "Directory"}}
                if chosen is None:
                    notes.append(
                        f"mounts: {m['source']} → {m['target']} is a hostPath: every node must have that folder"
                        " (or map it in distributed.kubernetes.volumes to a pvc)"
                    )
        elif m["type"] == "volume":
            source = {"emptyDir": {}}
            notes.append(f"mounts: the named volume {m['source']} becomes an emptyDir, emptied with each pod")
        else:
            source = {"emptyDir": {"medium": "Memory"}}
        volumes.append({"name": name, **source})
        mount: dict[str, Any] = {"name": name, "mountPath": m["target"]}
        if m["read_only"]:
            mount["readOnly"] = True
        mounts.append(mount)
    if e["shm_size"] is not None:
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": quantity(e["shm_size"])}})
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    return volumes, mounts


def _script(job: ClusterJob, endpoint: str, notes: list[str]) -> str:
    e = job.essence
    lines = []
    if e["ulimits"]:
        notes.append("ulimits: Kubernetes has no ulimit field; the command sets them with bash's ulimit (KiB)")
        lines += ulimit_lines(e["ulimits"], "capped by the node's container runtime")
    if job.launcher == "srun":
        if job.procs_per_node != 1:
            raise UsageError(
                "launcher: srun starts one process per GPU through Slurm; on Kubernetes use launcher: torchrun",
                hint="or set distributed.procs_per_node: 1",
            )
        lines.append(f'export RANK="$JOB_COMPLETION_INDEX" WORLD_SIZE={job.nodes} LOCAL_RANK=0')
        lines.append(f"export MASTER_ADDR={shlex.quote(endpoint)} MASTER_PORT={job.rdzv_port}")
        lines.append(launch_command(job, is_host="", rdzv="", rdzv_id=""))
    else:
        lines.append('is_host=0; if [ "$JOB_COMPLETION_INDEX" = 0 ]; then is_host=1; fi')
        lines.append(launch_command(job, is_host="$is_host", rdzv=f"{endpoint}:{job.rdzv_port}", rdzv_id=job.name))
    # Kubernetes expands $(VAR) in command and args; $$ keeps a literal $.
    return "\n".join(lines).replace("$(", "$$(") + "\n"


def _env_var(job: ClusterJob, name: str, value: str) -> dict[str, Any]:
    if name in job.secret_env:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": f"{job.name}-env", "key": name}}}
    return {"name": name, "value": value}


def _pod_spec(job: ClusterJob, subdomain: str | None, endpoint: str, notes: list[str]) -> dict[str, Any]:
    e = job.essence
    volumes, mounts = _volumes(job, notes)
    env = dict(e["env"])
    if e["gpus"] == "none" or not job.gpus_per_node:
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    if e["capabilities"]:
        env["NVIDIA_DRIVER_CAPABILITIES"] = ",".join(e["capabilities"])
    container: dict[str, Any] = {
        "name": "main",
        "image": e["image"],
        "command": ["bash", "-c"],
        "args": [_script(job, endpoint, notes)],
    }
    if e["working_dir"]:
        container["workingDir"] = e["working_dir"]
    if env:
        container["env"] = [_env_var(job, k, v) for k, v in sorted(env.items())]
    if job.secret_env:
        literals = " ".join(f"--from-literal={k}=..." for k in sorted(job.secret_env))
        notes.append(
            f"env: {', '.join(sorted(job.secret_env))} are secrets, read from the Secret {job.name}-env"
            f" (never written here): kubectl create secret generic {job.name}-env {literals}"
        )
    ports = [{"containerPort": job.rdzv_port, "name": "rdzv"}]
    for p in e["ports"]:
        if p["container_port"] != job.rdzv_port:
            ports.append({"containerPort": p["container_port"], "protocol": p["protocol"].upper()})
    if e["ports"]:
        notes.append("ports: container ports only; publish them with a Service of your own")
    container["ports"] = ports
    if job.gpus_per_node:
        container["resources"] = {"limits": {"nvidia.com/gpu": job.gpus_per_node}}
    if mounts:
        container["volumeMounts"] = mounts
    pod: dict[str, Any] = {}
    if subdomain:
        pod["subdomain"] = subdomain
    pod["restartPolicy"] = "Never"
    if job.kubernetes.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": job.kubernetes.image_pull_secret}]
    user = e["user"]
    if user is not None:
        uid, _, gid = ("0" if user == "root" else user).partition(":")
        if uid.isdigit() and (not gid or gid.isdigit()):
            pod["securityContext"] = {"runAsUser": int(uid), **({"runAsGroup": int(gid)} if gid else {})}
            if job.user_is_host:
                notes.append(f"user: host runs as {user} without the passwd entry and home folder ngcws up writes")
        else:
            notes.append(f"user: {user} is not carried over: Kubernetes needs numeric ids (runAsUser)")
    if e["ipc"] == "host":
        pod["hostIPC"] = True
    elif e["ipc"] not in (None, "private", "shareable"):
        notes.append(f"ipc: {e['ipc']} has no Kubernetes form")
    if e["init"]:
        notes.append("init: Kubernetes has no --init; the command runs as the container's PID 1")
    if e["restart"] != "no":
        notes.append(f"restart: {e['restart']} is not applied: the Job runs once (backoffLimit: 0)")
    pod["containers"] = [container]
    if volumes:
        pod["volumes"] = volumes
    notes += [f"{k}: not carried over to Kubernetes" for k in unhandled(e)]
    return pod


def _metadata(job: ClusterJob, name: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if job.kubernetes.namespace:
        meta["namespace"] = job.kubernetes.namespace
    meta["labels"] = {"app.kubernetes.io/managed-by": "ngcws", "ngcws.project": job.project}
    return meta


def _job_spec(job: ClusterJob, pod: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": pod}
    if job.essence["labels"]:
        template["metadata"] = {"annotations": dict(job.essence["labels"])}
    return {
        "completionMode": "Indexed",
        "completions": job.nodes,
        "parallelism": job.nodes,
        "backoffLimit": 0,
        "template": template,
    }


def render(job: ClusterJob, kind: str) -> Manifest:
    """The manifests of ``job`` as ``indexed-job`` (Service + Job) or ``jobset``."""
    notes: list[str] = job.secret_notes("the manifest")
    name = job.name
    if kind == "jobset":
        endpoint = f"{name}-node-0-0.{name}"
        pod = _pod_spec(job, None, endpoint, notes)
        jobset = {
            "apiVersion": JOBSET_API,
            "kind": "JobSet",
            "metadata": _metadata(job, name),
            "spec": {
                "network": {"enableDNSHostnames": True, "subdomain": name},
                "failurePolicy": {"maxRestarts": 0},
                "replicatedJobs": [{"name": "node", "replicas": 1, "template": {"spec": _job_spec(job, pod)}}],
            },
        }
        return Manifest([jobset], notes)
    if kind != "indexed-job":
        raise ValueError(f"unknown kind {kind!r}")
    endpoint = f"{name}-0.{name}"
    pod = _pod_spec(job, name, endpoint, notes)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(job, name),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"job-name": name},
            "ports": [{"name": "rdzv", "port": job.rdzv_port}],
        },
    }
    batch = {"apiVersion": "batch/v1", "kind": "Job", "metadata": _metadata(job, name), "spec": _job_spec(job, pod)}
    return Manifest([service, batch], notes)
