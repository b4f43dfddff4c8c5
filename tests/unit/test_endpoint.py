"""Which engine ngcws talks to: the docker CLI's precedence, as a table (engine/endpoint.py).

The context store is written here in the layout ``docker context create`` uses; the engine tests
(tests/engine/test_endpoints.py) check the same table against the docker CLI itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ngcws.engine.connect import ssh_command
from ngcws.engine.endpoint import DEFAULT_HOST, resolve
from ngcws.errors import EngineUnavailable, UsageError


def make_context(config: Path, name: str, host: str, tls: bool = False, skip_verify: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_verify}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Metadata": {}, "Endpoints": {"docker": endpoint}}))
    if tls:
        material = config / "contexts" / "tls" / digest / "docker"
        material.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            (material / file).write_text(file)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    config = tmp_path / "docker-config"
    config.mkdir()
    for name in ("flagged", "envctx", "current"):
        make_context(config, name, f"unix:///run/{name}.sock")
    (config / "config.json").write_text(json.dumps({"auths": {}, "currentContext": "current"}))
    return config


HOST = "tcp://10.0.0.1:2375"

# flag, DOCKER_HOST, DOCKER_CONTEXT, currentContext in config.json → host, the reason given
TABLE = [
    ("flagged", HOST, "envctx", True, "unix:///run/flagged.sock", "the --context flag"),
    ("flagged", None, None, False, "unix:///run/flagged.sock", "the --context flag"),
    (None, HOST, "envctx", True, HOST, "DOCKER_HOST"),
    (None, HOST, None, False, HOST, "DOCKER_HOST"),
    (None, None, "envctx", True, "unix:///run/envctx.sock", "DOCKER_CONTEXT"),
    (None, "", "envctx", True, "unix:///run/envctx.sock", "DOCKER_CONTEXT"),  # empty means unset
    (None, None, None, True, "unix:///run/current.sock", "currentContext in"),
    (None, None, None, False, DEFAULT_HOST, "the built-in default"),
    ("default", HOST, "envctx", True, HOST, "the --context flag, then DOCKER_HOST"),
    ("default", None, "envctx", True, DEFAULT_HOST, "the --context flag"),
    (None, None, "default", True, DEFAULT_HOST, "DOCKER_CONTEXT"),
]


@pytest.mark.parametrize(("flag", "docker_host", "docker_context", "current", "host", "reason"), TABLE)
def test_precedence(
    config: Path,
    flag: str | None,
    docker_host: str | None,
    docker_context: str | None,
    current: bool,
    host: str,
    reason: str,
) -> None:
    if not current:
        (config / "config.json").write_text("{}")
    env = {"DOCKER_CONFIG": str(config)}
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    if docker_context is not None:
        env["DOCKER_CONTEXT"] = docker_context
    endpoint = resolve(flag, env)
    assert (endpoint.host, endpoint.tls) == (host, None)
    assert endpoint.reason.startswith(reason)
    assert endpoint.reason in endpoint.describe()


def test_config_folder_is_home_dot_docker_without_docker_config(tmp_path: Path) -> None:
    make_context(tmp_path / ".docker", "home", "unix:///run/home.sock")
    (tmp_path / ".docker" / "config.json").write_text('{"currentContext": "home"}')
    assert resolve(None, {"HOME": str(tmp_path)}).host == "unix:///run/home.sock"
    assert resolve(None, {"HOME": str(tmp_path / "elsewhere")}).host == DEFAULT_HOST


def test_an_unknown_context_is_a_usage_error_naming_who_chose_it(config: Path) -> None:
    with pytest.raises(UsageError, match='context "nope" does not exist \\(chosen by DOCKER_CONTEXT'):
        resolve(None, {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "nope"})
    with pytest.raises(UsageError, match="the --context flag"):
        resolve("nope", {"DOCKER_CONFIG": str(config)})


def test_a_broken_config_json_is_named(config: Path) -> None:
    (config / "config.json").write_text("{not json")
    with pytest.raises(UsageError, match="is not valid JSON"):
        resolve(None, {"DOCKER_CONFIG": str(config)})


def test_a_context_without_a_docker_endpoint(config: Path) -> None:
    make_context(config, "k8s", "")
    with pytest.raises(EngineUnavailable, match="has no docker endpoint"):
        resolve("k8s", {"DOCKER_CONFIG": str(config)})


def test_tls_from_the_environment(config: Path, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_text("ca")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_HOST": "tcp://gpu-box", "DOCKER_CERT_PATH": str(certs)}
    assert resolve(None, env).tls is None  # no DOCKER_TLS*: plain tcp
    endpoint = resolve(None, {**env, "DOCKER_TLS_VERIFY": "1"})
    assert endpoint.host == "tcp://gpu-box:2375"  # docker's default port, TLS or not
    assert endpoint.tls is not None and endpoint.tls.verify and endpoint.tls.ca == str(certs / "ca.pem")
    assert endpoint.tls.cert is None and endpoint.tls.key is None  # absent files are left out
    assert "(TLS, verified)" in endpoint.describe()
    (certs / "cert.pem").write_text("c")
    (certs / "key.pem").write_text("k")
    endpoint = resolve(None, {**env, "DOCKER_TLS": "1"})
    assert endpoint.tls is not None and not endpoint.tls.verify and endpoint.tls.key == str(certs / "key.pem")
    # DOCKER_CERT_PATH defaults to the config folder, which has no ca.pem: refused, as docker does
    with pytest.raises(UsageError, match=r"DOCKER_TLS_VERIFY is set .* no .*ca\.pem"):
        resolve(None, {"DOCKER_CONFIG": str(config), "DOCKER_HOST": "tcp://gpu-box", "DOCKER_TLS_VERIFY": "1"})


def test_tls_from_a_context_and_not_from_the_environment(config: Path) -> None:
    make_context(config, "secure", "tcp://gpu-box:2376", tls=True)
    make_context(config, "insecure", "tcp://gpu-box:2376", skip_verify=True)
    make_context(config, "plain", "tcp://gpu-box:2375")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/nonexistent"}
    secure = resolve("secure", env)
    assert secure.tls is not None and secure.tls.verify and secure.tls.cert and secure.tls.cert.endswith("cert.pem")
    insecure = resolve("insecure", env)
    assert insecure.tls is not None and not insecure.tls.verify and insecure.tls.ca is None
    assert resolve("plain", env).tls is None


def test_an_explicit_host_and_a_context_conflict(config: Path) -> None:
    with pytest.raises(UsageError, match="conflicting options"):
        resolve("flagged", {"DOCKER_CONFIG": str(config)}, host="unix:///x.sock")
    assert resolve(None, {"DOCKER_CONFIG": str(config)}, host="unix:///x.sock").host == "unix:///x.sock"


@pytest.mark.parametrize(
    ("host", "command"),
    [
        ("ssh://gpu-box", ["--", "gpu-box"]),
        ("ssh://me@gpu-box", ["-l", "me", "--", "gpu-box"]),
        ("ssh://me@gpu-box:2222", ["-l", "me", "-p", "2222", "--", "gpu-box"]),
    ],
)
def test_ssh_runs_the_users_ssh_with_docker_system_dial_stdio(host: str, command: list[str]) -> None:
    assert ssh_command(host) == ["ssh", "-o", "ConnectTimeout=30", "-T", *command, "docker", "system", "dial-stdio"]


def test_an_ssh_address_with_a_path_is_refused() -> None:
    with pytest.raises(EngineUnavailable, match="takes no path"):
        ssh_command("ssh://gpu-box/var/run/docker.sock")


def test_bind_mounts_on_an_engine_on_another_host_are_named_before_creating() -> None:
    import socket
    from types import SimpleNamespace

    from ngcws.preflight import remote_mount_notes

    def facts(local: bool, name: str) -> object:
        engine = SimpleNamespace(transport=SimpleNamespace(host="ssh://me@gpu-box"))
        return SimpleNamespace(local=local, info=lambda: {"Name": name}, engine=engine)

    want = SimpleNamespace(
        workspace="train",
        essence={"mounts": [{"type": "bind", "source": "/home/me/proj"}, {"type": "volume", "source": "cache"}]},
    )
    [note] = remote_mount_notes(facts(False, "gpu-box"), [want])  # type: ignore[arg-type]
    assert note.startswith("train: the engine runs on another host, gpu-box (ssh://me@gpu-box)")
    assert "/home/me/proj is that host's folder" in note
    assert remote_mount_notes(facts(True, "gpu-box"), [want]) == []  # type: ignore[arg-type]
    assert remote_mount_notes(facts(False, socket.gethostname()), [want]) == []  # type: ignore[arg-type]
