"""Secrets never leave the process: planted values are searched for in labels, cache files and all output."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ngcws.engine import Engine
from tests.conftest import Workspace

PLANTED = "planted-s3cr3t-7f1c"


def secret_project(project: Workspace, testbed: dict[str, str], token: str) -> dict[str, str]:
    (project.dir / "secrets.env").write_text(f"FROM_FILE={PLANTED}-file\n")
    # Secrecy follows the value through .env variables with innocent names, at any depth.
    (project.dir / ".env").write_text(
        f'DB_PASSWORD={PLANTED}-dotenv\nINDIRECT=${{DB_PASSWORD}}\nDEEP="d-${{INDIRECT}}"\n'
    )
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n    env_file: secrets.env\n"
        "    env:\n      HF_TOKEN: ${HF_TOKEN}\n      WANDB: ${HF_TOKEN}\n      PW: ${DB_PASSWORD}\n"
        "      VIA_INDIRECT: ${INDIRECT}\n      VIA_DEEP: x${DEEP}\n"
        f"      NGC_API_KEY: {PLANTED}-literal\n      PLAIN: visible\n"
    )
    return {"HF_TOKEN": token, "XDG_CACHE_HOME": str(project.dir.parent / "cache")}


def test_planted_secrets_reach_the_container_and_nothing_else(project: Workspace, testbed: dict[str, str]) -> None:
    env = secret_project(project, testbed, f"{PLANTED}-env")
    outputs = []
    for args in (("up",), ("plan",), ("plan", "--format", "json"), ("ps",), ("ps", "--format", "json"), ("config",)):
        result = project.ngcws(*args, env=env)
        assert result.returncode == 0, result.stderr.decode()
        outputs.append(result.stdout.decode() + result.stderr.decode())
    inside = project.ok(
        "exec", "sh", "-c", "echo $HF_TOKEN $WANDB $PW $NGC_API_KEY $FROM_FILE $PLAIN $VIA_INDIRECT $VIA_DEEP", env=env
    )
    assert inside.split() == [
        f"{PLANTED}-env", f"{PLANTED}-env", f"{PLANTED}-dotenv", f"{PLANTED}-literal", f"{PLANTED}-file", "visible",
        f"{PLANTED}-dotenv", f"xd-{PLANTED}-dotenv",
    ]  # fmt: skip

    (container,) = project.containers()
    inspect = Engine().inspect_container(str(container["Id"]))
    assert inspect is not None
    labels = inspect["Config"]["Labels"]
    assert PLANTED not in json.dumps(labels) and json.loads(labels["ngcws.spec"])["env"]["PLAIN"] == "visible"
    cache = Path(env["XDG_CACHE_HOME"])
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert files and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in files)
    assert not [p for p in files if PLANTED.encode() in p.read_bytes()]
    for text in outputs:
        assert PLANTED not in text, text
    assert "<redacted>" in outputs[-1] and "visible" in outputs[-1]

    shown = project.ngcws("config", "--show-secrets", env=env)
    assert f"{PLANTED}-env" in shown.stdout.decode() and f"{PLANTED}-file" in shown.stdout.decode()


def test_drift_on_a_secret_is_seen_without_its_value(project: Workspace, testbed: dict[str, str]) -> None:
    env = secret_project(project, testbed, f"{PLANTED}-old")
    project.ok("up", env=env)
    env["HF_TOKEN"] = f"{PLANTED}-new"
    plan = project.ngcws("plan", "--check", env=env)
    text = plan.stdout.decode() + plan.stderr.decode()
    assert plan.returncode == 3, text
    assert "env.HF_TOKEN changed (secret)" in text and "env.WANDB changed (secret)" in text
    assert PLANTED not in text
    up = project.ngcws("up", env=env)
    assert up.returncode == 0 and PLANTED not in (up.stdout + up.stderr).decode()
    assert project.ok("exec", "printenv", "HF_TOKEN", env=env).strip() == f"{PLANTED}-new"
    assert "nothing to do" in project.ok("plan", env=env)
    assert os.environ.get("HF_TOKEN") != env["HF_TOKEN"]
