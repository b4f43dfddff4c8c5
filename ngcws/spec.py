"""Spec: a workspace model → the exact Engine API create request, in canonical form. Pure.

The *essence* is the workspace as the engine will see it, keyed by ngcws.yaml field names with
canonical values (bytes, sorted capabilities, absolute paths, merged env). The create request is
a function of the essence alone, so the essence's hash says whether a container is up to date and
a field-by-field comparison of two essences says why not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from ngcws import __version__
from ngcws import labels as L
from ngcws.errors import UsageError

#: Bump when the translation from essence to request changes, so old containers are recreated.
SPEC_VERSION = 1

#: Without `command`, the workspace runs this: it survives without a TTY, and it exits at once on
#: SIGTERM (even without an init), so `ngcws down` does not wait out Docker's 10 s stop timeout.
KEEPALIVE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done"]


class Invoker(NamedTuple):
    """The person running ngcws (for ``user: host``)."""

    uid: int
    gid: int
    name: str
    group: str = ""

    @property
    def home(self) -> str:
        return "/root" if self.uid == 0 else f"/home/{self.name}"


class Identity(NamedTuple):
    """Who a container belongs to: project, folder, file."""

    project: str
    directory: str
    config_file: str


class DesiredContainer(NamedTuple):
    """Everything ngcws wants one workspace's container to be."""

    workspace: str
    name: str
    image: str
    pull: str
    essence: dict[str, Any]
    spec_hash: str
    request: dict[str, Any]
    host_user: Invoker | None = None
    volumes: tuple[str, ...] = ()
    secret_env: tuple[str, ...] = ()  # env names whose values are secret: digests in essence and labels
    ignore_changes: tuple[str, ...] = ()  # unsaved.py: never work to keep (not part of the spec)
    restart_on: tuple[str, ...] = ()  # globs (relative to the project folder) whose changes restart it (--watch)
    concealed: bool = False  # secret values outside env, digested in the essence (redact.conceal): never cached
    exposed: tuple[str, ...] = ()  # other fields that hold a secret value as it is (named as a risk)


class DesiredState(NamedTuple):
    """What the whole project should be on the engine: one desired container per workspace."""

    identity: Identity
    workspaces: tuple[str, ...]  # every workspace, in file order (the first is the default)
    containers: dict[str, DesiredContainer]

    @property
    def project(self) -> str:
        return self.identity.project

    def select(self, names: list[str] | None) -> list[str]:
        """Workspace names from the command line (none given: all), checked against the file."""
        for name in names or []:
            if name not in self.workspaces:
                raise unknown_workspace(name, list(self.workspaces), self.identity.config_file)
        return list(names) if names else list(self.workspaces)

    def to_json(self) -> dict[str, Any]:
        return {
            "identity": self.identity._asdict(),
            "workspaces": list(self.workspaces),
            "containers": {
                name: {**c._asdict(), "host_user": c.host_user._asdict() if c.host_user else None}
                for name, c in self.containers.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DesiredState:
        containers = {}
        for name, c in data["containers"].items():
            user = c.pop("host_user")
            containers[name] = DesiredContainer(
                **{
                    **c,
                    "volumes": tuple(c["volumes"]),
                    "secret_env": tuple(c.get("secret_env", ())),
                    "ignore_changes": tuple(c.get("ignore_changes", ())),
                    "restart_on": tuple(c.get("restart_on", ())),
                    "exposed": tuple(c.get("exposed", ())),
                },
                host_user=Invoker(**user) if user else None,
            )
        return cls(Identity(**data["identity"]), tuple(data["workspaces"]), containers)


class Secrets(NamedTuple):
    """Which env values are secret (per workspace) and the key that digests them (ngcws.redact);
    ``values``: per workspace, secret values interpolated outside env (redact.conceal)."""

    key: bytes
    names: dict[str, frozenset[str]]
    values: Mapping[str, Mapping[str, str]]  # per workspace: secret value → its variable's name


def desired_state(
    identity: Identity, workspaces: dict[str, Any], invoker: Invoker, secrets: Secrets | None = None
) -> DesiredState:
    """The desired state of every workspace of a validated ngcws.yaml."""
    containers = {name: desired_container(name, ws, identity, invoker, secrets) for name, ws in workspaces.items()}
    return DesiredState(identity, tuple(workspaces), containers)


def unknown_workspace(name: str, known: list[str], config_file: str) -> UsageError:
    from ngcws.values import suggest

    return UsageError(f"no workspace {name!r} in {config_file}{suggest(name, known)}; defined: {', '.join(known)}")


def container_name(project: str, workspace: str) -> str:
    return f"{project}-{workspace}"


def volume_name(project: str, source: str) -> str:
    return f"{project}_{source}"


def essence_of(workspace: Any, project: str, invoker: Invoker | None) -> dict[str, Any]:
    """The canonical, engine-relevant content of a workspace model."""
    env = dict(workspace.env)
    user = workspace.user
    if user == "host":
        if invoker is None:
            raise ValueError("user: host needs the invoking user")
        user = f"{invoker.uid}:{invoker.gid}"
        env = {"HOME": invoker.home, "USER": invoker.name, "LOGNAME": invoker.name, **env}
    mounts = []
    for mount in workspace.mounts:
        source = mount.source
        if mount.type == "volume" and source:
            source = volume_name(project, source)
        mounts.append({"type": mount.type, "source": source, "target": mount.target, "read_only": mount.read_only})
    return {
        "image": workspace.image,
        "command": workspace.command,
        "gpus": workspace.gpus,
        "capabilities": workspace.capabilities,
        **({"gpu_request": workspace.gpu_request} if workspace.gpu_request != "auto" else {}),
        "shm_size": workspace.shm_size,
        "ipc": workspace.ipc,
        "ulimits": {name: {"soft": u.soft, "hard": u.hard} for name, u in sorted(workspace.ulimits.items())},
        "mounts": sorted(mounts, key=lambda m: m["target"]),
        "env": dict(sorted(env.items())),
        "working_dir": workspace.working_dir,
        "user": user,
        "ports": sorted(workspace.ports, key=lambda p: (p["container_port"], p["protocol"], p["host_port"] or 0)),
        "restart": workspace.restart,
        "init": workspace.init,
        "labels": dict(sorted(workspace.labels.items())),
        **_run_flag_essence(workspace),
    }


#: Fields added after the first release join the essence only when set, so a container created
#: before they existed keeps its hash and is not recreated by an upgrade.
OPTIONAL_FIELDS = (
    "network_mode", "networks", "devices", "cap_add", "cap_drop", "security_opt", "privileged", "entrypoint",
    "hostname", "extra_hosts", "dns", "cpus", "cpuset", "mem_limit", "memswap_limit", "pids_limit", "tmpfs",
    "sysctls", "group_add", "read_only", "stop_signal", "stop_grace_period", "runtime", "healthcheck",
)  # fmt: skip


def _run_flag_essence(workspace: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in OPTIONAL_FIELDS:
        value = getattr(workspace, name, None)
        if name == "healthcheck" and value is not None:
            value = {k: v for k, v in value.model_dump().items() if v is not None and k != "disable"}
            value["test"] = value.get("test") or ["NONE"]
        if not _unset(value):
            out[name] = value
    return out


def _unset(value: Any) -> bool:
    """None, false, [] and {} leave a field out, as the docker CLI sends nothing for them; 0 is a
    value (``--stop-timeout 0``, ``--pids-limit 0``), never "unset" (``0 == False`` in Python)."""
    return value is None or value is False or (isinstance(value, (list, dict)) and not value)


def canonical_essence(essence: dict[str, Any], default_runtime: str | None) -> dict[str, Any]:
    """``essence`` with equivalent spellings made one, to compare an existing container's recorded
    essence with the desired one: a signal as ``SIGNAME`` (containers made before ngcws wrote it so),
    and ``runtime:`` equal to the engine's default runtime as unset (the engine records the default
    on a container created without one)."""
    from ngcws.values import canonical_signal

    out = dict(essence)
    if isinstance(out.get("stop_signal"), str):
        out["stop_signal"] = canonical_signal(out["stop_signal"])
    if default_runtime and out.get("runtime") == default_runtime:
        del out["runtime"]
    return out


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def hash_essence(essence: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(canonical_json({"v": SPEC_VERSION, "essence": essence}).encode()).hexdigest()


def device_requests(gpus: Any, capabilities: list[str] | None) -> list[dict[str, Any]]:
    """``gpus``/``capabilities`` → HostConfig.DeviceRequests, as ``docker run --gpus`` sends them."""
    if gpus == "none":
        return []
    request: dict[str, Any] = {
        "Driver": "",
        "Count": 0,
        "DeviceIDs": None,
        "Capabilities": [[*(capabilities or []), "gpu"]],  # docker/cli appends "gpu" (opts/gpus.go)
        "Options": {},
    }
    if gpus == "all":
        request["Count"] = -1
    elif isinstance(gpus, int):
        request["Count"] = gpus
    else:
        request["DeviceIDs"] = list(gpus)
    return [request]


def visible_devices(gpus: Any) -> str:
    """``gpus`` → NVIDIA_VISIBLE_DEVICES, as the engine's NVIDIA driver sets it for ``--gpus``."""
    if gpus == "none":
        return "void"
    if gpus == "all":
        return "all"
    if isinstance(gpus, int):
        return ",".join(str(i) for i in range(gpus))
    return ",".join(gpus)


def cdi_requests(gpus: Any) -> list[dict[str, Any]]:
    """``gpus`` → the DeviceRequest ``docker run --device nvidia.com/gpu=N`` sends (Docker >= 25)."""
    if gpus == "none":
        return []
    ids = visible_devices(gpus).split(",")
    return [
        {"Driver": "cdi", "Count": 0, "DeviceIDs": [f"nvidia.com/gpu={i}" for i in ids], "Capabilities": None,
         "Options": None}
    ]  # fmt: skip


def runtime_request(request: dict[str, Any], gpus: Any, capabilities: list[str] | None) -> dict[str, Any]:
    """A create request that asks for GPUs the nvidia-docker way: ``--runtime=nvidia`` and env vars.

    For engines older than API 1.40 (Docker < 19.03), which know no DeviceRequests.
    """
    out: dict[str, Any] = json.loads(json.dumps(request))
    out["HostConfig"]["DeviceRequests"] = []
    if gpus == "none":
        return out
    out["HostConfig"]["Runtime"] = "nvidia"
    env = dict(e.split("=", 1) for e in out["Env"])
    env["NVIDIA_VISIBLE_DEVICES"] = visible_devices(gpus)
    if capabilities:
        env["NVIDIA_DRIVER_CAPABILITIES"] = ",".join(capabilities)
    out["Env"] = [f"{k}={v}" for k, v in sorted(env.items())]
    return out


def create_request(essence: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The Engine API ``POST /containers/create`` body for an essence."""
    env = dict(essence["env"])
    mode = essence.get("gpu_request", "auto")
    if essence["gpus"] == "none":
        env["NVIDIA_VISIBLE_DEVICES"] = "void"  # NGC images default to all GPUs
    gpu_requests = (
        cdi_requests(essence["gpus"]) if mode == "cdi" else device_requests(essence["gpus"], essence["capabilities"])
    )
    host: dict[str, Any] = {
        "Init": essence["init"],
        "DeviceRequests": gpu_requests,
        "Mounts": [_mount(m) for m in essence["mounts"]],
        "Ulimits": [{"Name": n, "Soft": u["soft"], "Hard": u["hard"]} for n, u in essence["ulimits"].items()],
        "RestartPolicy": {"Name": essence["restart"]},
        "PortBindings": {},
    }
    if essence["shm_size"] is not None:
        host["ShmSize"] = essence["shm_size"]
    if essence["ipc"] is not None:
        host["IpcMode"] = essence["ipc"]
    exposed: dict[str, dict[str, Any]] = {}
    for port in essence["ports"]:
        key = f"{port['container_port']}/{port['protocol']}"
        exposed[key] = {}
        host["PortBindings"].setdefault(key, []).append(
            {"HostIp": port["host_ip"], "HostPort": str(port["host_port"] or "")}
        )
    config: dict[str, Any] = {
        "Image": essence["image"],
        "Cmd": essence["command"] if essence["command"] is not None else KEEPALIVE,
        "Env": [f"{k}={v}" for k, v in sorted(env.items())],
        "Labels": {**essence["labels"], **labels},
        "ExposedPorts": exposed,
        "Tty": False,
        "OpenStdin": False,
        "HostConfig": host,
    }
    if essence["working_dir"] is not None:
        config["WorkingDir"] = essence["working_dir"]
    if essence["user"] is not None:
        config["User"] = essence["user"]
    _add_run_flags(essence, config, host)
    if mode == "runtime":
        return runtime_request(config, essence["gpus"], essence["capabilities"])
    return config


_HOST_PLAIN = {
    "network_mode": "NetworkMode", "cap_add": "CapAdd", "cap_drop": "CapDrop", "security_opt": "SecurityOpt",
    "privileged": "Privileged", "extra_hosts": "ExtraHosts", "dns": "Dns", "cpuset": "CpusetCpus",
    "mem_limit": "Memory", "memswap_limit": "MemorySwap", "pids_limit": "PidsLimit", "tmpfs": "Tmpfs",
    "sysctls": "Sysctls", "group_add": "GroupAdd", "read_only": "ReadonlyRootfs", "runtime": "Runtime",
}  # fmt: skip
_CONFIG_PLAIN = {"entrypoint": "Entrypoint", "hostname": "Hostname", "stop_signal": "StopSignal"}
_HEALTH_KEYS = {"test": "Test", "interval": "Interval", "timeout": "Timeout", "start_period": "StartPeriod"}


def _add_run_flags(essence: dict[str, Any], config: dict[str, Any], host: dict[str, Any]) -> None:
    """The fields of ``ngcws.runflags`` beyond NVIDIA's guide, exactly as the docker CLI sends them."""
    for field, key in _HOST_PLAIN.items():
        if field in essence:
            host[key] = essence[field]
    for field, key in _CONFIG_PLAIN.items():
        if field in essence:
            config[key] = essence[field]
    if "devices" in essence:
        host["Devices"] = [
            {"PathOnHost": d["source"], "PathInContainer": d["target"], "CgroupPermissions": d["permissions"]}
            for d in essence["devices"]
        ]
    if "cpus" in essence:
        host["NanoCpus"] = round(essence["cpus"] * 1e9)
    if "stop_grace_period" in essence:
        config["StopTimeout"] = essence["stop_grace_period"]
    if "networks" in essence:
        first = essence["networks"][0]  # the engine joins one network at create; the controller connects the rest
        host["NetworkMode"] = first
        config["NetworkingConfig"] = {"EndpointsConfig": {first: {}}}
    if "healthcheck" in essence:
        check = essence["healthcheck"]
        config["Healthcheck"] = {key: check[field] for field, key in _HEALTH_KEYS.items() if field in check}
        if "retries" in check:
            config["Healthcheck"]["Retries"] = check["retries"]


def _mount(mount: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"Type": mount["type"], "Target": mount["target"], "ReadOnly": mount["read_only"]}
    if mount["source"]:
        out["Source"] = mount["source"]
    return out


def desired_container(
    workspace_name: str, workspace: Any, identity: Identity, invoker: Invoker | None, secrets: Secrets | None = None
) -> DesiredContainer:
    """The desired container of one workspace.

    The create request has every env value; the essence (kept in labels, shown in plans, hashed)
    has a keyed digest in place of each secret one, so drift on a secret is still seen.
    """
    from ngcws.redact import CONCEALED, conceal, digested, holds_secret

    full = essence_of(workspace, identity.project, invoker)
    secret = tuple(sorted(secrets.names.get(workspace_name, frozenset()) & set(full["env"]))) if secrets else ()
    essence = {**full, "env": digested(full["env"], secret, secrets.key)} if secrets and secret else full
    hidden = set(secrets.values.get(workspace_name, {})) if secrets else set()
    concealed = bool(hidden) and holds_secret({k: essence[k] for k in essence if k != "env"}, hidden)
    if secrets and concealed:
        essence = conceal(essence, hidden, secrets.key)
    exposed = tuple(k for k in essence if k != "env" and k not in CONCEALED and holds_secret(essence[k], hidden))
    spec_hash = hash_essence(essence)
    own = {
        L.PROJECT: identity.project,
        L.WORKSPACE: workspace_name,
        L.PROJECT_DIR: identity.directory,
        L.CONFIG_FILE: identity.config_file,
        L.VERSION: __version__,
        L.SPEC: canonical_json(essence),
        L.SPEC_HASH: spec_hash,
        L.IGNORE_CHANGES: json.dumps(list(workspace.ignore_changes)),
    }
    volumes = tuple(m["source"] for m in essence["mounts"] if m["type"] == "volume" and m["source"])
    return DesiredContainer(
        workspace=workspace_name,
        name=container_name(identity.project, workspace_name),
        image=workspace.image,
        pull=workspace.pull,
        essence=essence,
        spec_hash=spec_hash,
        request=create_request(full, own),
        host_user=invoker if workspace.user == "host" else None,
        volumes=volumes,
        secret_env=secret,
        ignore_changes=tuple(workspace.ignore_changes),
        restart_on=tuple(workspace.restart_on),
        concealed=concealed,
        exposed=exposed,
    )


def oneoff_request(desired: DesiredContainer, command: list[str], tty: bool, interactive: bool) -> dict[str, Any]:
    """The create request of an ``ngcws run`` container: the workspace's spec, another command."""
    request: dict[str, Any] = json.loads(json.dumps(desired.request))
    labels = request["Labels"]
    for key in (L.SPEC, L.SPEC_HASH):
        labels.pop(key, None)
    labels[L.ONEOFF] = "true"
    request["Cmd"] = command
    request["Tty"] = tty
    request["OpenStdin"] = interactive
    request["StdinOnce"] = interactive
    request["AttachStdin"] = interactive
    request["AttachStdout"] = True
    request["AttachStderr"] = True
    request["HostConfig"]["RestartPolicy"] = {"Name": "no"}
    request["HostConfig"]["PortBindings"] = {}
    return request
