"""Which of a plan's actions may run at the same time. Pure.

A *chain* is what must happen in order: one workspace's actions for ``up`` (remove a stale
container, create, start; or the steps of a recreate), one container's removal for ``down``.
Chains are independent of each other, except where one container joins another's network
namespace (``network_mode: container:NAME``, NAME being another chain's container): for ``up``
the joined one goes first, for ``down`` the joining one does (as Compose orders services).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ngcws.observed import ObservedContainer
from ngcws.plan import Action


@dataclass(frozen=True)
class Chain:
    key: str  #: the workspace (``up``) or the container (``down``) it is about
    actions: tuple[Action, ...]
    after: frozenset[str] = frozenset()  #: keys of chains that must have succeeded first


def up_chains(actions: Iterable[Action]) -> list[Chain]:
    """One chain per workspace, in the order the plan first names each."""
    groups: dict[str, list[Action]] = {}
    for action in actions:
        groups.setdefault(action.workspace, []).append(action)
    owner = {name: key for key, group in groups.items() for action in group for name in _names(action)}
    chains = []
    for key, group in groups.items():
        joined = {owner.get(target, key) for action in group if (target := _joins(_essence(action)))}
        chains.append(Chain(key, tuple(group), frozenset(joined - {key})))
    return chains


def down_chains(actions: Iterable[Action]) -> list[Chain]:
    """One chain per container; a container that others join is removed after them."""
    chains = [(action.container.name if action.container else action.workspace, action) for action in actions]
    joining: dict[str, set[str]] = {}
    for key, action in chains:
        target = _joins(_essence(action))
        if target:
            joining.setdefault(target, set()).add(key)
    return [Chain(key, (action,), frozenset(joining.get(key, set()) - {key})) for key, action in chains]


def lifecycle_chains(containers: Iterable[ObservedContainer], joined_first: bool) -> list[tuple[str, frozenset[str]]]:
    """One chain per workspace's container, for ``start``/``restart`` (``joined_first``: a container
    whose network namespace another joins goes first) or ``stop`` (the joining one goes first)."""
    containers = list(containers)
    workspace_of = {c.name: c.workspace for c in containers}
    after: dict[str, set[str]] = {c.workspace: set() for c in containers}
    for c in containers:
        target = workspace_of.get(_joins(c.essence or {}), c.workspace)
        if target != c.workspace:
            (after[c.workspace] if joined_first else after[target]).add(target if joined_first else c.workspace)
    return [(c.workspace, frozenset(after[c.workspace])) for c in containers]


def _names(action: Action) -> list[str]:
    names = [action.desired.name if action.desired else "", action.container.name if action.container else ""]
    return [name for name in names if name]


def _essence(action: Action) -> dict[str, Any]:
    if action.desired is not None:
        return action.desired.essence
    return (action.container.essence if action.container else None) or {}


def _joins(essence: dict[str, Any]) -> str:
    """The container whose network namespace this one joins, if any."""
    mode = essence.get("network_mode")
    return mode[len("container:") :] if isinstance(mode, str) and mode.startswith("container:") else ""
