"""No user value ever goes through a shell: names, env values, paths and commands stay argument lists."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ngcws.engine import Engine
from tests.conftest import Workspace, remove_project

TARGET = "/data $(y);'z'"
TRAP = "$(touch {m}) `touch {m}`; touch {m} && echo 'single' \"double\" | cat > {m} \\ *"


def literal(text: str) -> str:
    """A YAML string that ngcws reads back as exactly ``text`` ($$ is a literal $, as in Compose)."""
    return json.dumps(text.replace("$", "$$"))


@pytest.fixture
def odd(testbed: dict[str, str], tmp_path: Path) -> Iterator[Workspace]:
    """A project whose folder name is full of shell syntax."""
    name = f"t{uuid.uuid4().hex[:10]}"
    folder = tmp_path / 'it\'s a $(dir); `x` "q" & ok'
    folder.mkdir()
    yield Workspace(folder, name)
    remove_project(name)


def test_metacharacters_reach_the_engine_verbatim(odd: Workspace, testbed: dict[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = TRAP.format(m=marker)
    data = odd.dir / "data $(x);'q'"
    data.mkdir()
    (data / "f").write_text("content")
    odd.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        "    command: [sleep, infinity]\n"
        f"    env: {{TRICKY: {literal(value)}}}\n"
        f"    mounts: [{{type: bind, source: {literal(str(data))}, target: {literal(TARGET)}}}]\n"
    )
    odd.ok("up")
    [container] = odd.containers()
    inspect = Engine().inspect_container(str(container["Id"]))
    assert inspect is not None
    assert f"TRICKY={value}" in inspect["Config"]["Env"]
    [mount] = inspect["Mounts"]
    assert (mount["Source"], mount["Destination"]) == (str(data), "/data $(y);'z'")
    assert container["Labels"]["ngcws.project-dir"] == str(odd.dir)
    # exec and run pass argument lists: each argument arrives as one, unexpanded.
    assert odd.ok("exec", "printf", "%s|", value, "$HOME", "*") == f"{value}|$HOME|*|"
    assert odd.ok("exec", "sh", "-c", 'printf %s "$TRICKY"') == value
    assert odd.ok("exec", "cat", "/data $(y);'z'/f") == "content"
    assert odd.ok("run", "printf", "%s", value) == value
    assert odd.ngcws("exec", "test", "-e", str(marker)).returncode == 1
    assert not marker.exists()
    # A workspace name with shell syntax is simply not a workspace.
    result = odd.ngcws("up", "train;touch x")
    assert result.returncode == 2 and b"no workspace 'train;touch x'" in result.stderr
    odd.ok("down")
    assert odd.containers() == []
