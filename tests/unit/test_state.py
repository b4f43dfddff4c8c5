"""The desired-state cache: a hit skips validation, and any change of an input is a miss."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ngcws.errors import ConfigError, UsageError
from ngcws.state import load_state

BASE = "name: lab\nworkspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:${TAG:-23.08-py3}\n"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAG", raising=False)
    return tmp_path


def image(folder: Path) -> str:
    return load_state().containers["train"].image


def test_state_matches_a_fresh_load_and_is_cached(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE + "    shm_size: 1g\n")
    first = load_state()
    assert first.project == "lab" and first.workspaces == ("train",)
    assert first.containers["train"].essence["shm_size"] == 2**30
    caches = list(Path(os.environ["XDG_CACHE_HOME"]).glob("ngcws/state/*.json"))
    assert len(caches) == 1
    assert load_state() == first


def test_a_cache_hit_does_not_import_pydantic(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE)
    load_state()
    probe = "import sys; from ngcws.state import load_state; load_state(); print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=folder, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_input_invalidates(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "ngcws.yaml").write_text(BASE + "    env_file: vars.env\n    mounts: ['./data:/data']\n")
    (folder / "vars.env").write_text("A=1\n")
    (folder / "data").mkdir()
    assert image(folder) == "nvcr.io/nvidia/pytorch:23.08-py3"
    monkeypatch.setenv("TAG", "24.01-py3")  # a variable the file uses
    assert image(folder) == "nvcr.io/nvidia/pytorch:24.01-py3"
    monkeypatch.delenv("TAG")
    (folder / ".env").write_text("TAG=22.12-py3\n")  # .env
    assert image(folder) == "nvcr.io/nvidia/pytorch:22.12-py3"
    (folder / "vars.env").write_text("A=2\n")  # an env_file
    assert load_state().containers["train"].essence["env"] == {"A": "2"}
    (folder / "data").rmdir()  # a bind source that vanished: the loader's error again
    with pytest.raises(ConfigError, match="does not exist"):
        load_state()
    (folder / "data").mkdir()
    (folder / "ngcws.yaml").write_text(BASE.replace("train", "serve"))  # the file
    assert load_state().workspaces == ("serve",)
    assert load_state(project_override="other").project == "other"  # -p
    with pytest.raises(UsageError, match="no workspace 'train'"):
        load_state().select(["train"])


def test_a_corrupt_cache_is_ignored(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE)
    load_state()
    for cache in Path(os.environ["XDG_CACHE_HOME"]).glob("ngcws/state/*.json"):
        data = json.loads(cache.read_text())
        data["state"]["containers"]["train"] = {"broken": True}
        cache.write_text(json.dumps(data))
    assert image(folder) == "nvcr.io/nvidia/pytorch:23.08-py3"
