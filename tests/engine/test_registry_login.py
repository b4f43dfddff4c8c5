"""A stored login the registry rejects: `up` says so (not "log in first"), and doctor asks the
registry for real (the htpasswd registry of the test bed), saying "not verified" when it cannot."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

from tests.conftest import Workspace


def docker_config(tmp_path: Path, registry: str, user: str, password: str) -> dict[str, str]:
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    return {"DOCKER_CONFIG": str(folder), "NGC_API_KEY": ""}


def credentials(project: Workspace, env: dict[str, str]) -> dict[str, str]:
    result = project.ngcws("doctor", "--format", "json", env=env)
    [check] = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "credentials"]
    return dict(check)


def test_a_rejected_stored_login_is_named_by_up_and_found_by_doctor(
    project: Workspace, testbed: dict[str, str], tmp_path: Path
) -> None:
    registry = testbed["NGCWS_TB_AUTH_REGISTRY"]
    image = testbed["NGCWS_TB_TINY"].replace(testbed["NGCWS_TB_REGISTRY"], registry)
    project.write(f"workspaces:\n  t:\n    image: {image}\n    gpus: none\n    pull: always\n")
    wrong = docker_config(tmp_path, registry, testbed["NGCWS_TB_AUTH_USER"], "not-the-key")

    result = project.ngcws("up", env=wrong)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert f"the stored login for {registry} (docker login) was rejected" in err, err
    assert f"Log in again: `docker login {registry} -u USER`" in err and "Log in first" not in err, err
    assert project.containers() == []

    check = credentials(project, wrong)
    assert check["verdict"] in ("fail", "warn") and "was rejected by the registry" in check["summary"], check
    right = docker_config(tmp_path, registry, testbed["NGCWS_TB_AUTH_USER"], testbed["NGCWS_TB_AUTH_PASSWORD"])
    check = credentials(project, right)
    assert check["verdict"] == "pass" and "the registry accepted it" in check["summary"], check
    assert project.ngcws("up", env=right).returncode == 0  # now the image is local; pull: always pulls anyway
    wrong = docker_config(tmp_path, registry, testbed["NGCWS_TB_AUTH_USER"], "not-the-key")
    check = credentials(project, wrong)
    assert check["verdict"] == "fail" and "was rejected by the registry" in check["summary"], check


def test_doctor_says_not_verified_when_the_registry_does_not_answer(project: Workspace, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    registry = f"localhost:{port}"
    project.write(f"workspaces:\n  t:\n    image: {registry}/nvidia/pytorch:23.08-py3\n    gpus: none\n")
    check = credentials(project, docker_config(tmp_path, registry, "someone", "secret"))
    assert "logged in (docker login); not verified (the registry did not answer" in check["summary"], check
