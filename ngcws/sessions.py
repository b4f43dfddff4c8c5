"""Running ``exec`` sessions in a workspace container: work that a recreate would kill.

The engine lists a container's exec instances (``ExecIDs``); each one still ``Running`` is a
session (``ngcws exec``, ``ngcws shell``, ``docker exec``). How long it has run comes from the
engine's ``top`` of the container (``etimes`` of the exec's process), when ps can tell.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple

from ngcws.engine import Engine
from ngcws.errors import EngineError
from ngcws.observed import ObservedContainer

if TYPE_CHECKING:
    from ngcws.guard import Hold


class Session(NamedTuple):
    command: str
    since: float | None  # epoch seconds, None when the engine cannot say


def sessions_of(engine: Engine, container_id: str) -> list[Session]:
    """The exec sessions running in a container now."""
    info = engine.inspect_container(container_id)
    if info is None or not (info.get("State") or {}).get("Running"):
        return []
    running = []
    for exec_id in info.get("ExecIDs") or []:
        found = engine.exec_running(str(exec_id))
        if found and found.get("Running"):
            process = found.get("ProcessConfig") or {}
            argv = [str(process.get("entrypoint") or ""), *(str(a) for a in process.get("arguments") or [])]
            running.append((int(found.get("Pid") or 0), " ".join(a for a in argv if a)))
    if not running:
        return []
    started = _start_times(engine, container_id)
    return sorted((Session(command, started.get(pid)) for pid, command in running), key=lambda s: s.since or 0)


def _start_times(engine: Engine, container_id: str) -> dict[int, float]:
    try:
        top = engine.top(container_id, "-o pid,etimes")
    except EngineError:
        return {}
    if not top:
        return {}
    now = time.time()
    out = {}
    for row in top.get("Processes") or []:
        try:
            out[int(row[0])] = now - int(row[1])
        except (ValueError, IndexError, TypeError):
            continue
    return out


def describe(sessions: list[Session]) -> str:
    """``2 exec sessions running: python train.py (since 12:03:41), bash (since 12:10:02)``."""
    count = f"{len(sessions)} exec session{'s' if len(sessions) != 1 else ''} running"
    shown = []
    for session in sessions:
        since = time.strftime("%H:%M:%S", time.localtime(session.since)) if session.since else "?"
        shown.append(f"{session.command} (since {since})")
    return f"{count}: {', '.join(shown)}"


def running_sessions(engine: Engine, container: ObservedContainer) -> Hold | None:
    """The guard's check: a container with running exec sessions must not be destroyed."""
    from ngcws.guard import Hold

    if container.state not in ("running", "paused", "restarting"):
        return None
    found = sessions_of(engine, container.id)
    if not found:
        return None
    return Hold(
        container.workspace,
        describe(found),
        "let them finish (under `ngcws up --watch`, the change is applied when they end)",
    )
