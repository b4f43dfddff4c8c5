"""Reaching the engine the way `docker` does, against real endpoints (docs/engines.md).

The test bed (scripts/testbed) provides the shared engine behind a TLS endpoint (socat, client
certificates required) and behind sshd on a local port; a private dockerd stands for a rootless
engine on a socket of its own. Each test uses a docker config folder of its own (DOCKER_CONFIG),
with contexts made by `docker context create`, so the user's ~/.docker is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ngcws.engine import endpoint as E
from tests.conftest import Workspace, docker_cli_available
from tests.private_engine import PrivateEngine

pytestmark = pytest.mark.skipif(not docker_cli_available(), reason="needs the docker CLI")


def needs(testbed: dict[str, str], key: str, what: str) -> str:
    """A test bed fact; skip without it (fail under CI, where the test bed must provide it)."""
    if not testbed.get(key):
        message = f"the test bed has no {what} ({key}): run scripts/testbed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return testbed[key]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "docker-config"
    folder.mkdir()
    return folder


def docker(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    full.update({"DOCKER_CONFIG": str(config), **(env or {})})
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=full, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def workspace_yaml(testbed: dict[str, str]) -> str:
    return (
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        "    command: [sleep, infinity]\n    init: true\n"
    )


def lifecycle(project: Workspace, testbed: dict[str, str], env: dict[str, str], *flags: str) -> None:
    """up, exec (stdout, exit status, stdin to its end through a half-closed stream), ps, down."""
    project.write(workspace_yaml(testbed))
    up = project.ngcws(*flags, "up", env=env)
    assert up.returncode == 0 and "create" in up.stdout.decode() + up.stderr.decode(), up.stderr.decode()
    result = project.ngcws(*flags, "exec", "-T", "sh", "-c", "sleep 1; wc -l; exit 3", input=b"a\nb\nc\n", env=env)
    assert (result.returncode, result.stdout.decode().strip()) == (3, "3"), result.stderr.decode()
    table = json.loads(project.ok(*flags, "ps", "--format", "json", env=env))
    assert [row["state"] for row in table] == ["running"]
    project.ok(*flags, "down", env=env)
    assert project.containers() == []


def doctor_endpoint(project: Workspace, env: dict[str, str], *flags: str) -> str:
    result = project.ngcws(*flags, "doctor", "--format", "json", env=env)
    checks = json.loads(result.stdout)["checks"]
    assert checks[1]["name"] == "engine" and checks[1]["verdict"] == "pass", checks[1]
    return str(checks[0]["summary"])


# --- the docker CLI is the judge of precedence ----------------------------------------------------


def test_the_docker_cli_and_ngcws_choose_the_same_engine(config: Path) -> None:
    """Each combination of flag, DOCKER_HOST, DOCKER_CONTEXT and `docker context use`, as
    `docker context inspect` (the CLI's own resolution) reports it."""
    docker(config, "context", "create", "one", "--docker", "host=unix:///run/one.sock")
    docker(config, "context", "create", "two", "--docker", "host=tcp://10.1.2.3:2376,skip-tls-verify=true")
    host = "tcp://10.9.9.9:2375"
    rows = [
        ([], {}),
        ([], {"DOCKER_HOST": host}),
        ([], {"DOCKER_CONTEXT": "two"}),
        ([], {"DOCKER_HOST": host, "DOCKER_CONTEXT": "two"}),
        (["--context", "one"], {"DOCKER_HOST": host, "DOCKER_CONTEXT": "two"}),
        (["--context", "default"], {"DOCKER_HOST": host}),
        (["--context", "default"], {"DOCKER_CONTEXT": "two"}),
        ([], {"DOCKER_CONTEXT": "default"}),
    ]
    for current in (None, "one", "two"):
        if current:
            docker(config, "context", "use", current)
        for flags, env in rows:
            said = docker(config, *flags, "context", "inspect", "--format", "{{.Endpoints.docker.Host}}", env=env)
            chosen = E.resolve(flags[1] if flags else None, {"DOCKER_CONFIG": str(config), **env})
            assert chosen.host == said, (current, flags, env, chosen.reason)
            skip = json.loads(docker(config, *flags, "context", "inspect", env=env))[0]["Endpoints"]["docker"]
            assert (chosen.tls is not None and not chosen.tls.verify) == skip["SkipTLSVerify"], (current, flags, env)


# --- TLS ------------------------------------------------------------------------------------------


def test_tls_through_docker_tls_verify_and_docker_cert_path(
    project: Workspace, testbed: dict[str, str], config: Path
) -> None:
    host = needs(testbed, "NGCWS_TB_TLS_HOST", "TLS endpoint")
    certs = testbed["NGCWS_TB_TLS_CERTS"]
    env = {"DOCKER_CONFIG": str(config), "DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": certs}
    assert doctor_endpoint(project, env).startswith(f"{host} (TLS, verified): default context, from DOCKER_HOST")
    lifecycle(project, testbed, env)


def test_tls_with_the_wrong_ca_is_refused_clearly(project: Workspace, testbed: dict[str, str], tmp_path: Path) -> None:
    host = needs(testbed, "NGCWS_TB_TLS_HOST", "TLS endpoint")
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("cert.pem", "key.pem"):
        (wrong / name).write_bytes((Path(testbed["NGCWS_TB_TLS_CERTS"]) / name).read_bytes())
    (wrong / "ca.pem").write_bytes((wrong / "cert.pem").read_bytes())  # not the CA that signed the server
    project.write(workspace_yaml(testbed))
    env = {"DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(wrong)}
    result = project.ngcws("ps", env=env)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert "certificate that cannot be verified" in err and "hint:" in err
    no_client_cert = {**env, "DOCKER_CERT_PATH": str(tmp_path / "ca-only")}
    (tmp_path / "ca-only").mkdir()
    (tmp_path / "ca-only" / "ca.pem").write_bytes((Path(testbed["NGCWS_TB_TLS_CERTS"]) / "ca.pem").read_bytes())
    result = project.ngcws("ps", env=no_client_cert)
    assert result.returncode == 1 and "Traceback" not in result.stderr.decode(), result.stderr.decode()
    assert project.containers() == []


def test_tls_through_a_context_made_by_docker_context_create(
    project: Workspace, testbed: dict[str, str], config: Path
) -> None:
    host = needs(testbed, "NGCWS_TB_TLS_HOST", "TLS endpoint")
    certs = Path(testbed["NGCWS_TB_TLS_CERTS"])
    spec = f"host={host},ca={certs / 'ca.pem'},cert={certs / 'cert.pem'},key={certs / 'key.pem'}"
    docker(config, "context", "create", "gpu-box", "--docker", spec)
    env = {"DOCKER_CONFIG": str(config)}
    # by the flag (DOCKER_HOST pointing elsewhere loses to it, as with docker)
    flagged = {**env, "DOCKER_HOST": "unix:///nonexistent.sock"}
    summary = doctor_endpoint(project, flagged, "-c", "gpu-box")
    assert summary == f'{host} (TLS, verified): context "gpu-box", from the --context flag'
    lifecycle(project, testbed, flagged, "--context", "gpu-box")
    # by `docker context use`
    docker(config, "context", "use", "gpu-box")
    assert doctor_endpoint(project, env).startswith(f'{host} (TLS, verified): context "gpu-box", from currentContext')
    project.write(workspace_yaml(testbed))
    project.ok("up", env=env)  # the fast path reads the context too
    assert project.ok("exec", "echo", "over-tls", env=env).strip() == "over-tls"


# --- ssh ------------------------------------------------------------------------------------------


def test_ssh_through_the_users_own_ssh(project: Workspace, testbed: dict[str, str], config: Path) -> None:
    host = needs(testbed, "NGCWS_TB_SSH_HOST", "sshd")
    # The test bed's ssh wrapper carries its key and options, as a user's ~/.ssh/config would.
    path = f"{testbed['NGCWS_TB_SSH_BIN']}:{os.environ['PATH']}"
    env = {"DOCKER_CONFIG": str(config), "DOCKER_HOST": host, "PATH": path}
    assert doctor_endpoint(project, env).startswith(f"{host}: default context, from DOCKER_HOST")
    lifecycle(project, testbed, env)
    refused = project.ngcws("ps", env={**env, "DOCKER_HOST": host.replace("root@", "ngcws-nobody@")})
    err = refused.stderr.decode()
    assert refused.returncode == 1 and "Traceback" not in err
    assert "cannot reach the Docker engine over ssh" in err and "Permission denied" in err


def test_ssh_by_a_context(project: Workspace, testbed: dict[str, str], config: Path) -> None:
    host = needs(testbed, "NGCWS_TB_SSH_HOST", "sshd")
    docker(config, "context", "create", "over-ssh", "--docker", f"host={host}")
    env = {"DOCKER_CONFIG": str(config), "DOCKER_CONTEXT": "over-ssh"}
    env["PATH"] = f"{testbed['NGCWS_TB_SSH_BIN']}:{os.environ['PATH']}"
    project.write(workspace_yaml(testbed))
    project.ok("up", env=env)
    assert project.ok("exec", "echo", "over-ssh", env=env).strip() == "over-ssh"
    project.ok("down", env=env)


# --- a rootless-style engine: its own socket, chosen by a context ------------------------------


@pytest.fixture
def rootless(testbed: dict[str, str]) -> Iterator[PrivateEngine]:
    import random

    from tests.conftest import running

    engine = PrivateEngine(gpu_stub=False)
    # Its bridge gets an address outside Docker's default pools, so that it starts even where the
    # shared engine's networks have taken them all (dockerd uses a bridge's own address).
    subprocess.run(["ip", "link", "add", "name", engine.bridge, "type", "bridge"], check=True)
    address = f"10.213.{random.randint(0, 255)}.1/24"
    subprocess.run(["ip", "addr", "add", address, "dev", engine.bridge], check=True)
    subprocess.run(["ip", "link", "set", engine.bridge, "up"], check=True)
    with running(engine, testbed) as started:
        yield started


def test_an_engine_on_its_own_socket_chosen_by_a_context(
    project: Workspace, testbed: dict[str, str], config: Path, rootless: PrivateEngine
) -> None:
    docker(config, "context", "create", "rootless", "--docker", f"host={rootless.host}")
    docker(config, "context", "use", "rootless")
    env = {"DOCKER_CONFIG": str(config)}
    assert doctor_endpoint(project, env).startswith(f'{rootless.host}: context "rootless", from currentContext')
    project.write(workspace_yaml(testbed))
    project.ok("up", env=env)
    there = rootless.engine().list_containers({"ngcws.project": project.name})
    assert [c["State"] for c in there] == ["running"]
    assert project.containers() == []  # nothing on the shared engine
    assert project.ok("exec", "echo", "rootless", env=env).strip() == "rootless"
    # DOCKER_HOST wins over the current context, as with docker
    shared = {**env, "DOCKER_HOST": "unix:///var/run/docker.sock"}
    assert [row["state"] for row in json.loads(project.ok("ps", "--format", "json", env=shared))] == ["missing"]
    project.ok("down", env=env)
    assert rootless.engine().list_containers({"ngcws.project": project.name}) == []
