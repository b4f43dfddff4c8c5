"""Golden tests: ngcws.yaml → the exact Engine API create request.

The GPU cases are the command forms of NVIDIA's own guide to the NGC PyTorch container
(shared/seeds): `--gpus all`, `--gpus 2`, `--gpus '"device=1,2"'`, `--gpus device=UUID,1`,
`--gpus all,capabilities=utility`, `--shm-size`, `--ipc=host`, `--ulimit`; each DeviceRequest is
what the docker CLI sends for that flag (docker/cli opts/gpus.go).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ngcws.load import load
from ngcws.spec import KEEPALIVE, Identity, Invoker, desired_container, device_requests

UUID = "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"
INVOKER = Invoker(uid=1000, gid=1000, name="ada", group="ada")


def desired_from(tmp_path: Path, body: str) -> Any:
    (tmp_path / "ngcws.yaml").write_text(
        "name: lab\nworkspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n" + body
    )
    project = load(cwd=tmp_path, environ={})
    identity = Identity(project.name, str(project.directory), str(project.config_file))
    return desired_container("train", project.workspaces["train"], identity, INVOKER)


GPU = {"Driver": "", "Count": 0, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}


@pytest.mark.parametrize(
    ("docker_flag", "yaml", "expected"),
    [
        ("--gpus all", "gpus: all", [{**GPU, "Count": -1}]),
        ("(default)", "", [{**GPU, "Count": -1}]),
        ("--gpus 2", "gpus: 2", [{**GPU, "Count": 2}]),
        ("--gpus '\"device=1,2\"'", "gpus: [1, 2]", [{**GPU, "DeviceIDs": ["1", "2"]}]),
        ("--gpus '\"device=1,2\"'", "gpus: device=1,2", [{**GPU, "DeviceIDs": ["1", "2"]}]),
        (f"--gpus device={UUID},1", f"gpus: [{UUID}, 1]", [{**GPU, "DeviceIDs": [UUID, "1"]}]),
        ("--gpus device=0:1 (MIG)", "gpus: ['0:1']", [{**GPU, "DeviceIDs": ["0:1"]}]),
        (
            "--gpus all,capabilities=utility",
            "gpus: all\n    capabilities: [utility]",
            [{**GPU, "Count": -1, "Capabilities": [["utility", "gpu"]]}],
        ),
        (
            "--gpus 'all,\"capabilities=compute,utility\"'",
            "capabilities: [utility, compute]",
            [{**GPU, "Count": -1, "Capabilities": [["compute", "utility", "gpu"]]}],
        ),
        ("(no --gpus)", "gpus: none", []),
    ],
)
def test_gpus_become_device_requests(
    tmp_path: Path, docker_flag: str, yaml: str, expected: list[dict[str, Any]]
) -> None:
    request = desired_from(tmp_path, f"    {yaml}\n" if yaml else "").request
    assert request["HostConfig"]["DeviceRequests"] == expected, docker_flag


def test_gpus_none_hides_the_images_default_of_all_gpus(tmp_path: Path) -> None:
    request = desired_from(tmp_path, "    gpus: none\n").request
    assert "NVIDIA_VISIBLE_DEVICES=void" in request["Env"]


def test_ngc_recommended_flags(tmp_path: Path) -> None:
    """docker run --gpus all --ipc=host --ulimit memlock=-1 --ulimit stack=67108864 -v $PWD:/workspace"""
    request = desired_from(
        tmp_path, "    ipc: host\n    ulimits: {memlock: -1, stack: 67108864}\n    mounts: ['.:/workspace']\n"
    ).request
    host = request["HostConfig"]
    assert host["IpcMode"] == "host"
    assert host["Ulimits"] == [
        {"Name": "memlock", "Soft": -1, "Hard": -1},
        {"Name": "stack", "Soft": 67108864, "Hard": 67108864},
    ]
    assert host["Mounts"] == [{"Type": "bind", "Source": str(tmp_path), "Target": "/workspace", "ReadOnly": False}]
    assert "ShmSize" not in host


def test_whole_request_golden(tmp_path: Path) -> None:
    """--shm-size=16g -e WANDB_MODE=offline -w /workspace -p 8888:8888 --restart unless-stopped --init"""
    desired = desired_from(
        tmp_path,
        "    shm_size: 16g\n    env: {WANDB_MODE: offline}\n    working_dir: /workspace\n"
        "    ports: ['8888:8888']\n    restart: unless-stopped\n    labels: {team: vision}\n",
    )
    request = desired.request
    labels = request.pop("Labels")
    assert request == {
        "Image": "nvcr.io/nvidia/pytorch:23.08-py3",
        "Cmd": KEEPALIVE,
        "Env": ["WANDB_MODE=offline"],
        "ExposedPorts": {"8888/tcp": {}},
        "Tty": False,
        "OpenStdin": False,
        "WorkingDir": "/workspace",
        "HostConfig": {
            "Init": True,
            "DeviceRequests": [{**GPU, "Count": -1}],
            "Mounts": [],
            "Ulimits": [],
            "RestartPolicy": {"Name": "unless-stopped"},
            "PortBindings": {"8888/tcp": [{"HostIp": "", "HostPort": "8888"}]},
            "ShmSize": 16 * 1024**3,
        },
    }
    assert labels["team"] == "vision"
    assert labels["ngcws.project"] == "lab" and labels["ngcws.workspace"] == "train"
    assert labels["ngcws.project-dir"] == str(tmp_path)
    assert labels["ngcws.spec-hash"] == desired.spec_hash and len(desired.spec_hash) == 64
    assert desired.name == "lab-train"


def test_command_keeps_the_images_entrypoint(tmp_path: Path) -> None:
    request = desired_from(tmp_path, "    command: [python, serve.py]\n").request
    assert request["Cmd"] == ["python", "serve.py"]
    assert "Entrypoint" not in request  # NGC's entrypoint turns on CUDA forward compatibility


def test_user_host_runs_as_the_invoker_with_a_home(tmp_path: Path) -> None:
    desired = desired_from(tmp_path, "    user: host\n")
    assert desired.request["User"] == "1000:1000"
    assert {"HOME=/home/ada", "USER=ada", "LOGNAME=ada"} <= set(desired.request["Env"])
    assert desired.host_user == INVOKER


def test_named_volumes_are_scoped_to_the_project(tmp_path: Path) -> None:
    desired = desired_from(tmp_path, "    mounts: ['cache:/root/.cache']\n")
    assert desired.request["HostConfig"]["Mounts"] == [
        {"Type": "volume", "Source": "lab_cache", "Target": "/root/.cache", "ReadOnly": False}
    ]
    assert desired.volumes == ("lab_cache",)


def test_hash_ignores_spelling_and_order_but_not_meaning(tmp_path: Path) -> None:
    a = desired_from(tmp_path, "    shm_size: 16g\n    env: {A: '1', B: '2'}\n    capabilities: [utility, compute]\n")
    b = desired_from(
        tmp_path,
        "    # a comment\n    capabilities: [compute, utility]\n    env: [B=2, A=1]\n    shm_size: 17179869184\n",
    )
    c = desired_from(tmp_path, "    shm_size: 8g\n    env: {A: '1', B: '2'}\n    capabilities: [utility, compute]\n")
    assert a.spec_hash == b.spec_hash != c.spec_hash


def test_device_requests_count_and_ids_are_exclusive() -> None:
    assert device_requests(3, None)[0]["DeviceIDs"] is None
    assert device_requests(["0"], None)[0]["Count"] == 0


@pytest.mark.parametrize(
    ("yaml", "visible", "caps"),
    [
        ("gpus: all", "all", None),
        ("gpus: 2", "0,1", None),
        ("gpus: [1, 2]", "1,2", None),
        (f"gpus: [{UUID}, 1]", f"{UUID},1", None),
        ("gpus: all\n    capabilities: [utility]", "all", "utility"),
    ],
)
def test_gpu_request_runtime_is_the_nvidia_docker_form(
    tmp_path: Path, yaml: str, visible: str, caps: str | None
) -> None:
    """`docker run --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=... [-e NVIDIA_DRIVER_CAPABILITIES=...]`"""
    request = desired_from(tmp_path, f"    {yaml}\n    gpu_request: runtime\n").request
    env = dict(e.split("=", 1) for e in request["Env"])
    assert request["HostConfig"]["Runtime"] == "nvidia" and request["HostConfig"]["DeviceRequests"] == []
    assert env["NVIDIA_VISIBLE_DEVICES"] == visible and env.get("NVIDIA_DRIVER_CAPABILITIES") == caps


def test_gpu_request_runtime_without_gpus_uses_no_runtime(tmp_path: Path) -> None:
    request = desired_from(tmp_path, "    gpus: none\n    gpu_request: runtime\n").request
    assert "Runtime" not in request["HostConfig"] and "NVIDIA_VISIBLE_DEVICES=void" in request["Env"]


@pytest.mark.parametrize(
    ("yaml", "ids"),
    [
        ("gpus: all", ["nvidia.com/gpu=all"]),
        ("gpus: 2", ["nvidia.com/gpu=0", "nvidia.com/gpu=1"]),
        (f"gpus: [{UUID}, '0:1']", [f"nvidia.com/gpu={UUID}", "nvidia.com/gpu=0:1"]),
    ],
)
def test_gpu_request_cdi_is_what_docker_run_device_sends(tmp_path: Path, yaml: str, ids: list[str]) -> None:
    """`docker run --device nvidia.com/gpu=0`: DeviceRequest{Driver: cdi, DeviceIDs} (docker/cli opts.go)."""
    request = desired_from(tmp_path, f"    {yaml}\n    gpu_request: cdi\n").request
    assert request["HostConfig"]["DeviceRequests"] == [
        {"Driver": "cdi", "Count": 0, "DeviceIDs": ids, "Capabilities": None, "Options": None}
    ]


def test_gpu_request_auto_keeps_the_spec_hash_of_older_files(tmp_path: Path) -> None:
    plain = desired_from(tmp_path, "    gpus: 2\n")
    auto = desired_from(tmp_path, "    gpus: 2\n    gpu_request: auto\n")
    explicit = desired_from(tmp_path, "    gpus: 2\n    gpu_request: device-requests\n")
    assert plain.spec_hash == auto.spec_hash and "gpu_request" not in plain.essence
    assert explicit.request["HostConfig"] == plain.request["HostConfig"] and explicit.spec_hash != plain.spec_hash


def test_auto_becomes_the_runtime_on_engines_before_api_1_40() -> None:
    from ngcws.preflight import effective_gpu_request

    assert effective_gpu_request({}, "1.39") == "runtime"
    assert effective_gpu_request({}, "1.40") == "device-requests"
    assert effective_gpu_request({"gpu_request": "cdi"}, "1.39") == "cdi"


#: For every field of the real model: a value that changes what reaches the engine...
CHANGED = {
    "image": "nvcr.io/nvidia/pytorch:24.01-py3",
    "gpus": 2,
    "gpu_request": "runtime",
    "capabilities": ["utility"],
    "shm_size": "2g",
    "ipc": "shareable",
    "ulimits": {"memlock": -1},
    "mounts": ["cache:/cache"],
    "env": {"A": "1"},
    "env_file": "vars.env",
    "working_dir": "/elsewhere",
    "user": "1000:1000",
    "command": ["python", "train.py"],
    "ports": ["8888:8888"],
    "restart": "always",
    "init": False,
    "labels": {"team": "vision"},
    "network_mode": "host",
    "networks": ["lab-net"],
    "devices": ["/dev/null:/dev/xnull"],
    "cap_add": ["SYS_PTRACE"],
    "cap_drop": ["NET_RAW"],
    "security_opt": ["seccomp=unconfined"],
    "privileged": True,
    "entrypoint": ["/bin/sh", "-c"],
    "hostname": "box",
    "extra_hosts": ["db:10.0.0.2"],
    "dns": ["10.0.0.53"],
    "cpus": 2,
    "cpuset": "0-1",
    "mem_limit": "8g",
    "memswap_limit": "16g",
    "pids_limit": 100,
    "tmpfs": ["/scratch"],
    "sysctls": {"net.core.somaxconn": "1024"},
    "group_add": ["video"],
    "read_only": True,
    "stop_signal": "SIGINT",
    "stop_grace_period": "30s",
    "runtime": "runc",
    "healthcheck": {"test": ["CMD", "true"]},
}
#: Fields that are valid only beside another one.
NEEDS: dict[str, dict[str, object]] = {"memswap_limit": {"mem_limit": "8g"}}
#: ...or why it does not belong in the spec hash.
NOT_HASHED = {
    "pull": "when to pull, not what runs: a changed policy must not recreate",
    "ignore_changes": "what the lost-work guard may throw away, read from the file at each up",
    "distributed": "how submit and export run it on a cluster, not what ngcws up creates",
    "restart_on": "what a watcher restarts the workspace for, not what runs: editing it never recreates",
}


def test_every_model_field_reaches_the_spec_hash(tmp_path: Path) -> None:
    """Derived from the model: a field added to Workspace and forgotten in the essence fails here."""
    from ngcws.model import Workspace

    assert set(Workspace.model_fields) == CHANGED.keys() | NOT_HASHED.keys(), (
        "add the new field to CHANGED or NOT_HASHED"
    )
    (tmp_path / "vars.env").write_text("FROM_FILE=1\n")
    identity = Identity("lab", str(tmp_path), str(tmp_path / "ngcws.yaml"))
    context = {"project_dir": str(tmp_path), "variables": {}}

    def spec_hash(**fields: object) -> str:
        model = Workspace.model_validate({"image": "nvcr.io/nvidia/pytorch:23.08-py3", **fields}, context=context)
        return desired_container("train", model, identity, INVOKER).spec_hash

    base = spec_hash()
    for field, value in CHANGED.items():
        needs = NEEDS.get(field, {})
        assert spec_hash(**needs, **{field: value}) != spec_hash(**needs), f"{field}: {value!r} changes nothing"
    assert spec_hash(pull="always") == spec_hash(pull="never") == base
    assert spec_hash(ignore_changes=["/root/.cache"]) == base
    assert spec_hash(distributed={"nodes": 4, "command": ["train.py"]}) == base
    assert spec_hash(restart_on=["src/**/*.py"]) == base


@pytest.mark.parametrize(
    ("field", "key", "sent"),
    [
        ("stop_grace_period: 0", ("Config", "StopTimeout"), 0),  # docker run --stop-timeout 0
        ("stop_grace_period: 0s", ("Config", "StopTimeout"), 0),
        ("mem_limit: 0", ("HostConfig", "Memory"), 0),
        ("healthcheck: {test: 'true', retries: 0}", ("Config", "Healthcheck"), {"Test": ["CMD-SHELL", "true"], "Retries": 0}),
        ("read_only: false", ("HostConfig", "ReadonlyRootfs"), None),  # the CLI's default: nothing sent
        ("privileged: false", ("HostConfig", "Privileged"), None),
        ("pids_limit: 0", ("HostConfig", "PidsLimit"), None),  # unlimited, as -1: the engine's default
    ],
)  # fmt: skip
def test_zero_is_a_value_not_unset(tmp_path: Path, field: str, key: tuple[str, str], sent: object) -> None:
    request = desired_from(tmp_path, f"    {field}\n").request
    section = request if key[0] == "Config" else request["HostConfig"]
    assert section.get(key[1]) == sent
