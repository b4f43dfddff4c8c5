"""`ngcws export compose`: `docker-compose up` of the exported file (Debian's docker-compose 1.29)
creates containers whose configuration matches what `ngcws up` creates, field by field, for every
field ngcws manages."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

from tests.conftest import Workspace


def _compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    message = "docker-compose is not installed (scripts/testbed installs Debian's)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _managed(inspect: dict[str, Any]) -> dict[str, Any]:
    """What ngcws sets on a container, normalised (defaults spelled out, lists sorted)."""
    host, config = inspect["HostConfig"], inspect["Config"]
    mounts = sorted(
        (
            {
                "Type": m["Type"],
                "Source": m.get("Source", ""),
                "Target": m["Target"],
                "ReadOnly": m.get("ReadOnly", False),
            }
            for m in host.get("Mounts") or []
        ),
        key=lambda m: m["Target"],
    )
    return {
        "Image": config["Image"],
        "Cmd": config["Cmd"],
        "Env": sorted(config["Env"] or []),
        "WorkingDir": config["WorkingDir"],
        "User": config["User"],
        "Tty": config["Tty"],
        "OpenStdin": config["OpenStdin"],
        "UserLabels": {
            k: v for k, v in (config["Labels"] or {}).items() if not k.startswith(("ngcws.", "com.docker."))
        },
        "Init": host["Init"] or False,
        "DeviceRequests": [{**d, "DeviceIDs": d["DeviceIDs"] or None} for d in host.get("DeviceRequests") or []],
        "Mounts": mounts,
        "Ulimits": sorted(host.get("Ulimits") or [], key=lambda u: u["Name"]),
        "RestartPolicy": host["RestartPolicy"]["Name"] or "no",
        "PortBindings": {k: sorted(v, key=str) for k, v in (host.get("PortBindings") or {}).items()},
        "ShmSize": host["ShmSize"],
        "IpcMode": host["IpcMode"],
        # "default" is the engine's name for its default network, which on Linux is "bridge".
        "NetworkMode": "bridge" if host["NetworkMode"] == "default" else host["NetworkMode"],
        "Privileged": host["Privileged"],
        "CapAdd": host.get("CapAdd"),
    }


def test_compose_up_of_the_export_matches_ngcws_up(project: Workspace, testbed: dict[str, str], gpu_sim: None) -> None:
    compose = _compose_cli()
    (project.dir / "data").mkdir()
    project.write(
        f"""workspaces:
  train:
    image: {testbed["NGCWS_TB_TINY"]}
    gpus: [0]
    capabilities: [compute, utility]
    shm_size: 256m
    ulimits: {{stack: 67108864, nofile: {{soft: 1024, hard: 4096}}}}
    mounts: [".:/workspace", "./data:/data:ro", "cache:/cache", {{type: tmpfs, target: /scratch}}]
    working_dir: /workspace
    env: {{A: "x $$y", B: "2"}}
    user: "1000:1000"
    ports: ["127.0.0.1::8888", "127.0.0.1::6006/udp"]
    restart: unless-stopped
    labels: {{team: vision}}
  serve:
    image: {testbed["NGCWS_TB_TINY"]}
    gpus: 1
    ipc: host
    init: false
    command: [sleep, "3600"]
  cpu:
    image: {testbed["NGCWS_TB_TINY"]}
    gpus: none
"""
    )
    from ngcws.engine import Engine

    engine = Engine()
    project.ok("up")
    names = {ws: f"{project.name}-{ws}" for ws in ("train", "serve", "cpu")}
    by_ngcws = {ws: _managed(engine.inspect_container(name) or {}) for ws, name in names.items()}
    project.ok("down")
    project.ok("export", "compose", "-o", "docker-compose.yml")
    compose_project = f"{project.name}-compose"
    run = [*compose, "-p", compose_project, "-f", str(project.dir / "docker-compose.yml")]
    try:
        up = subprocess.run([*run, "up", "-d"], capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        by_compose = {ws: _managed(engine.inspect_container(name) or {}) for ws, name in names.items()}
    finally:
        subprocess.run([*run, "down", "-v"], capture_output=True, timeout=300)
    for ws in names:
        assert by_compose[ws] == by_ngcws[ws], ws
