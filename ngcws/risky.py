"""Risky settings: allowed, but named in ``plan`` and ``up`` output, with why. Pure.

Each rule looks at a workspace's essence (keys are ngcws.yaml field names), so a field another
version adds (``privileged``, ``network_mode``) is called out as soon as the essence has it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")

Rule = Callable[[dict[str, Any], str, str], list[str]]


def _binds(essence: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in essence.get("mounts") or [] if m.get("type") == "bind" and m.get("source")]


def _within(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


def _mounts(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    out = []
    for mount in _binds(essence):
        source, target, rw = mount["source"], mount["target"], not mount.get("read_only")
        mode = "read-write" if rw else "read-only"
        if source == "/":
            out.append(f"mounts the host's whole filesystem (/ → {target}, {mode}): the container sees every file")
        elif source == "/etc":
            out.append(f"mounts the host's /etc ({mode}): passwords' hashes, keys and system settings")
        elif source in DOCKER_SOCKETS or source.endswith("/docker.sock"):
            out.append(
                f"mounts the Docker socket ({source}): whoever runs in the container controls the engine, "
                "which is root on this host"
            )
        elif rw and home not in ("", "/") and source == home:
            out.append(f"mounts your home folder read-write ({home} → {target}): the container can change any of it")
    return out


def _ipc(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    if essence.get("ipc") != "host":
        return []
    return ["ipc: host shares the host's IPC namespace and /dev/shm: it sees and can change other programs' memory"]


def _privileged(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    if not essence.get("privileged"):
        return []
    return ["privileged: true gives every capability and every host device: root inside is root on the host"]


def _network(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    if essence.get("network_mode") != "host":
        return []
    return ["network_mode: host opens whatever listens inside on every interface of this machine, unpublished"]


def _root_writes_project(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    user = str(essence.get("user") or "")
    if user.split(":")[0] not in ("root", "0"):
        return []
    for mount in _binds(essence):
        if not mount.get("read_only") and _within(project_dir, mount["source"]):
            return [
                f"user: {user} with {mount['source']} mounted read-write: files written there become root's "
                "(use user: host to keep them yours)"
            ]
    return []


def _secret_outside_env(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    from ngcws.redact import CONCEALED, holds_digest

    fields = [field for field in CONCEALED if holds_digest(essence.get(field))]
    if not fields:
        return []
    return [
        f"{' and '.join(fields)} hold{'s' if len(fields) == 1 else ''} a secret variable's value: whoever can run "
        "`docker inspect` reads it there (ngcws shows only that it changed); pass it in `env:` and refer to "
        "it inside (`sh -c '... $$HF_TOKEN'` in ngcws.yaml: `$$` is a literal $) to keep it out of the "
        "container's config"
    ]


RULES: tuple[Rule, ...] = (_mounts, _ipc, _privileged, _network, _root_writes_project, _secret_outside_env)


def findings(essence: dict[str, Any], project_dir: str, home: str) -> list[str]:
    """Why this workspace's settings are risky (empty: they are not); ``home`` is the user's."""
    home = os.path.normpath(home) if home else ""
    return [text for rule in RULES for text in rule(essence, project_dir, home)]
