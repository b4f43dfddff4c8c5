"""The desired-state cache returns exactly what a fresh load would, or misses; it holds no secret."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ngcws.errors import ConfigError, UsageError
from ngcws.locate import locate
from ngcws.state import cache_root, compute_state, current_invoker, load_state, user_key

BASE = "name: lab\nworkspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:${TAG:-23.08-py3}\n"
PLANTED = "planted-s3cr3t-value-0451"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    for name in ("TAG", "DATA_ROOT", "HF_TOKEN", "PASSTHROUGH"):
        monkeypatch.delenv(name, raising=False)
    return project


def fresh(override: str | None = None) -> dict[str, object]:
    state, _ = compute_state(locate(), override, current_invoker(), user_key())
    return state.to_json()


def cached(override: str | None = None) -> dict[str, object]:
    return load_state(project_override=override).to_json()


def caches() -> list[Path]:
    return sorted((cache_root() / "state").glob("*.json"))


def test_state_matches_a_fresh_load_and_is_cached(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE + "    shm_size: 1g\n")
    first = load_state()
    assert first.project == "lab" and first.workspaces == ("train",)
    assert first.containers["train"].essence["shm_size"] == 2**30
    assert len(caches()) == 1
    assert load_state() == first


def test_a_cache_hit_does_not_import_pydantic(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE + "    env: {HF_TOKEN: abc}\n")
    load_state()
    probe = "import sys; from ngcws.state import load_state; load_state(); print('pydantic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=folder, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _edits(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Callable[[], None]]]:
    def write(name: str, text: str) -> Callable[[], None]:
        return lambda: (folder / name).write_text(text)

    def relink(link: str, target: str) -> Callable[[], None]:
        def run() -> None:
            (folder / link).unlink()
            (folder / link).symlink_to(folder / target)

        return run

    return [
        (
            "file text",
            write(
                "ngcws.yaml",
                BASE + "    shm_size: 2g\n    env_file: vars.env\n    mounts: ['./data:/data']\n"
                "    env:\n      D: ${DATA:-none}\n      T: ${HF_TOKEN:-none}\n      P: ${PASSTHROUGH-unset}\n",
            ),
        ),
        ("a variable the file uses", lambda: monkeypatch.setenv("TAG", "24.01-py3")),
        ("the variable unset again", lambda: monkeypatch.delenv("TAG")),
        (".env", write(".env", "TAG=22.12-py3\nDATA=${DATA_ROOT:-/srv}/datasets\n")),
        ("a variable .env uses", lambda: monkeypatch.setenv("DATA_ROOT", "/mnt")),
        ("an env_file", write("env-a", "A=2\nB='x'\n")),
        ("the env_file symlink re-pointed", relink("vars.env", "env-b")),
        ("the bind source symlink re-pointed", relink("data", "target-b")),
        ("a secret variable", lambda: monkeypatch.setenv("HF_TOKEN", PLANTED)),
        ("the secret changed", lambda: monkeypatch.setenv("HF_TOKEN", PLANTED + "2")),
        ("a variable set to empty", lambda: monkeypatch.setenv("PASSTHROUGH", "")),
        ("the bind target gone", lambda: shutil.rmtree(folder / "target-b")),
    ]


def test_cached_equals_fresh_across_edits(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "ngcws.yaml").write_text(BASE)
    (folder / "env-a").write_text("A=1\n")
    (folder / "env-b").write_text("A=3\n")
    (folder / "vars.env").symlink_to(folder / "env-a")
    for target in ("target-a", "target-b"):
        (folder / target).mkdir()
    (folder / "data").symlink_to(folder / "target-a")
    assert cached() == fresh()
    for what, edit in _edits(folder, monkeypatch):
        before = cached()
        edit()
        try:
            expected = fresh()
        except ConfigError as exc:  # the loader refuses: so must the cache
            with pytest.raises(ConfigError) as info:
                cached()
            assert str(info.value) == str(exc), what
            continue
        assert cached() == expected, what
        assert cached() == expected, what  # and again, from the cache
        assert expected != before, f"the edit {what!r} changed nothing: the table tests nothing"


def test_a_moved_folder_is_a_new_project_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "ngcws.yaml").write_text(BASE + "    mounts: ['.:/w']\n")
    old = cached()
    moved = folder.parent / "moved"
    folder.rename(moved)
    monkeypatch.chdir(moved)
    assert cached() == fresh() != old
    assert load_state().identity.directory == str(moved)


def test_two_paths_never_share_a_cache_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = tmp_path / "x" / "a%b", tmp_path / "x" / "a" / "b"  # once both mapped to x%a%b.json
    for path in (first, second):
        path.mkdir(parents=True)
        (path / "ngcws.yaml").write_text(BASE)
    monkeypatch.chdir(first)
    assert load_state().identity.directory == str(first)
    monkeypatch.chdir(second)
    assert load_state().identity.directory == str(second)
    monkeypatch.chdir(first)
    assert load_state().identity.directory == str(first)
    assert len(caches()) == 2


def test_a_file_edited_during_a_load_is_never_cached_under_its_new_text(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ngcws.inputs import Inputs

    (folder / "ngcws.yaml").write_text(BASE + "    shm_size: 1g\n")
    real_read = Inputs.read

    def read_then_edit(self: Inputs, path: Path) -> str | None:
        text = real_read(self, path)
        if path.name == "ngcws.yaml":  # the user saves the file right after ngcws read it
            path.write_text(BASE + "    shm_size: 2g\n")
        return text

    monkeypatch.setattr(Inputs, "read", read_then_edit)
    assert load_state().containers["train"].essence["shm_size"] == 2**30
    monkeypatch.setattr(Inputs, "read", real_read)
    assert load_state().containers["train"].essence["shm_size"] == 2 * 2**30


def test_other_inputs_invalidate(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE)
    assert load_state(project_override="other").project == "other"  # -p
    assert load_state().project == "lab"
    (folder / "ngcws.yaml").write_text(BASE.replace("train", "serve"))
    with pytest.raises(UsageError, match="no workspace 'train'"):
        load_state().select(["train"])
    (cache_root() / "secret.key").unlink()  # a new key: digests in the cached state are stale
    assert cached() == fresh()


def test_cache_files_hold_no_secret_and_are_private(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    (folder / "secrets.env").write_text(f"FROM_FILE={PLANTED}-file\n")
    (folder / ".env").write_text(f"DB_PASSWORD={PLANTED}-dotenv\n")
    (folder / "ngcws.yaml").write_text(
        BASE + "    env_file: secrets.env\n    env:\n      HF_TOKEN: ${HF_TOKEN}\n      WANDB: ${HF_TOKEN}\n"
        f"      API_KEY: {PLANTED}-literal\n      PW: ${{DB_PASSWORD}}\n      PLAIN: visible\n"
    )
    state = load_state()
    env = dict(item.split("=", 1) for item in state.containers["train"].request["Env"])
    assert env["HF_TOKEN"] == env["WANDB"] == PLANTED and env["FROM_FILE"] == f"{PLANTED}-file"
    assert env["API_KEY"] == f"{PLANTED}-literal" and env["PW"] == f"{PLANTED}-dotenv"
    assert PLANTED not in json.dumps(state.containers["train"].essence)
    assert state.containers["train"].essence["env"]["PLAIN"] == "visible"
    assert load_state() == state  # a hit puts the values back
    for path in [*caches(), cache_root() / "secret.key"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for path in caches():
        assert PLANTED not in path.read_text()
    monkeypatch.setenv("HF_TOKEN", "rotated")  # drift on a secret is still seen
    assert load_state().containers["train"].spec_hash != state.containers["train"].spec_hash


def test_a_secret_outside_env_is_concealed_and_never_cached(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret variable in command or labels: the container gets the value, the essence (labels,
    plan) a digest of the string that holds it, and no cache file keeps the create request."""
    monkeypatch.setenv("HF_TOKEN", PLANTED)
    (folder / ".env").write_text("INDIRECT=${HF_TOKEN}\n")  # secret through a .env entry too
    (folder / "ngcws.yaml").write_text(
        BASE + "    command: [python, train.py, --token, '${HF_TOKEN}', --other, '${INDIRECT}']\n"
        "    labels: {auth: 'Bearer ${HF_TOKEN}', team: vision}\n    working_dir: /workspace/${HF_TOKEN}\n"
        "    mounts: ['.:/data/${HF_TOKEN}']\n"
    )
    state = load_state()
    train = state.containers["train"]
    assert train.request["Cmd"] == ["python", "train.py", "--token", PLANTED, "--other", PLANTED]
    assert train.request["Labels"]["auth"] == f"Bearer {PLANTED}"
    assert PLANTED not in json.dumps({k: v for k, v in train.essence.items() if k != "mounts"}) and train.concealed
    assert train.essence["command"][:3] == ["python", "train.py", "--token"]
    assert train.essence["command"][3].startswith("secret:hmac-sha256:") and train.essence["labels"]["team"] == "vision"
    assert train.essence["working_dir"].startswith("secret:hmac-sha256:") and train.exposed == ("mounts",)
    assert train.request["WorkingDir"] == f"/workspace/{PLANTED}"
    assert caches() == [] and load_state() == state
    monkeypatch.setenv("HF_TOKEN", "rotated")  # drift on the secret is still seen
    assert load_state().containers["train"].spec_hash != train.spec_hash
    monkeypatch.delenv("HF_TOKEN")
    (folder / ".env").unlink()
    (folder / "ngcws.yaml").write_text(BASE + "    command: [python, train.py]\n")
    assert not load_state().containers["train"].concealed and len(caches()) == 1  # cached again


def test_a_corrupt_cache_is_ignored(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE)
    load_state()
    for cache in caches():
        data = json.loads(cache.read_text())
        data["state"]["containers"]["train"] = {"broken": True}
        cache.write_text(json.dumps(data))
    assert cached() == fresh()


def test_the_secret_key_is_made_once(folder: Path) -> None:
    assert user_key() == user_key() and len(user_key()) == 32
    assert os.path.getsize(cache_root() / "secret.key") == 32


def test_the_input_files_are_listed_for_a_watcher(folder: Path) -> None:
    from ngcws.state import input_files

    (folder / "a.env").write_text("A=1\n")
    (folder / "ngcws.yaml").write_text(BASE + "    env_file: [a.env]\n")
    expected = [folder / "ngcws.yaml", folder / "ngcws.override.yaml", folder / ".env", folder / "a.env"]
    assert sorted(input_files()) == sorted(expected)  # the override and .env also while absent
