"""Containers another project name left in this project's folder: what a change of ``name:`` (or
an old ``-p NAME``) leaves behind. ngcws never touches another project's containers, so it says
they are there, once, with the command that removes them, instead of leaving them unmentioned."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ngcws import labels as L


def left_behind(containers: Iterable[Mapping[str, Any]], project: str, config_file: str) -> dict[str, list[str]]:
    """Project name → its container names, for the containers (listed by the folder's label) that
    were made from this same file under another project name. Another file in the folder (``-f``)
    is another project on purpose: not listed."""
    found: dict[str, list[str]] = {}
    for container in containers:
        labels = container.get("Labels") or {}
        other = labels.get(L.PROJECT)
        if other and other != project and labels.get(L.CONFIG_FILE) == config_file:
            names = container.get("Names") or [container.get("Id", "")[:12]]
            found.setdefault(str(other), []).append(str(names[0]).lstrip("/"))
    return {name: sorted(names) for name, names in sorted(found.items())}


def left_behind_note(project: str, names: list[str]) -> str:
    return (
        f"project {project!r} (this file under its old name?) still has {len(names)} container(s) here: "
        f"{', '.join(names)}; `ngcws -p {project} down` removes them"
    )
