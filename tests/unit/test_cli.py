"""The command line without an engine: config, schema, init, help, the error boundary."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from ngcws import __version__
from ngcws.engine.auth import pull_auth
from ngcws.imageref import ImageRef, image_ref
from ngcws.schema import json_schema
from ngcws.yamlsource import parse

NGCWS = [sys.executable, "-m", "ngcws"]


def auth_header(image: ImageRef, environ: dict[str, str]) -> str | None:
    return pull_auth(image, environ)[0]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NGCWS, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_help_lists_every_command_and_version(tmp_path: Path) -> None:
    out = run("--help", cwd=tmp_path).stdout
    for command in (
        "config",
        "schema",
        "init",
        "up",
        "plan",
        "down",
        "ps",
        "pull",
        "stop",
        "start",
        "restart",
        "exec",
        "shell",
        "run",
        "logs",
        "doctor",
        "submit",
        "jobs",
        "export",
    ):
        assert f"\n  {command} " in out, command
    assert run("--version", cwd=tmp_path).stdout.strip() == f"ngcws {__version__}"


def test_init_writes_a_valid_file_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = run("init", "--image", "nvcr.io#nvidia/pytorch:24.01-py3", cwd=tmp_path)
    assert result.returncode == 0
    text = (tmp_path / "ngcws.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=") and "nvcr.io/nvidia/pytorch:24.01-py3" in text
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert "http" not in text  # no link to a place that may not exist
    modeline = text.splitlines()[0].split("$schema=", 1)[1]
    schema = json.loads((tmp_path / modeline).read_text())  # the editor finds the schema it names
    assert schema == json_schema()
    jsonschema.validate(parse(text, "ngcws.yaml").data, schema)
    assert run("config", cwd=tmp_path).returncode == 0
    again = run("init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run("init", "--force", cwd=tmp_path).returncode == 0
    assert run("init", "--force", "--image", "Bad Image", cwd=tmp_path).returncode == 2


def test_config_prints_the_resolved_file(tmp_path: Path) -> None:
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:${TAG}\n    shm_size: 16g\n    mounts: ['.:/workspace']\n"
    )
    result = run("-p", "lab", "config", cwd=tmp_path, env={"TAG": "23.08-py3"})
    data = yaml.safe_load(result.stdout)
    ws = data["workspaces"]["train"]
    assert data["name"] == "lab" and ws["image"] == "nvcr.io/nvidia/pytorch:23.08-py3"
    assert ws["shm_size"] == 16 * 2**30 and ws["mounts"][0]["source"] == str(tmp_path) and ws["gpus"] == "all"
    assert json.loads(run("config", "--format", "json", cwd=tmp_path, env={"TAG": "x"}).stdout)["workspaces"]


def test_config_and_plan_never_print_a_secret_used_outside_env(tmp_path: Path) -> None:
    secret = "hf_planted_0451"
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"
        "    command: [python, a.py, --token, '${HF_TOKEN}']\n    labels: {auth: 'Bearer ${HF_TOKEN}'}\n"
    )
    env = {"HF_TOKEN": secret}
    for args in (["config"], ["config", "--sources"], ["config", "--format", "json"]):
        result = run(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0 and secret not in result.stdout + result.stderr, (args, result.stdout)
        assert "<redacted>" in result.stdout, args
    shown = run("config", "--show-secrets", cwd=tmp_path, env=env).stdout
    assert f"Bearer {secret}" in shown


def test_exec_refuses_an_option_it_does_not_know(tmp_path: Path) -> None:
    """A typo of an option (`--wrokdir`) is a usage error (exit 2), never run as the command."""
    for args in (["exec", "--wrokdir", "/w", "pwd"], ["exec", "-W", "a", "--bogus"], ["exec", "--", "-x"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2 and "exec has no option" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_config_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "ngcws.yaml").write_text(
        "workspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n    gpus: al\n"
    )
    for command in ("config", "up", "exec", "plan"):
        args = [command, "true"] if command == "exec" else [command]
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert "ngcws.yaml:4:11: workspaces.train.gpus:" in result.stderr and "Traceback" not in result.stderr


def test_no_file_and_no_engine_are_clear(tmp_path: Path) -> None:
    missing = run("up", cwd=tmp_path)
    assert missing.returncode == 2 and "ngcws init" in missing.stderr
    (tmp_path / "ngcws.yaml").write_text("workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n")
    for args in (["up"], ["ps"], ["exec", "true"], ["down"]):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 1 and "the Docker engine is not running" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert run("up", "nope", cwd=tmp_path).returncode == 2
    assert run("up", "--force-recreate", "--no-recreate", cwd=tmp_path).returncode == 2


def test_schema_command_prints_json(tmp_path: Path) -> None:
    schema = json.loads(run("schema", cwd=tmp_path).stdout)
    assert schema["title"] == "ngcws.yaml" and "workspaces" in schema["required"]


def _decoded(header: str | None) -> dict[str, str]:
    assert header is not None
    return dict(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))))


def test_registry_auth_header_from_ngc_api_key_and_docker_config(tmp_path: Path) -> None:
    """Only the DOCKER_CONFIG given counts: never the runner's own ~/.docker or environment."""
    ngc, local = image_ref("nvcr.io/nvidia/pytorch:23.08-py3"), image_ref("localhost:5000/x")
    (tmp_path / "config.json").write_text("{}")
    env = {"DOCKER_CONFIG": str(tmp_path), "HOME": str(tmp_path)}
    decoded = _decoded(auth_header(ngc, {**env, "NGC_API_KEY": "secret"}))
    assert decoded["username"] == "$oauthtoken" and decoded["password"] == "secret"
    assert auth_header(local, env) is None
    token = base64.b64encode(b"ada:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"localhost:5000": {"auth": token}}}))
    assert (_decoded(auth_header(local, env))["username"], _decoded(auth_header(local, env))["password"]) == (
        "ada",
        "pw",
    )
    assert auth_header(ngc, env) is None  # a login for one registry is not sent to another
    assert (
        pull_auth(local, env)[1] == "docker login" and pull_auth(ngc, {**env, "NGC_API_KEY": "k"})[1] == "NGC_API_KEY"
    )
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".docker" / "config.json").write_text(json.dumps({"auths": {"localhost:5000": {"auth": token}}}))
    assert _decoded(auth_header(local, {"HOME": str(home)}))["username"] == "ada"  # ~/.docker of that HOME
    assert auth_header(local, {"HOME": str(tmp_path / "nobody")}) is None  # no config: anonymous


def test_a_failing_credential_helper_is_a_registry_error(tmp_path: Path) -> None:
    from ngcws.errors import RegistryAuthError

    (tmp_path / "config.json").write_text(json.dumps({"credsStore": "ngcws-test-no-such-helper"}))
    with pytest.raises(RegistryAuthError, match="cannot read your docker login for localhost:5000") as caught:
        auth_header(image_ref("localhost:5000/x"), {"DOCKER_CONFIG": str(tmp_path)})
    assert caught.value.hint and "docker login localhost:5000" in caught.value.hint


def test_doctor_without_an_engine_fails_with_the_fix(tmp_path: Path) -> None:
    """Unit tests point DOCKER_HOST at a socket that does not exist: doctor says so, exit 1."""
    result = run("doctor", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        "FAIL  engine" in result.stdout
        and "the Docker engine is not running" in result.stdout
        and "fix: Start it" in result.stdout
    )
    data = json.loads(run("doctor", "--format", "json", cwd=tmp_path).stdout)
    assert data["ok"] is False and data["checks"][1]["name"] == "engine" and data["host"]["kernel"]
    assert data["checks"][0]["name"] == "endpoint" and "from DOCKER_HOST" in data["checks"][0]["summary"]


def test_doctor_format_is_checked(tmp_path: Path) -> None:
    result = run("doctor", "--format", "yaml", cwd=tmp_path)
    assert result.returncode == 2 and "expected text or json" in result.stderr


def test_run_without_any_command_is_a_usage_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "ngcws.yaml").write_text("workspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n")
    result = subprocess.run([*NGCWS, "run"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "ngcws run needs a command" in result.stderr, result.stderr
    assert "ngcws run -W train python train.py" in result.stderr and "Traceback" not in result.stderr
    with_command = (
        "workspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n    command: [python, serve.py]\n"
    )
    (tmp_path / "ngcws.yaml").write_text(with_command)
    result = subprocess.run([*NGCWS, "run"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert "needs a command" not in result.stderr and "Docker engine" in result.stderr  # it went on, to the engine


def test_watch_accepts_exactly_what_up_watch_accepts(tmp_path: Path) -> None:
    import typer.main

    from ngcws.cli import NOT_WITH_WATCH, app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]

    def options(name: str) -> dict[str, str | None]:
        params = [p for p in commands[name].params if p.param_type_name == "option"]
        return {opt: p.help for p in params for opt in p.opts + p.secondary_opts if opt not in ("--help", "-h")}

    up, watch = options("up"), options("watch")
    assert set(NOT_WITH_WATCH) <= set(up)
    assert watch == {opt: text for opt, text in up.items() if opt not in NOT_WITH_WATCH}  # same flags, same help
    assert not [p for p in commands["watch"].params if p.param_type_name == "argument"]  # every workspace
    (tmp_path / "ngcws.yaml").write_text("workspaces:\n  train:\n    image: busybox\n")
    for refused in NOT_WITH_WATCH[:-1]:
        args = [refused, "never"] if refused == "--pull" else [refused]
        result = run("up", "--watch", *args, cwd=tmp_path)
        assert result.returncode == 2 and f"drop {refused}" in result.stderr, result.stderr
        assert run("watch", *args, cwd=tmp_path).returncode == 2  # not an option of watch
    assert "drop WORKSPACES" in run("up", "--watch", "train", cwd=tmp_path).stderr
