"""What the user asked for that the engine cannot remember: "I stopped this workspace".

``ngcws stop`` records it; ``ngcws start``, ``restart`` and ``up`` clear it; the watcher
(``ngcws up --watch``) leaves such a workspace stopped instead of bringing it back. A container's
labels cannot change after creation, so the record is a small file per project and folder, keyed
like the project's lock, in the shared lock folder (any user's watcher sees any user's stop).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable

from ngcws.lock import lock_path


def stopped(project: str, directory: str) -> set[str]:
    """The workspaces ``ngcws stop`` stopped and nothing has started since."""
    try:
        with open(lock_path(project, directory, "stopped")) as file:
            data = json.load(file)
    except (OSError, ValueError):
        return set()
    return {str(name) for name in data} if isinstance(data, list) else set()


def mark_stopped(project: str, directory: str, names: Iterable[str]) -> None:
    _write(project, directory, stopped(project, directory) | set(names))


def clear_stopped(project: str, directory: str, names: Iterable[str]) -> None:
    before = stopped(project, directory)
    if before:
        _write(project, directory, before - set(names))


def _write(project: str, directory: str, names: set[str]) -> None:
    path = lock_path(project, directory, "stopped")
    tmp = f"{path}.{os.getpid()}.tmp"
    with contextlib.suppress(OSError):
        if not names:
            os.unlink(path)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w") as file:
            json.dump(sorted(names), file)
        os.chmod(tmp, 0o666)
        os.replace(tmp, path)
