"""A per-project lock, so two ngcws processes never race on one project's containers."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator

from ngcws.errors import LockError, LockTimeout

LOCK_DIR = os.path.join(tempfile.gettempdir(), "ngcws-locks")


@contextlib.contextmanager
def project_lock(project: str, directory: str, on_wait: Callable[[], None], timeout: float = 300) -> Iterator[None]:
    """Hold the lock of (project, folder); call ``on_wait`` once if another process holds it."""
    digest = hashlib.sha256(f"{project}\0{directory}".encode()).hexdigest()[:16]
    path = os.path.join(LOCK_DIR, f"{project}-{digest}.lock")
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
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
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
        yield
    finally:
        os.close(fd)


def _share(path: str, mode: int) -> None:
    """Widen the mode the umask narrowed, when the file is ours (others cannot, and need not)."""
    try:
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, mode)
    except OSError:
        pass
