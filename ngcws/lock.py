"""A per-project lock, so two ngcws processes never race on one project's containers."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator

from ngcws.errors import LockTimeout

LOCK_DIR = os.path.join(tempfile.gettempdir(), "ngcws-locks")


@contextlib.contextmanager
def project_lock(project: str, directory: str, on_wait: Callable[[], None], timeout: float = 300) -> Iterator[None]:
    """Hold the lock of (project, folder); call ``on_wait`` once if another process holds it."""
    os.makedirs(LOCK_DIR, mode=0o1777, exist_ok=True)
    digest = hashlib.sha256(f"{project}\0{directory}".encode()).hexdigest()[:16]
    path = os.path.join(LOCK_DIR, f"{project}-{digest}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
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
