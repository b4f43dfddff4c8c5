"""Tearing down needs only the project's identity: down, stop and ps work when ngcws.yaml's variables
or env files cannot be resolved, and `-p NAME down` works in the project folder without a file."""

from __future__ import annotations

from tests.conftest import Workspace

VARIABLE = "ngcws_teardown_hf_token"  # lower case: never set in the test's own environment


def secret_needing_project(project: Workspace, testbed: dict[str, str]) -> dict[str, str]:
    (project.dir / "vars.env").write_text("A=1\n")
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n    env_file: vars.env\n"
        f'    env:\n      LOWER: "pre-${VARIABLE}"\n  eval:\n    image: {testbed["NGCWS_TB_NGC"]}\n    gpus: none\n'
    )
    return {"XDG_CACHE_HOME": str(project.dir.parent / "cache")}


def test_down_stop_and_ps_without_the_files_variables(project: Workspace, testbed: dict[str, str]) -> None:
    env = secret_needing_project(project, testbed)
    project.ok("up", env={**env, VARIABLE: "hf_secret_value"})
    assert len(project.containers()) == 2

    refused = project.ngcws("up", env=env)
    assert refused.returncode == 2 and f"${{{VARIABLE}}} is not set" in refused.stderr.decode()

    ps = project.ngcws("ps", env=env)
    assert ps.returncode == 0, ps.stderr.decode()
    assert "not set" in ps.stderr.decode() and "labels only" in ps.stderr.decode()
    assert f"{project.name}-train" in ps.stdout.decode() and "running" in ps.stdout.decode()

    stop = project.ngcws("stop", "train", env=env)
    assert stop.returncode == 0, stop.stderr.decode()
    states = {c["Labels"]["ngcws.workspace"]: c["State"] for c in project.containers()}  # type: ignore[index]
    assert states == {"train": "exited", "eval": "running"}

    (project.dir / "vars.env").unlink()  # an env file that is gone does not stop a teardown either
    down = project.ngcws("down", env=env)
    assert down.returncode == 0, down.stderr.decode()
    assert "labels only" in down.stderr.decode() and "hf_secret_value" not in down.stderr.decode()
    assert project.containers() == []


def test_p_name_down_in_the_project_folder_without_a_file(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n")
    project.ok("up")
    (project.dir / "ngcws.yaml").unlink()

    missing = project.ngcws("down")
    assert missing.returncode == 2 and "no ngcws.yaml" in missing.stderr.decode()
    assert len(project.containers()) == 1

    ps = project.ok("-p", project.name, "ps")
    assert f"{project.name}-train" in ps
    other = project.ngcws("-p", project.name, "down", cwd=project.dir.parent)  # another folder: not ours
    assert other.returncode == 0 and len(project.containers()) == 1

    down = project.ngcws("-p", project.name, "down")
    assert down.returncode == 0, down.stderr.decode()
    assert project.containers() == []
