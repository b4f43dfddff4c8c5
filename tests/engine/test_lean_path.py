"""`exec` and `ps` through the lean front door (fastpath.py), against the real engine: the same
output as the typer commands, and none of the heavy imports that the front door exists to avoid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import NGCWS, Workspace

#: The typer app itself, without the front door: the reference the lean path must match.
TYPER = [sys.executable, "-c", "import sys; from ngcws.cli import app; app(sys.argv[1:], prog_name='ngcws')"]
HEAVY = ("typer", "pydantic", "rich", "argparse", "yaml", "docker")


def two_workspaces(project: Workspace, testbed: dict[str, str]) -> None:
    """One running workspace and one never brought up (its row says missing)."""
    image = testbed["NGCWS_TB_TINY"]
    project.write(
        "workspaces:\n"
        f"  a:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n    init: true\n"
        f"  b:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n"
    )
    project.ok("up", "a")


def run(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def cells(table: str) -> list[list[str]]:
    """The table's cells, the STATUS column ("Up 2 seconds") blanked: it changes between two runs."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in table.splitlines()]
    status = rows[0].index("STATUS")
    return [[c if i != status or n == 0 else "" for i, c in enumerate(row)] for n, row in enumerate(rows)]


def test_ps_on_the_lean_path_prints_what_the_typer_command_prints(project: Workspace, testbed: dict[str, str]) -> None:
    two_workspaces(project, testbed)
    lean, typer = run([*NGCWS, "ps"], project.dir), run([*TYPER, "ps"], project.dir)
    assert cells(lean) == cells(typer)
    body = cells(lean)[1:]
    assert [(r[0], r[1], r[3]) for r in body] == [
        ("a", f"{project.name}-a", "running"),
        ("b", f"{project.name}-b", "missing"),
    ]
    for flags in (["ps", "--format", "json"], ["ps", "--format=json"], ["-p", project.name, "ps", "--format", "json"]):
        lean_rows, typer_rows = (
            json.loads(run([*NGCWS, *flags], project.dir)),
            json.loads(run([*TYPER, *flags], project.dir)),
        )
        for row in lean_rows + typer_rows:
            row.pop("status")
        assert lean_rows == typer_rows, flags
        assert [r["state"] for r in lean_rows] == ["running", "missing"]


def test_ps_refuses_a_format_it_does_not_know_as_typer_does(project: Workspace, testbed: dict[str, str]) -> None:
    two_workspaces(project, testbed)
    result = project.ngcws("ps", "--format", "yaml")
    assert result.returncode == 2
    assert b"--format yaml: expected table or json" in result.stderr


def imported(argv: list[str], cwd: Path) -> set[str]:
    """The top-level packages a command imported (python -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ngcws", *argv], cwd=cwd, capture_output=True, timeout=120
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stderr.decode().splitlines()
    return {line.split("|")[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}


def test_exec_and_ps_never_import_typer_pydantic_rich_or_argparse(project: Workspace, testbed: dict[str, str]) -> None:
    two_workspaces(project, testbed)
    for argv in (["exec", "-T", "true"], ["ps"], ["ps", "--format", "json"]):
        found = imported(argv, project.dir)
        assert "ngcws" in found, argv  # the listing works: it names what was imported
        assert not found & set(HEAVY), (argv, found & set(HEAVY))


def test_ps_of_a_project_with_no_containers_prints_the_headers_and_says_why(
    project: Workspace, testbed: dict[str, str], tmp_path: Path
) -> None:
    """-p NAME without a file, nothing labelled NAME: the headers alone (as docker ps), never a crash."""
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    for front in (NGCWS, TYPER):
        result = subprocess.run([*front, "-p", f"{project.name}-none", "ps"], cwd=empty, capture_output=True)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().split() == ["WORKSPACE", "CONTAINER", "ID", "STATE", "IMAGE", "GPUS", "STATUS",
                                                  "DRIFT", "HEALTH"]  # fmt: skip
        assert f"no containers of project '{project.name}-none'" in result.stderr.decode()
        listed = subprocess.run([*front, "-p", f"{project.name}-none", "ps", "--format", "json"], cwd=empty,
                                capture_output=True)  # fmt: skip
        assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr.decode()
