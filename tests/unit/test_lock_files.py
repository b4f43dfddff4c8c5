"""Where the project locks and the stop record live, and that nothing planted there is written through."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ngcws import intent, lock
from ngcws.errors import LockError

DIR = "/p"


@pytest.fixture
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "locks"
    monkeypatch.setattr(lock, "LOCK_DIR", str(folder))
    return folder


def lock_dir_of(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("TMPDIR", "NGCWS_LOCK_DIR")}
    code = "from ngcws import lock; print(lock.LOCK_DIR)"
    return subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_lock_folder_does_not_follow_tmpdir(tmp_path: Path) -> None:
    assert lock_dir_of({}) == "/tmp/ngcws-locks"
    assert lock_dir_of({"TMPDIR": str(tmp_path)}) == "/tmp/ngcws-locks"  # a Slurm job's TMPDIR
    assert lock_dir_of({"TMPDIR": str(tmp_path), "NGCWS_LOCK_DIR": "/srv/locks"}) == "/srv/locks"


def test_a_new_lock_folder_is_shared_like_tmp(locks: Path) -> None:
    old = os.umask(0o077)
    try:
        with lock.project_lock("lab", DIR, lambda holder: None):
            pass
    finally:
        os.umask(old)
    assert stat.S_IMODE(locks.stat().st_mode) == 0o1777
    assert stat.S_IMODE(Path(lock.lock_path("lab", DIR, "lock")).stat().st_mode) == 0o666


def test_a_symlink_planted_as_the_lock_file_is_never_written_through(locks: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks.mkdir(mode=0o1777)
    for kind in ("lock", "watch", "stopped"):
        os.symlink(victim, lock.lock_path("lab", DIR, kind))
    with pytest.raises(LockError, match="symlink"), lock.project_lock("lab", DIR, lambda holder: None):
        pass
    with pytest.raises(LockError, match="symlink"), lock.watcher_slot("lab", DIR):
        pass
    with pytest.raises(LockError, match="symlink"):
        intent.mark_stopped("lab", DIR, ["train"])
    assert intent.stopped("lab", DIR) == set()
    assert lock.running_watcher("lab", DIR) is None
    assert victim.read_text() == "precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) != 0o666


def test_a_hard_link_planted_as_the_lock_file_is_refused(locks: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    locks.mkdir()
    os.link(victim, lock.lock_path("lab", DIR, "stopped"))
    with pytest.raises(LockError, match="not a plain file"):
        intent.mark_stopped("lab", DIR, ["train"])
    assert victim.read_text() == "precious\n"


def test_a_symlinked_lock_folder_is_refused_and_its_target_left_alone(locks: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    os.symlink(home, locks)
    with pytest.raises(LockError, match="symlink"), lock.project_lock("lab", DIR, lambda holder: None):
        pass
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 and list(home.iterdir()) == []


def test_the_stop_record_keeps_every_stop_and_clears_only_what_was_started(locks: Path) -> None:
    intent.clear_stopped("lab", DIR, ["train"])  # nothing recorded: nothing made
    assert not locks.exists() or list(locks.iterdir()) == []
    intent.mark_stopped("lab", DIR, ["train"])
    intent.mark_stopped("lab", DIR, ["serve"])
    assert intent.stopped("lab", DIR) == {"train", "serve"}
    intent.clear_stopped("lab", DIR, ["train", "other"])
    assert intent.stopped("lab", DIR) == {"serve"}
    intent.clear_stopped("lab", DIR, ["serve"])
    assert intent.stopped("lab", DIR) == set()
