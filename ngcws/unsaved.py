"""Unsaved work: what a recreate or removal would throw away from a container's writable layer.

The engine's changes API lists every path added, changed or deleted outside the mounts. Most of
it is noise that always changes (caches, ``/tmp``, bytecode, shell history, the engine's own
``docker-init``): :data:`IGNORED` plus the workspace's ``ignore_changes`` patterns drop it. What is
left (files added or changed; deletions lose nothing, the image still has them) is work someone
would lose: :func:`unsaved_work` turns it into a :class:`~ngcws.guard.Hold`, unless a snapshot
(``ngcws snapshot``) already saved exactly this state.

Only :func:`measure` and :func:`unsaved_work` talk to the engine; the rest is pure.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ngcws import labels as L

if TYPE_CHECKING:
    from ngcws.engine import Engine
    from ngcws.guard import Hold
    from ngcws.observed import ObservedContainer

#: What always changes and is never work. A pattern with a ``/`` matches a path from the root
#: (``*`` spans folders); one without matches any path's name. Matching a folder covers its contents.
IGNORED: tuple[str, ...] = (
    "/tmp",
    "/var/tmp",
    "/run",
    "/var/run",
    "/var/cache",
    "/var/log",
    "/var/lib/apt/lists",
    "/root/.cache",  # pip's, torch hub's and everyone's caches
    "/home/*/.cache",
    "__pycache__",
    "*.pyc",
    ".bash_history",
    ".python_history",
    ".viminfo",
    ".lesshst",
    "/sbin/docker-init",  # the engine's, for init: true (/usr/sbin where /sbin is a link)
    "/usr/sbin/docker-init",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/etc/passwd",  # ngcws's own, for user: host
    "/etc/group",
)

KINDS = {0: "changed", 1: "new", 2: "deleted"}
MAX_STATS = 300  # paths measured one by one; beyond that a summary counts without sizes
_DIR_BIT = 1 << 31  # Go's os.ModeDir in the engine's path stat


@dataclass(frozen=True)
class Change:
    path: str
    kind: int  # 0 changed, 1 new, 2 deleted
    size: int | None = None
    mtime: str = ""
    group: str = ""  # the folder it is summarised under (a new folder, site-packages), or itself


def is_ignored(path: str, patterns: Iterable[str]) -> bool:
    """True when ``path`` or one of its folders matches a pattern."""
    candidates = []
    current = path
    while current not in ("/", ""):
        candidates.append(current)
        current = posixpath.dirname(current)
    for pattern in patterns:
        for candidate in candidates:
            subject = candidate if "/" in pattern else posixpath.basename(candidate)
            if fnmatch.fnmatchcase(subject, pattern):
                return True
    return False


def _within(path: str, folder: str) -> bool:
    return folder == "/" or path == folder or path.startswith(folder.rstrip("/") + "/")


def candidates(raw: Sequence[dict[str, Any]], patterns: Iterable[str], mount_targets: Iterable[str]) -> list[Change]:
    """The engine's change list → the paths that may be work (before measuring them).

    Folders that only contain other changes, deletions, ignored paths, mount points and their
    parents are dropped.
    """
    patterns = tuple(patterns)
    targets = tuple(mount_targets)
    paths = sorted(str(entry.get("Path", "")) for entry in raw)
    parents = {posixpath.dirname(p) for p in paths}
    new = {str(entry.get("Path", "")) for entry in raw if entry.get("Kind") == 1}
    out = []
    for entry in raw:
        path, kind = str(entry.get("Path", "")), int(entry.get("Kind", 0))
        if kind == 2 or path in parents or not path.startswith("/"):
            continue
        if any(_within(target, path) or _within(path, target) for target in targets):
            continue
        if is_ignored(path, patterns):
            continue
        out.append(Change(path, kind, group=_group(path, new)))
    return sorted(out, key=lambda c: c.path)


def _group(path: str, new: set[str]) -> str:
    """site-packages for a package's files, else the topmost new folder above ``path``, else ``path``."""
    packages = _packages_dir(path)
    if packages:
        return packages
    group = path
    folder = posixpath.dirname(path)
    while folder not in ("/", ""):
        if folder in new:
            group = folder
        folder = posixpath.dirname(folder)
    return group


def measured(changes: Sequence[Change], stats: dict[str, dict[str, Any] | None]) -> list[Change]:
    """Sizes and times from the engine's path stats; empty folders and vanished paths dropped."""
    out = []
    for change in changes:
        if change.path not in stats:
            out.append(change)
            continue
        stat = stats[change.path]
        if stat is None:
            continue
        mode = int(stat.get("mode") or 0)
        if mode & _DIR_BIT:
            continue  # an empty folder: nothing to lose but its name
        size, mtime = int(stat.get("size") or 0), str(stat.get("mtime", ""))
        out.append(Change(change.path, change.kind, size, mtime, change.group))
    return out


def digest(changes: Sequence[Change]) -> str:
    """Identifies one state of the unsaved work (paths, kinds, sizes, modification times)."""
    rows = [[c.path, c.kind, c.size, c.mtime] for c in sorted(changes, key=lambda c: c.path)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _packages_dir(path: str) -> str | None:
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part in ("site-packages", "dist-packages") and i + 1 < len(parts):
            return "/".join(parts[: i + 1])
    return None


def summary(changes: Sequence[Change], limit: int = 8) -> list[str]:
    """Short lines, biggest first: ``/usr/local/lib/python3.10/dist-packages: 14 new packages, 310 MB``."""
    groups: dict[str, list[Change]] = {}
    for change in changes:
        groups.setdefault(change.group or change.path, []).append(change)
    rows = []
    for key, members in groups.items():
        sizes = [c.size for c in members if c.size is not None]
        rows.append((sum(sizes), key, _describe(key, members, len(sizes) < len(members))))
    rows.sort(key=lambda row: (-row[0], row[1]))
    lines = [f"{key}: {text}" for _, key, text in rows[:limit]]
    if len(rows) > limit:
        rest = sum(len(groups[key]) for _, key, _ in rows[limit:])
        lines.append(f"... and {rest} more path{'s' if rest != 1 else ''}")
    return lines


def _describe(key: str, members: Sequence[Change], unmeasured: bool) -> str:
    total = sum(c.size or 0 for c in members)
    size = format_bytes(total) if not unmeasured else f"at least {format_bytes(total)}" if total else "size unknown"
    if len(members) == 1 and members[0].path == key:
        return f"{KINDS[members[0].kind]} file, {size}"
    if _packages_dir(members[0].path) == key:
        added: set[str] = set()
        changed: set[str] = set()
        for change in members:
            top = change.path[len(key) + 1 :].split("/")[0]
            if top.endswith((".dist-info", ".egg-info")):
                (added if change.kind == 1 else changed).add(top)
        if added or changed:
            parts = [_count(len(added), "new package"), _count(len(changed), "changed package")]
            return ", ".join(p for p in parts if p) + f", {size}"
    parts = [
        _count(sum(1 for c in members if c.kind == 1), "new file"),
        _count(sum(1 for c in members if c.kind == 0), "changed file"),
    ]
    return ", ".join(p for p in parts if p) + f", {size}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}" if n else ""


def format_bytes(size: int) -> str:
    """Decimal units, as ``docker images`` shows sizes: ``3 B``, ``4.2 kB``, ``310 MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def patterns_of(container: ObservedContainer) -> tuple[str, ...]:
    """The default patterns plus the workspace's ``ignore_changes`` (carried in a label)."""
    try:
        extra = json.loads(container.labels.get(L.IGNORE_CHANGES, "[]"))
    except ValueError:
        extra = []
    return IGNORED + tuple(str(p) for p in extra if isinstance(p, str))


def mount_targets_of(container: ObservedContainer) -> list[str]:
    essence = container.essence or {}
    return [str(m.get("target", "")) for m in essence.get("mounts") or [] if isinstance(m, dict)]


def to_measure(changes: Sequence[Change], limit: int = MAX_STATS) -> list[str]:
    """Which paths to measure: taken from each group in turn, so every group gets a size."""
    groups: dict[str, list[str]] = {}
    for change in changes:
        groups.setdefault(change.group or change.path, []).append(change.path)
    chosen: list[str] = []
    queues = list(groups.values())
    while queues and len(chosen) < limit:
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
        queues = [q for q in queues if q]
    return chosen


def measure(engine: Engine, container: ObservedContainer) -> list[Change]:
    """The container's unsaved work, measured (up to :data:`MAX_STATS` paths)."""
    raw = engine.changes(container.id)
    found = candidates(raw, patterns_of(container), mount_targets_of(container))
    stats = {path: engine.stat_path(container.id, path) for path in to_measure(found)}
    return measured(found, stats)


def saved(engine: Engine, container: ObservedContainer, changes: Sequence[Change]) -> str | None:
    """The snapshot image that holds exactly this state of the work, if one does."""
    state = digest(changes)
    for image in engine.list_images({L.SNAPSHOT_OF: container.id}):
        if (image.get("Labels") or {}).get(L.SNAPSHOT_DIGEST) == state:
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            return tags[0] if tags else str(image.get("Id", ""))
    return None


def unsaved_work(engine: Engine, container: ObservedContainer) -> Hold | None:
    """The guard's check: hold back when the container's writable layer has unsaved work."""
    from ngcws.errors import EngineError
    from ngcws.guard import Hold

    ws = container.workspace or container.name
    remedy = f"keep it: `ngcws snapshot {ws}`; see it: `ngcws diff {ws}`"
    try:
        changes = measure(engine, container)
    except EngineError as exc:
        return Hold(ws, f"the engine cannot say what changed in {container.name}: {exc.message}", remedy)
    if not changes or saved(engine, container, changes):
        return None
    rows = summary(changes)
    if any(c.size is None for c in changes):  # not all measured: the layer's size bounds them
        total = engine.writable_size(container.id)
        if total is not None:
            rows.append(f"(the whole writable layer, noise included: {format_bytes(total)})")
    lines = "\n".join(f"    {line}" for line in rows)
    return Hold(ws, f"{container.name} has changes outside its mounts, not saved anywhere:\n{lines}", remedy)
