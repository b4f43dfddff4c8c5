"""The guard: what holds back a recreate or a removal that would destroy something.

``up``, ``down`` (and the watcher) ask :func:`holds` once, before applying a plan, about every
container the plan would recreate or remove; ``up --force-recreate`` / ``down --force`` skip it.
Each check lives in its own module and answers for one container.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ngcws.engine import Engine
from ngcws.observed import ObservedContainer


@dataclass(frozen=True)
class Hold:
    workspace: str
    reason: str  # e.g. "unsaved changes outside the mounts: /root/ckpt.pt: new file, 3 B"
    remedy: str  # e.g. "keep them with `ngcws snapshot train`; see them with `ngcws diff train`"


Check = Callable[[Engine, ObservedContainer], "Hold | None"]


def _unsaved_work(engine: Engine, container: ObservedContainer) -> Hold | None:
    from ngcws.unsaved import unsaved_work

    return unsaved_work(engine, container)


def _running_sessions(engine: Engine, container: ObservedContainer) -> Hold | None:
    from ngcws.sessions import running_sessions

    return running_sessions(engine, container)


CHECKS: tuple[Check, ...] = (_unsaved_work, _running_sessions)


def holds(engine: Engine, doomed: Iterable[ObservedContainer], limit: int = 1) -> list[Hold]:
    """Every reason not to destroy the ``doomed`` containers (none: go ahead), in their order.

    With ``limit`` > 1, that many containers are checked at the same time (the engine's changes
    API reads each container's filesystem: ~0.3 s each for an NGC image)."""

    def checked(container: ObservedContainer) -> list[Hold]:
        return [hold for check in CHECKS if (hold := check(engine, container)) is not None]

    containers = list(doomed)
    if limit <= 1 or len(containers) <= 1:
        return [hold for container in containers for hold in checked(container)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(limit, len(containers)), thread_name_prefix="ngcws-guard") as pool:
        return [hold for found in pool.map(checked, containers) for hold in found]
