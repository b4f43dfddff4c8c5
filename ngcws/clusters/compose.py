"""The project's desired state → a docker-compose.yml that creates the same containers. Pure.

Written from each workspace's essence (the canonical form ``ngcws up`` creates containers from),
in the Compose Specification (no ``version:``), which Debian's docker-compose 1.29 and
``docker compose`` v2 both read. ``network_mode: bridge`` keeps Docker's default network, as
``ngcws up`` does; named volumes keep ngcws's names (``<project>_<name>``). The ``ngcws.*``
labels are left out: the containers are Compose's, not ngcws's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from ngcws.clusters.job import unhandled
from ngcws.redact import map_strings
from ngcws.spec import KEEPALIVE, DesiredState, device_requests


@dataclass(frozen=True)
class ComposeFile:
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        header = "# Written by `ngcws export compose`; `docker compose up -d` creates what `ngcws up` creates.\n"
        return header + yaml.safe_dump(self.data, sort_keys=False, default_flow_style=False, width=120)


def _gpus(essence: dict[str, Any]) -> dict[str, Any] | None:
    gpus = essence["gpus"]
    if gpus == "none":
        return None
    # The capabilities in the order ngcws up (and docker run --gpus) sends them.
    request = device_requests(gpus, essence["capabilities"])[0]
    device: dict[str, Any] = {"capabilities": list(request["Capabilities"][0])}
    if gpus == "all":
        device["count"] = "all"
    elif isinstance(gpus, int):
        device["count"] = gpus
    else:
        device["device_ids"] = list(gpus)
    return {"resources": {"reservations": {"devices": [device]}}}


def service(
    essence: dict[str, Any],
    name: str,
    notes: list[str],
    workspace: str,
    secret: tuple[str, ...] = (),
    elsewhere: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One workspace's Compose service; the ``secret`` env names are read from the environment of
    ``docker compose up`` (their values, or digests, are never written), and so are the secret
    variables whose values ``elsewhere`` maps to their names (``command: [a.py, ${HF_TOKEN}]``)."""
    e = essence
    svc: dict[str, Any] = {"image": e["image"], "container_name": name, "network_mode": "bridge"}
    svc["command"] = list(e["command"]) if e["command"] is not None else list(KEEPALIVE)
    env = dict(e["env"])
    if e["gpus"] == "none":
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    if env:
        svc["environment"] = dict(sorted(env.items()))
    if e["working_dir"] is not None:
        svc["working_dir"] = e["working_dir"]
    if e["user"] is not None:
        svc["user"] = e["user"]
    svc["init"] = e["init"]
    svc["restart"] = e["restart"]
    if e["shm_size"] is not None:
        svc["shm_size"] = e["shm_size"]
    if e["ipc"] is not None:
        svc["ipc"] = e["ipc"]
    if e["ulimits"]:
        svc["ulimits"] = {n: {"soft": u["soft"], "hard": u["hard"]} for n, u in e["ulimits"].items()}
    volumes = []
    for m in e["mounts"]:
        v: dict[str, Any] = {"type": m["type"]}
        if m["source"]:
            v["source"] = m["source"]
        v["target"] = m["target"]
        if m["read_only"]:
            v["read_only"] = True
        volumes.append(v)
    if volumes:
        svc["volumes"] = volumes
    ports = []
    for p in e["ports"]:
        host = f"{p['host_ip']}:" if p["host_ip"] else ""
        host += f"{p['host_port']}:" if p["host_port"] else ("" if not p["host_ip"] else ":")
        ports.append(f"{host}{p['container_port']}/{p['protocol']}")
    if ports:
        svc["ports"] = ports
    if e["labels"]:
        svc["labels"] = dict(e["labels"])
    deploy = _gpus(e)
    if deploy:
        svc["deploy"] = deploy
    notes += [f"{workspace}: {k} is not carried over to Compose" for k in unhandled(e)]
    escaped: dict[str, Any] = _escaped(svc)
    for key in secret:
        escaped["environment"][key] = f"${{{key}:?{key} is a secret: set it in the environment of docker compose}}"
    if secret:
        notes.append(f"{workspace}: {', '.join(secret)} are secrets, taken from the environment of `docker compose up`")
    used = _referenced(escaped, elsewhere or {})
    if used:
        names, many = ", ".join(sorted(used)), len(used) > 1
        notes.append(
            f"{workspace}: the secret variable{'s' if many else ''} {names} {'are' if many else 'is'} written as "
            "${NAME}, from compose's environment"
        )
    return escaped


def _referenced(service: dict[str, Any], elsewhere: Mapping[str, str]) -> set[str]:
    """Each secret value in the service's strings (environment aside) → a ``${NAME:?…}`` reference;
    the names used. Longer values first, so that one holding another is replaced whole."""
    used: set[str] = set()
    pairs = sorted(((value.replace("$", "$$"), name) for value, name in elsewhere.items()), key=lambda p: -len(p[0]))

    def refer(text: str) -> str:
        for secret, name in pairs:
            if secret in text:
                used.add(name)
                text = text.replace(secret, f"${{{name}:?{name} is a secret: set it in the environment}}")
        return text

    for key in list(service):
        if key != "environment":
            service[key] = map_strings(service[key], refer)
    return used


def _escaped(value: Any) -> Any:
    """Compose interpolates ``$VAR`` in every string; ``$$`` is a literal ``$``."""
    return map_strings(value, lambda text: text.replace("$", "$$"))


def render(desired: DesiredState, elsewhere: Mapping[str, Mapping[str, str]] | None = None) -> ComposeFile:
    """Every workspace of the project as a Compose service; ``desired`` not concealed (secret values
    outside env as they are: ``elsewhere`` maps them to their variables, written as references)."""
    notes: list[str] = []
    services = {}
    volumes: dict[str, Any] = {}
    for ws in desired.workspaces:
        c = desired.containers[ws]
        services[ws] = service(c.essence, c.name, notes, ws, c.secret_env, (elsewhere or {}).get(ws))
        for volume in c.volumes:
            volumes[volume] = {"name": volume}
        if c.host_user is not None:
            notes.append(f"{ws}: user: host is written as {c.essence['user']} (the uid:gid of whoever exported)")
    data: dict[str, Any] = {"services": services}
    if volumes:
        data["volumes"] = volumes
    return ComposeFile(data, notes)
