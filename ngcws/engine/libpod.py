"""Podman: recognise it, and create GPU containers through its own (libpod) API.

Podman's Docker-compatible API runs the whole workspace lifecycle, but (Podman 4.x) it silently
drops ``HostConfig.DeviceRequests`` (``--gpus``: no GPU, no error) and refuses CDI names in
``Devices``. CDI devices (``nvidia.com/gpu=0``) apply only through the libpod API
(``POST /v4.0.0/libpod/containers/create``, ``devices: [{path: ...}]``). So a container that asks
for GPUs is created there, from the same Docker-style request translated field by field; any
field this translation does not know is refused rather than dropped. Everything else (inspect,
start, exec, remove) stays on the compatible API: libpod's containers are the same containers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ngcws.errors import EngineError

LIBPOD_CREATE = "/v4.0.0/libpod/containers/create"
#: Where Podman reads CDI specs (it does not list them in /info, as Docker 25+ does).
PODMAN_CDI_DIRS = ("/etc/cdi", "/var/run/cdi")

# Request fields ngcws's spec produces, and which of them Podman handles identically when empty.
_TOP = {
    "Image", "Cmd", "Env", "Labels", "ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "AttachStdin",
    "AttachStdout", "AttachStderr", "WorkingDir", "User", "HostConfig", "Entrypoint",
}  # fmt: skip
_HOST = {"Init", "DeviceRequests", "Mounts", "Ulimits", "RestartPolicy", "PortBindings", "ShmSize", "IpcMode"}


def is_podman(version: Mapping[str, Any] | None) -> bool:
    """Is this ``GET /version`` answer Podman's?"""
    components = (version or {}).get("Components") or []
    return any("podman" in str(c.get("Name", "")).lower() for c in components)


def cdi_devices(request: Mapping[str, Any]) -> list[str] | None:
    """The CDI device names a request asks for; None when it asks for GPUs in a way Podman drops."""
    host = request.get("HostConfig") or {}
    if host.get("Runtime") == "nvidia":
        return None
    names: list[str] = []
    for device_request in host.get("DeviceRequests") or []:
        if device_request.get("Driver") != "cdi":
            return None
        names += list(device_request.get("DeviceIDs") or [])
    return names


def specgen(name: str, request: Mapping[str, Any], devices: list[str]) -> dict[str, Any]:
    """The libpod create body for a Docker-style create ``request`` plus CDI ``devices``."""
    host: Mapping[str, Any] = request.get("HostConfig") or {}
    unknown = sorted({k for k, v in request.items() if v and k not in _TOP})
    unknown += sorted(f"HostConfig.{k}" for k, v in host.items() if v and k not in _HOST)
    if unknown:
        raise EngineError(
            f"cannot create {name} through Podman's libpod API: ngcws cannot translate {', '.join(unknown)}",
            hint="Nothing was created. Please report this; without GPUs the workspace uses the compatible API.",
        )
    spec: dict[str, Any] = {
        "name": name,
        "image": request["Image"],
        "env": dict(e.split("=", 1) for e in request.get("Env") or []),
        "labels": dict(request.get("Labels") or {}),
        "terminal": bool(request.get("Tty")),
        "stdin": bool(request.get("OpenStdin")),
        "devices": [{"path": d} for d in devices],
        "init": bool(host.get("Init")),
        "restart_policy": (host.get("RestartPolicy") or {}).get("Name") or "no",
    }
    if request.get("Cmd") is not None:
        spec["command"] = list(request["Cmd"])
    if request.get("Entrypoint") is not None:
        spec["entrypoint"] = list(request["Entrypoint"])
    if request.get("WorkingDir"):
        spec["work_dir"] = request["WorkingDir"]
    if request.get("User"):
        spec["user"] = request["User"]
    if host.get("ShmSize"):
        spec["shm_size"] = int(host["ShmSize"])
    if host.get("IpcMode"):
        spec["ipcns"] = {"nsmode": "host" if host["IpcMode"] == "host" else host["IpcMode"]}
    spec["r_limits"] = [{"type": u["Name"], "soft": u["Soft"], "hard": u["Hard"]} for u in host.get("Ulimits") or []]
    mounts, volumes = [], []
    for mount in host.get("Mounts") or []:
        options = ["ro"] if mount.get("ReadOnly") else []
        if mount["Type"] == "bind":
            mounts.append({"destination": mount["Target"], "source": mount["Source"], "type": "bind",
                           "options": ["rbind", *options]})  # fmt: skip
        elif mount["Type"] == "volume":
            volumes.append({"Name": mount["Source"], "Dest": mount["Target"], "Options": options})
        elif mount["Type"] == "tmpfs":
            mounts.append({"destination": mount["Target"], "source": "tmpfs", "type": "tmpfs", "options": options})
        else:
            raise EngineError(f"cannot create {name} through Podman's libpod API: a {mount['Type']} mount")
    spec["mounts"], spec["volumes"] = mounts, volumes
    ports = []
    for key, bindings in (host.get("PortBindings") or {}).items():
        container_port, _, protocol = key.partition("/")
        for binding in bindings:
            ports.append(
                {
                    "host_ip": binding.get("HostIp") or "",
                    "host_port": int(binding.get("HostPort") or 0),
                    "container_port": int(container_port),
                    "protocol": protocol or "tcp",
                }
            )
    spec["portmappings"] = ports
    return spec
