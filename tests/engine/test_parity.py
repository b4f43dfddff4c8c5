"""Parity with the docker CLI: each `docker run` flag form and its ngcws.yaml field give the same
container. The docker CLI is the oracle: for every form, what `docker create FLAG IMAGE` changes in
the inspected Config/HostConfig (against a plain `docker create IMAGE`) must be exactly what the
field changes in a container made by `ngcws up` (against the same workspace without the field).
"""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ngcws.engine import Engine
from ngcws.runflags import BY_FIELD
from tests.conftest import Workspace, docker_cli_available

pytestmark = pytest.mark.skipif(not docker_cli_available(), reason="needs the docker CLI as the oracle")

TEST_LABEL = "ngcws.test"
NETWORK = f"ngcwsparity{uuid.uuid4().hex[:8]}"
PEER = f"ngcwsparity-peer-{uuid.uuid4().hex[:8]}"

# (docker create flags, the workspace fields that mean the same)
CASES: list[tuple[list[str], str]] = [
    (["--network=host"], "network_mode: host"),
    (["--network=none"], "network_mode: none"),
    (["--network=bridge"], "network_mode: bridge"),
    ([f"--network=container:{PEER}"], f"network_mode: container:{PEER}"),
    ([f"--network={NETWORK}"], f"networks: [{NETWORK}]"),
    (["--device=/dev/null"], "devices: [/dev/null]"),
    (["--device=/dev/zero:/dev/myzero"], 'devices: ["/dev/zero:/dev/myzero"]'),
    (["--device=/dev/null:/dev/mynull:r"], 'devices: ["/dev/null:/dev/mynull:r"]'),
    (["--cap-add=IPC_LOCK"], "cap_add: [IPC_LOCK]"),
    (["--cap-add=SYS_ADMIN", "--cap-add=cap_sys_ptrace"], "cap_add: [cap_sys_ptrace, SYS_ADMIN]"),
    (["--cap-drop=ALL"], "cap_drop: [ALL]"),
    (["--cap-drop=NET_RAW"], "cap_drop: [net_raw]"),
    (["--security-opt", "seccomp=unconfined"], "security_opt: [seccomp=unconfined]"),
    (["--security-opt", "no-new-privileges"], "security_opt: [no-new-privileges]"),
    (["--security-opt", "label=disable"], "security_opt: [label=disable]"),
    (["--privileged"], "privileged: true"),
    (["--entrypoint", "/bin/sh"], "entrypoint: /bin/sh"),
    (["--entrypoint", "", "IMAGE", "sh"], 'entrypoint: ""'),  # docker wants a command then
    (["--hostname", "trainer"], "hostname: trainer"),
    (["--hostname", "node1.cluster.local"], "hostname: node1.cluster.local"),
    (["--add-host", "db:10.0.0.5"], 'extra_hosts: ["db:10.0.0.5"]'),
    (["--add-host", "db:10.0.0.5", "--add-host", "gw:host-gateway"], "extra_hosts: {db: 10.0.0.5, gw: host-gateway}"),
    (["--dns", "10.0.0.2", "--dns", "8.8.8.8"], "dns: [10.0.0.2, 8.8.8.8]"),
    (["--cpus", "1.5"], "cpus: 1.5"),
    (["--cpus", "0.25"], 'cpus: "0.25"'),
    (["--cpuset-cpus", "0"], 'cpuset: "0"'),
    (["--memory", "512m"], "mem_limit: 512m"),
    (["--memory", "512m", "--memory-swap", "1g"], "mem_limit: 512m\n    memswap_limit: 1g"),
    (["--memory", "512m", "--memory-swap", "-1"], "mem_limit: 512m\n    memswap_limit: -1"),
    (["--pids-limit", "100"], "pids_limit: 100"),
    (["--pids-limit", "-1"], "pids_limit: -1"),
    (["--tmpfs", "/scratch"], "tmpfs: /scratch"),
    (["--tmpfs", "/scratch:rw,size=64m", "--tmpfs", "/cache"], 'tmpfs: ["/scratch:rw,size=64m", /cache]'),
    (["--sysctl", "net.core.somaxconn=1024"], "sysctls: {net.core.somaxconn: 1024}"),
    (["--group-add", "44"], "group_add: [44]"),
    (["--read-only"], "read_only: true"),
    (["--stop-signal", "SIGINT"], "stop_signal: SIGINT"),
    (["--stop-timeout", "30"], "stop_grace_period: 30s"),
    (["--stop-timeout", "90"], "stop_grace_period: 1m30s"),
    (["--runtime", "runc"], "runtime: runc"),
    # 0 and false are values, not "unset": each as the docker CLI sends it.
    (["--stop-timeout", "0"], "stop_grace_period: 0"),
    (["--stop-timeout", "0"], "stop_grace_period: 0s"),
    (["--pids-limit", "0"], "pids_limit: 0"),
    (["--memory", "0"], "mem_limit: 0"),
    (["--read-only=false"], "read_only: false"),
    (["--privileged=false"], "privileged: false"),
    (["--health-cmd", "true", "--health-retries", "0", "--health-interval", "0s"],
     "healthcheck: {test: 'true', retries: 0, interval: 0s}"),
    (["--tmpfs", "/scratch:size=0"], 'tmpfs: ["/scratch:size=0"]'),
    (
        ["--health-cmd", "true", "--health-interval", "5s", "--health-timeout", "2s", "--health-retries", "3",
         "--health-start-period", "1s"],
        "healthcheck: {test: 'true', interval: 5s, timeout: 2s, retries: 3, start_period: 1s}",
    ),
    (["--health-cmd", "true"], 'healthcheck: {test: ["CMD-SHELL", "true"]}'),
    (["--no-healthcheck"], "healthcheck: {disable: true}"),
]  # fmt: skip


def _differences(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """What ``other`` has in Config/HostConfig that ``base`` does not (labels and random ids aside)."""
    out = {}
    for section in ("Config", "HostConfig"):
        for key in sorted(set(base[section]) | set(other[section])):
            before, after = base[section].get(key), other[section].get(key)
            if before == after or key == "Labels":
                continue
            if key == "Hostname" and re.fullmatch(r"[0-9a-f]{12}", str(after)):
                continue  # the engine's default: the container's short id
            out[f"{section}.{key}"] = after
    return out


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def oracle(testbed: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The docker CLI's side: a plain container to compare against, a network and a peer to join."""
    label = f"{TEST_LABEL}={uuid.uuid4().hex}"
    image = testbed["NGCWS_TB_TINY"]
    _docker("network", "create", "--label", label, NETWORK)
    _docker("run", "-d", "--label", label, "--name", PEER, image, "sleep", "infinity")
    try:
        plain = _docker("create", "--label", label, image)
        yield {"label": label, "image": image, "plain": Engine().inspect_container(plain)}
    finally:
        for container in _docker("ps", "-aq", "--filter", f"label={label}").split():
            _docker("rm", "-f", container)
        _docker("network", "rm", NETWORK)


#: Forms that spell the engine's default (unlimited, the default runtime, no entrypoint on this image):
#: the field must then change nothing either.
SAME_AS_UNSET = {"pids_limit: -1", "runtime: runc", 'entrypoint: ""', "mem_limit: 0", "read_only: false"}
SAME_AS_UNSET |= {"privileged: false", "pids_limit: 0"}

#: Flags this test bed cannot start a container with (its containers lack the capabilities); creating
#: it is the parity that matters, and `ngcws up` must then say why it could not start.
CANNOT_START_HERE = {"privileged: true"}


def _ngcws_container(project: Workspace, image: str, fields: str) -> dict[str, Any]:
    project.write(f"workspaces:\n  w:\n    image: {image}\n    gpus: none\n    {fields}\n".replace("    \n", ""))
    result = project.ngcws("up")
    if result.returncode != 0:
        assert fields in CANNOT_START_HERE and b"cannot start" in result.stderr, result.stderr.decode()
    (found,) = project.containers()
    inspected = Engine().inspect_container(str(found["Id"]))
    assert inspected is not None
    return inspected


@pytest.fixture(scope="module")
def ngcws_plain(oracle: dict[str, Any], make_project_module: Any) -> dict[str, Any]:
    return _ngcws_container(make_project_module(), oracle["image"], "")


@pytest.mark.parametrize(("flags", "fields"), CASES, ids=[" ".join(flags) for flags, _ in CASES])
def test_field_matches_docker_run_flag(
    flags: list[str], fields: str, oracle: dict[str, Any], ngcws_plain: dict[str, Any], project: Workspace
) -> None:
    args = [oracle["image"] if a == "IMAGE" else a for a in flags]
    created = _docker("create", "--label", oracle["label"], *args, *([] if "IMAGE" in flags else [oracle["image"]]))
    by_docker = _differences(oracle["plain"], Engine().inspect_container(created) or {})
    by_ngcws = _differences(ngcws_plain, _ngcws_container(project, oracle["image"], fields))
    if "entrypoint" in fields:
        by_docker.pop("Config.Cmd", None)  # docker drops the image's CMD; ngcws keeps its keep-alive command
    if fields in SAME_AS_UNSET:
        assert by_docker == {}
    else:
        assert by_docker, "the flag changed nothing: the case proves nothing"
    assert by_ngcws == by_docker


def test_every_field_of_the_table_has_a_parity_case() -> None:
    covered = {line.split(":")[0].strip() for _, fields in CASES for line in fields.splitlines()}
    before_these = {"image", "command", "gpus", "capabilities", "shm_size", "ipc", "ulimits", "mounts", "env"}
    before_these |= {"env_file", "working_dir", "user", "ports", "restart", "init", "labels"}
    assert set(BY_FIELD) - before_these - covered == set()


def test_a_seccomp_profile_file_is_sent_as_the_docker_cli_sends_it(
    oracle: dict[str, Any], ngcws_plain: dict[str, Any], project: Workspace
) -> None:
    profile = project.dir / "profile.json"
    profile.write_text(
        '{\n  "defaultAction": "SCMP_ACT_ALLOW",\n  "syscalls": [\n    {"names": ["reboot"], "action": "SCMP_ACT_ERRNO"}\n  ]\n}\n'
    )
    created = _docker("create", "--label", oracle["label"], "--security-opt", f"seccomp={profile}", oracle["image"])
    by_docker = _differences(oracle["plain"], Engine().inspect_container(created) or {})
    assert by_docker["HostConfig.SecurityOpt"][0].startswith('seccomp={"defaultAction"')
    assert (
        _differences(ngcws_plain, _ngcws_container(project, oracle["image"], "security_opt: [seccomp=./profile.json]"))
        == by_docker
    )
