"""The fields beyond NVIDIA's guide: validation messages, refused combinations, drift, and the
table of fields and docker run flags. (What they send to the engine is proven against the docker
CLI in tests/engine/test_parity.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ngcws.errors import ConfigError
from ngcws.load import load
from ngcws.plan import describe_changes
from ngcws.runflags import NGCWS_OWN, RUN_FLAGS
from ngcws.spec import Identity, Invoker, desired_container

ROOT = Path(__file__).resolve().parents[2]
HEAD = "name: lab\nworkspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # errors name files relative to the current folder


def desired(tmp_path: Path, body: str) -> Any:
    (tmp_path / "ngcws.yaml").write_text(HEAD + body)
    project = load(cwd=tmp_path, environ={})
    identity = Identity(project.name, str(project.directory), str(project.config_file))
    return desired_container("train", project.workspaces["train"], identity, Invoker(1000, 1000, "ada"))


def error(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as info:
        desired(tmp_path, body)
    return info.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "network_mode: cluster",
            "ngcws.yaml:5:19: workspaces.train.network_mode: expected bridge, host, none or container:NAME",
        ),
        ("networks: [host]", "'host' is a network mode: write network_mode: host"),
        ("devices: [/dev/null:/dev/x:rx]", "device permissions must be a combination of r, w and m"),
        ("devices: [dev/null]", "device paths must be absolute"),
        ("devices: ['nvidia.com/gpu=0']", "CDI device name"),
        ("cap_add: [IPC_LOK]", "unknown Linux capability 'IPC_LOK' (did you mean 'IPC_LOCK'?)"),
        ("security_opt: [seccomp-unconfined]", "unknown security option"),
        ("extra_hosts: ['db:10.0.0.300']", "'10.0.0.300' is not an IP address"),
        ("dns: [resolver.local]", "dns: 'resolver.local' is not an IP address"),
        ("cpus: 0", "cpus must be at least 0.01"),
        ("cpus: 1.005", "in steps of 0.01"),
        ("cpuset: 0-3;5", "workspaces.train.cpuset"),
        ("mem_limit: 1q", "expected a size such as 16g"),
        ("pids_limit: -5", "or -1 for unlimited"),
        ("tmpfs: [scratch]", "a tmpfs path must be absolute"),
        ("sysctls: {somaxconn: 1}", "is not a sysctl name"),
        ("stop_signal: SIGFOO", "is not a signal name"),
        ("stop_grace_period: 1.5s", "not a whole number of seconds"),
        ("stop_grace_period: soon", "expected a duration such as 10s"),
        ("healthcheck: {interval: 5s}", "a healthcheck needs a test"),
        ("healthcheck: {test: [curl, x]}", "starts with CMD, CMD-SHELL or NONE"),
        ("healthcheck: {test: 'true', disable: true}", "cannot be combined"),
        ("hostname: -bad", "workspaces.train.hostname"),
        ("privilegd: true", "unknown key 'privilegd' (did you mean 'privileged'?)"),
        ("healthcheck: {test: 'true', intervall: 5s}", "unknown key 'intervall' (did you mean 'interval'?)"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, body: str, message: str) -> None:
    assert message in error(tmp_path, "    " + body + "\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "network_mode: host\n    ports: ['8888:8888']",
            "ngcws.yaml:6:12: workspaces.train.ports: ports cannot be published with network_mode: host"
            " (the host's ports are the container's: drop ports) (network_mode at ngcws.yaml:5:19)",
        ),
        (
            "hostname: box\n    network_mode: host",
            "workspaces.train.hostname: hostname cannot be set with network_mode: host",
        ),
        (
            "network_mode: container:db\n    dns: [1.1.1.1]",
            "workspaces.train.dns: dns cannot be set with network_mode: container:db",
        ),
        (
            "ipc: host\n    shm_size: 1g",
            "ngcws.yaml:6:15: workspaces.train.shm_size: shm_size has no effect with ipc: host",
        ),
        (
            "networks: [a]\n    network_mode: bridge",
            "workspaces.train.networks: networks cannot be combined with network_mode",
        ),
        ("memswap_limit: 1g", "memswap_limit needs mem_limit"),
        (
            "mem_limit: 2g\n    memswap_limit: 1g",
            "memswap_limit (1g) is memory plus swap and must be at least mem_limit (2g)",
        ),
        ("read_only: true\n    user: host", "read_only: true leaves no way to add your user"),
        ("tmpfs: /data\n    mounts: ['/tmp:/data']", "tmpfs '/data' and a mount both target '/data'"),
        ("runtime: runc\n    gpu_request: runtime", "runtime: runc cannot be combined with gpu_request: runtime"),
    ],
)
def test_bad_combinations_are_refused_in_the_files_terms(tmp_path: Path, body: str, message: str) -> None:
    assert message in error(tmp_path, "    " + body + "\n")


def test_unset_fields_leave_the_essence_as_before(tmp_path: Path) -> None:
    essence = desired(tmp_path, "    privileged: false\n    cap_add: []\n    pids_limit: -1\n").essence
    assert "privileged" not in essence and "cap_add" not in essence and "pids_limit" not in essence


def test_each_field_changes_the_hash_and_names_itself_in_the_reason(tmp_path: Path) -> None:
    before = desired(tmp_path, "")
    for body, reason in [
        ("network_mode: host", "network_mode unset → host"),
        ("cap_add: [SYS_ADMIN]", "cap_add: + CAP_SYS_ADMIN"),
        ("privileged: true", "privileged unset → True"),
        ("mem_limit: 1g", "mem_limit unset → 1073741824"),
        ("healthcheck: {test: 'true'}", "healthcheck.test unset → [CMD-SHELL, true]"),
        ("stop_grace_period: 1m", "stop_grace_period unset → 60"),
    ]:
        after = desired(tmp_path, f"    {body}\n")
        assert after.spec_hash != before.spec_hash
        assert describe_changes(before.essence, after.essence) == [reason]


def test_equivalent_spellings_do_not_recreate(tmp_path: Path) -> None:
    one = desired(tmp_path, "    cap_add: [sys_admin, IPC_LOCK]\n    stop_grace_period: 90s\n    sysctls: [a.b=1]\n")
    two = desired(
        tmp_path, "    cap_add: [CAP_IPC_LOCK, SYS_ADMIN]\n    stop_grace_period: 1m30s\n    sysctls: {a.b: 1}\n"
    )
    assert one.spec_hash == two.spec_hash


def test_networks_join_the_first_at_create(tmp_path: Path) -> None:
    request = desired(tmp_path, "    networks: [zeta, alpha]\n").request
    assert request["HostConfig"]["NetworkMode"] == "alpha"
    assert request["NetworkingConfig"] == {"EndpointsConfig": {"alpha": {}}}


def test_every_field_is_in_the_table_and_documented() -> None:
    from ngcws.model import Workspace

    table = {row.field for row in RUN_FLAGS}
    assert table == set(Workspace.model_fields) - set(NGCWS_OWN)
    docs = (ROOT / "docs" / "configuration.md").read_text()
    for row in RUN_FLAGS:
        assert f"`{row.field}`" in docs, row.field
        assert any(flag in docs for flag in row.flags), (row.field, row.flags)


def test_a_seccomp_profile_is_read_and_followed(tmp_path: Path) -> None:
    from ngcws.state import load_state

    assert "profile.json' cannot be read" in error(tmp_path, "    security_opt: [seccomp=profile.json]\n")
    (tmp_path / "profile.json").write_text("{not json")
    assert "is not JSON" in error(tmp_path, "    security_opt: [seccomp=profile.json]\n")
    (tmp_path / "profile.json").write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    assert load_state().containers["train"].essence["security_opt"] == ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']
    (tmp_path / "profile.json").write_text('{"defaultAction": "SCMP_ACT_ERRNO"}')  # the cache follows the profile
    assert load_state().containers["train"].essence["security_opt"] == ['seccomp={"defaultAction":"SCMP_ACT_ERRNO"}']


def test_a_changed_sysctl_or_tmpfs_is_named_by_key(tmp_path: Path) -> None:
    before = desired(tmp_path, "    sysctls: {net.core.somaxconn: 1024}\n    tmpfs: [/scratch]\n").essence
    after = desired(tmp_path, "    sysctls: {net.core.somaxconn: 4096}\n    tmpfs: ['/scratch:size=1g']\n").essence
    assert describe_changes(before, after) == ['tmpfs./scratch "" → size=1g', "sysctls.net.core.somaxconn 1024 → 4096"]


# A boolean or a count may be the text of one (an interpolated value is always text, as in Compose);
# YAML 1.1's yes/on and other spellings stay refused.
@pytest.mark.parametrize(
    "body", ["privileged: yes", "read_only: 'on'", "healthcheck: {test: 'true', retries: 'three'}"]
)
def test_booleans_and_numbers_are_yaml_ones(tmp_path: Path, body: str) -> None:
    assert "workspaces.train." in error(tmp_path, "    " + body + "\n")
