"""Two folders whose paths once shared a cache file: each acts only on its own containers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace, remove_project


@pytest.fixture
def twins(testbed: dict[str, str], tmp_path: Path) -> Iterator[tuple[Workspace, Workspace]]:
    name = f"t{uuid.uuid4().hex[:10]}"
    first, second = tmp_path / "x" / "a%b", tmp_path / "x" / "a" / "b"  # both were cached as x%a%b.json
    body = f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n"
    pair = []
    for folder in (first, second):
        folder.mkdir(parents=True)
        project = Workspace(folder, name)
        project.write(body)
        pair.append(project)
    yield pair[0], pair[1]
    remove_project(name)


def test_up_exec_down_in_the_second_folder_never_touch_the_first(twins: tuple[Workspace, Workspace]) -> None:
    first, second = twins
    env = {"XDG_CACHE_HOME": str(first.dir.parent.parent / "cache")}  # one cache for both, as for one user
    first.ok("up", env=env)
    (mine,) = first.containers()
    up = second.ngcws("up", env=env)
    assert up.returncode == 1 and str(first.dir) in up.stderr.decode(), up.stderr.decode()
    assert second.ngcws("exec", "true", env=env).returncode != 0
    down = second.ngcws("down", env=env)
    assert down.returncode == 0 and b"nothing to remove" in down.stderr
    (still,) = first.containers()
    assert still["Id"] == mine["Id"] and still["State"] == "running"
    assert still["Labels"]["ngcws.project-dir"] == str(first.dir)
