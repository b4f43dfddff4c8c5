"""Per-project locks: one so two ngcws processes never race on one project's containers, and one
held by the project's watcher (``ngcws up --watch``) for as long as it runs.

Each is an ``flock``: the kernel releases it when its holder ends, however it ends (even SIGKILL),
so a lock file left behind never blocks anyone. The holder writes who it is into the file, so a
waiting ngcws can say what it waits for, and ``ngcws ps`` which watcher runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator

from ngcws.errors import AlreadyWatching, LockError, LockTimeout

LOCK_DIR = os.path.join(tempfile.gettempdir(), "ngcws-locks")


@contextlib.contextmanager
def project_lock(project: str, directory: str, on_wait: Callable[[str], None], timeout: float = 300) -> Iterator[None]:
    """Hold the lock of (project, folder); call ``on_wait(holder)`` once if another process holds it."""
    path = lock_path(project, directory, "lock")
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait(_holder(fd))
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise LockTimeout(
                            f"another ngcws has held project {project!r} for over {timeout:.0f} s; giving up",
                            hint=f"If no other ngcws is running, remove {path}.",
                        ) from None
                    time.sleep(0.1)
        _claim(fd)
        yield
    finally:
        os.close(fd)


def lock_path(project: str, directory: str, kind: str) -> str:
    """The file of one of (project, folder)'s locks and records (``lock``, ``watch``, ``stopped``)."""
    digest = hashlib.sha256(f"{project}\0{directory}".encode()).hexdigest()[:16]
    return os.path.join(LOCK_DIR, f"{project}-{digest}.{kind}")


def _open(path: str) -> int:
    try:
        os.makedirs(LOCK_DIR, exist_ok=True)
        _share(LOCK_DIR, 0o1777)  # every user's ngcws locks here, like /tmp
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise LockError(
            f"cannot open the project lock {path}: {exc.strerror}",
            hint=f"Make {LOCK_DIR} writable for everyone (chmod 1777), as /tmp is.",
        ) from None
    _share(path, 0o666)
    return fd


@contextlib.contextmanager
def watcher_slot(project: str, directory: str) -> Iterator[None]:
    """Be (project, folder)'s one watcher, or raise :class:`AlreadyWatching` naming the running one."""
    path = lock_path(project, directory, "watch")
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            found = _watcher_info(path)
            pid = f"{found['pid']:.0f}" if found else "?"
            raise AlreadyWatching(
                f"another ngcws is already watching project {project!r} in {directory} (pid {pid})",
                hint="Stop it first (Ctrl-C in its terminal, or `kill PID`); `ngcws ps` shows it.",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)


def running_watcher(project: str, directory: str) -> dict[str, float] | None:
    """``{"pid": ..., "since": epoch}`` of the project's running watcher, or None."""
    path = lock_path(project, directory, "watch")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _watcher_info(path)
    finally:
        os.close(fd)
    return None


def _watcher_info(path: str) -> dict[str, float] | None:
    try:
        with open(path) as file:
            data = json.load(file)
        return {"pid": int(data["pid"]), "since": float(data["since"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _share(path: str, mode: int) -> None:
    """Widen the mode the umask narrowed, when the file is ours (others cannot, and need not)."""
    try:
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, mode)
    except OSError:
        pass


def _claim(fd: int) -> None:
    """Say who holds the lock: ``pid command``."""
    import sys

    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} ngcws {' '.join(sys.argv[1:])}"[:200].encode(), 0)


def _holder(fd: int) -> str:
    """Who holds the lock, as the holder wrote it: ``ngcws up (pid 1234)``."""
    try:
        text = os.pread(fd, 256, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    pid, _, command = text.partition(" ")
    if not pid.isdigit():
        return "another ngcws"
    return f"`{command.strip() or 'ngcws'}` (pid {pid})"
