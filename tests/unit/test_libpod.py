"""Podman: recognising it, and the libpod create body made from a Docker-style request."""

from __future__ import annotations

import pytest

from ngcws.engine.libpod import cdi_devices, is_podman, specgen
from ngcws.errors import EngineError
from ngcws.spec import cdi_requests, device_requests


def test_is_podman() -> None:
    assert is_podman({"Components": [{"Name": "Podman Engine", "Version": "4.3.1"}]})
    assert not is_podman({"Components": [{"Name": "Engine", "Version": "20.10.24"}]})
    assert not is_podman(None)


def test_cdi_devices_or_none_where_podman_would_drop_the_request() -> None:
    assert cdi_devices({"HostConfig": {"DeviceRequests": cdi_requests(["0", "2"])}}) == [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=2",
    ]
    assert cdi_devices({"HostConfig": {"DeviceRequests": device_requests("all", None)}}) is None
    assert cdi_devices({"HostConfig": {"Runtime": "nvidia", "DeviceRequests": []}}) is None


REQUEST = {
    "Image": "nvcr.io/nvidia/pytorch:23.08-py3",
    "Cmd": ["sleep", "infinity"],
    "Env": ["A=1", "B=x=y"],
    "Labels": {"ngcws.project": "p"},
    "ExposedPorts": {"8888/tcp": {}},
    "Tty": False,
    "OpenStdin": False,
    "WorkingDir": "/workspace",
    "User": "1000:1000",
    "HostConfig": {
        "Init": True,
        "DeviceRequests": cdi_requests(1),
        "Mounts": [
            {"Type": "bind", "Source": "/home/me/p", "Target": "/workspace", "ReadOnly": False},
            {"Type": "volume", "Source": "p-cache", "Target": "/root/.cache", "ReadOnly": True},
        ],
        "Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}],
        "RestartPolicy": {"Name": "unless-stopped"},
        "PortBindings": {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8888"}]},
        "ShmSize": 17179869184,
        "IpcMode": "host",
    },
}


def test_specgen_translates_every_field() -> None:
    spec = specgen("p-train", REQUEST, ["nvidia.com/gpu=0"])
    assert spec == {
        "name": "p-train",
        "image": "nvcr.io/nvidia/pytorch:23.08-py3",
        "env": {"A": "1", "B": "x=y"},
        "labels": {"ngcws.project": "p"},
        "terminal": False,
        "stdin": False,
        "devices": [{"path": "nvidia.com/gpu=0"}],
        "init": True,
        "restart_policy": "unless-stopped",
        "command": ["sleep", "infinity"],
        "work_dir": "/workspace",
        "user": "1000:1000",
        "shm_size": 17179869184,
        "ipcns": {"nsmode": "host"},
        "r_limits": [{"type": "memlock", "soft": -1, "hard": -1}],
        "mounts": [{"destination": "/workspace", "source": "/home/me/p", "type": "bind", "options": ["rbind"]}],
        "volumes": [{"Name": "p-cache", "Dest": "/root/.cache", "Options": ["ro"]}],
        "portmappings": [{"host_ip": "127.0.0.1", "host_port": 8888, "container_port": 8888, "protocol": "tcp"}],
    }


def test_a_field_it_cannot_translate_is_refused_not_dropped() -> None:
    with pytest.raises(EngineError, match=r"cannot translate Hostname, HostConfig\.CapAdd"):
        specgen("p-train", {**REQUEST, "Hostname": "h", "HostConfig": {**REQUEST["HostConfig"], "CapAdd": ["X"]}}, [])
