"""Observed: one snapshot of what the engine has for a project, parsed tolerantly. No I/O here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ngcws import labels as L


@dataclass(frozen=True)
class ObservedContainer:
    id: str
    name: str
    state: str  # created | running | paused | restarting | exited | removing | dead
    image_id: str
    labels: dict[str, str]
    status: str = ""
    created: int = 0
    network_mode: str = ""  # as the engine keeps it: ``container:<id>`` for another's namespace

    @property
    def workspace(self) -> str:
        return self.labels.get(L.WORKSPACE, "")

    @property
    def oneoff(self) -> bool:
        return self.labels.get(L.ONEOFF) == "true"

    @property
    def health(self) -> str:
        """healthy | unhealthy | starting, from the engine's status line; empty without a healthcheck."""
        for word, health in (
            ("(healthy)", "healthy"),
            ("(unhealthy)", "unhealthy"),
            ("(health: starting)", "starting"),
        ):
            if word in self.status:
                return health
        return ""

    @property
    def spec_hash(self) -> str:
        return self.labels.get(L.SPEC_HASH, "")

    @property
    def essence(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.labels.get(L.SPEC, ""))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @classmethod
    def from_list_entry(cls, entry: dict[str, Any]) -> ObservedContainer:
        """Parse one item of ``GET /containers/json``."""
        names = entry.get("Names") or [""]
        return cls(
            id=str(entry.get("Id", "")),
            name=str(names[0]).lstrip("/"),
            state=str(entry.get("State", "")),
            image_id=str(entry.get("ImageID", "")),
            labels=dict(entry.get("Labels") or {}),
            status=str(entry.get("Status", "")),
            created=int(entry.get("Created") or 0),
            network_mode=str((entry.get("HostConfig") or {}).get("NetworkMode") or ""),
        )


@dataclass(frozen=True)
class Observed:
    """The project's containers (every state, one-offs included) and the local image ids."""

    containers: tuple[ObservedContainer, ...] = ()
    images: dict[str, str | None] = field(default_factory=dict)  # reference → image id, None if absent
    #: Folders that containers of this project name were made in, which no longer hold their
    #: ngcws.yaml: the project was moved or renamed (or deleted) since.
    moved_from: frozenset[str] = frozenset()
    default_runtime: str | None = None  # the engine's, when a desired or recorded essence names a runtime
