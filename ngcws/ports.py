"""Host port conflicts: a host port the file publishes twice, or one a running container holds. Pure.

The engine allocates a host port only when a container starts, so a conflict is otherwise found
after the old container was stopped and removed ("port is already allocated"). Preflight, ``plan``
and ``doctor`` find it first, from the file and the engine's list of running containers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ngcws import doctor as D
from ngcws import labels as L
from ngcws.spec import DesiredContainer
from ngcws.values import port_text

_ANY_IP = ("", "0.0.0.0", "::")


class Published(NamedTuple):
    host_ip: str
    host_port: int
    protocol: str

    def overlaps(self, other: Published) -> bool:
        same_ip = self.host_ip in _ANY_IP or other.host_ip in _ANY_IP or self.host_ip == other.host_ip
        return self.host_port == other.host_port and self.protocol == other.protocol and same_ip

    def __str__(self) -> str:
        return f"{self.host_port}/{self.protocol}"


def _fixed(want: DesiredContainer) -> list[tuple[Published, str]]:
    """The host ports a workspace publishes (those with a fixed host port), with their spelling."""
    return [
        (Published(p["host_ip"], int(p["host_port"]), p["protocol"]), port_text(p))
        for p in want.essence.get("ports") or []
        if p["host_port"] is not None
    ]


def _holder(entry: Mapping[str, Any]) -> str:
    labels = entry.get("Labels") or {}
    name = str((entry.get("Names") or ["?"])[0]).lstrip("/")
    if L.WORKSPACE in labels:
        return f"container {name} (workspace {labels[L.WORKSPACE]!r} of project {labels.get(L.PROJECT)!r})"
    return f"container {name}"


def _held(running: Iterable[Mapping[str, Any]]) -> list[tuple[Published, str, str]]:
    out = []
    for entry in running:
        for port in entry.get("Ports") or []:
            if port.get("PublicPort"):
                published = Published(str(port.get("IP") or ""), int(port["PublicPort"]), str(port.get("Type", "tcp")))
                out.append((published, str(entry.get("Id", "")), _holder(entry)))
    return out


def port_checks(
    making: Iterable[DesiredContainer],
    every: Iterable[DesiredContainer],
    running: Iterable[Mapping[str, Any]],
    replacing: Mapping[str, Iterable[str]],
) -> list[D.Check]:
    """A failing check for each host port of ``making`` that cannot be published.

    ``every``: all the file's workspaces (a host port published twice in the file);
    ``running``: the engine's running containers (``/containers/json`` entries);
    ``replacing``: per workspace, the ids of its containers that this change replaces or that
    are the workspace itself (they give their ports up, or already hold them for it).
    """
    everyone = list(every)
    held = _held(running)
    checks: list[D.Check] = []
    pairs: set[tuple[int, str, frozenset[str]]] = set()
    for want in making:
        mine = _fixed(want)
        reported: set[Published] = set()
        for index, (port, text) in enumerate(mine):
            twice = [
                (w.workspace, t)
                for w in everyone
                if w.workspace != want.workspace
                for p, t in _fixed(w)
                if p.overlaps(port)
            ]
            twice += [(want.workspace, t) for p, t in mine[index + 1 :] if p.overlaps(port)]
            if twice:
                pair = (port.host_port, port.protocol, frozenset([want.workspace, *(w for w, _ in twice)]))
                if pair in pairs:  # already said from the other workspace's side
                    continue
                pairs.add(pair)
                where = ", ".join(f"{w!r} ({t})" for w, t in twice)
                checks.append(
                    D.Check(
                        "port",
                        D.FAIL,
                        f"host port {port} is published twice in the file: by {want.workspace!r} ({text}) and {where}",
                        "give each a different host port, or leave the host port out (`ports: [8888]`: the engine picks"
                        " a free one)",
                        want.workspace,
                    )
                )
                continue
            own = set(replacing.get(want.workspace, ()))
            holders = sorted({h for p, cid, h in held if cid not in own and p.overlaps(port)})
            if holders and port not in reported:
                reported.add(port)
                checks.append(
                    D.Check(
                        "port",
                        D.FAIL,
                        f"host port {port} ({text}) is already published by {', '.join(holders)}, which is running",
                        "stop that container, or publish another host port",
                        want.workspace,
                    )
                )
    return checks
