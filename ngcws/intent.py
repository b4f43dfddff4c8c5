"""What the user asked for that the engine cannot remember: "I stopped this workspace".

``ngcws stop`` records it; ``ngcws start``, ``restart`` and ``up`` clear it; the watcher
(``ngcws up --watch``) leaves such a workspace stopped instead of bringing it back. A container's
labels cannot change after creation, so the record is a small file per project and folder, keyed
like the project's lock, in the shared lock folder (any user's watcher sees any user's stop).

The record is rewritten in place under its own ``flock`` (two ``ngcws stop`` never lose one
another's workspace; a reader never sees half a record), opened as safely as the locks are
(:func:`ngcws.lock.open_in_lock_dir`). A stop that cannot be recorded is refused before anything
is stopped: a watcher would otherwise take the stop for a crash and start the workspace again.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable

from ngcws.errors import LockError
from ngcws.lock import lock_path, open_in_lock_dir


def stopped(project: str, directory: str) -> set[str]:
    """The workspaces ``ngcws stop`` stopped and nothing has started since."""
    try:
        fd = open_in_lock_dir(_name(project, directory), create=False)
    except LockError:
        return set()
    if fd is None:
        return set()
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return _read(fd)
    finally:
        os.close(fd)


def mark_stopped(project: str, directory: str, names: Iterable[str]) -> None:
    """Record the stop (raises :class:`~ngcws.errors.LockError` when it cannot be recorded)."""
    _update(project, directory, lambda before: before | set(names), create=True)


def clear_stopped(project: str, directory: str, names: Iterable[str]) -> None:
    _update(project, directory, lambda before: before - set(names), create=False)


def _name(project: str, directory: str) -> str:
    return os.path.basename(lock_path(project, directory, "stopped"))


def _read(fd: int) -> set[str]:
    try:
        data = json.loads(os.pread(fd, 1 << 20, 0) or b"[]")
    except ValueError:
        return set()
    return {str(name) for name in data} if isinstance(data, list) else set()


def _update(project: str, directory: str, change: Callable[[set[str]], set[str]], create: bool) -> None:
    fd = open_in_lock_dir(_name(project, directory), create=create, write=True)
    if fd is None:
        return  # nothing recorded: nothing to clear
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        before = _read(fd)
        after = change(before)
        if after != before:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(sorted(after)).encode(), 0)
    except OSError as exc:
        raise LockError(
            f"cannot update `ngcws stop`'s record {lock_path(project, directory, 'stopped')}: {exc.strerror}"
        ) from None
    finally:
        os.close(fd)
