"""Merge ngcws.yaml with its override files, as Docker Compose merges compose files. Pure.

Later files override earlier ones. Mappings merge key by key and scalars replace. Lists of a
workspace merge by what identifies an entry: ``mounts`` by container path, ``ports`` by container
port and protocol, ``devices`` and ``tmpfs`` by container path, ``env``, ``labels`` and ``sysctls``
by name, ``networks`` by name; ``cap_add``, ``cap_drop``, ``security_opt``, ``dns``, ``group_add``,
``extra_hosts``, ``env_file`` and ``ignore_changes`` append what is not there yet; every other list (``command``,
``entrypoint``, ``gpus``, ``capabilities``, a healthcheck's ``test``) is replaced. A value tagged
``!reset`` removes the inherited entry, ``!override`` replaces instead of merging. The merged
:class:`~ngcws.yamlsource.Document` remembers the file, line and column every value came from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ngcws import values
from ngcws.yamlsource import RESET, Document, Override, Path, Position


def _mount_target(item: Any) -> str | None:
    if isinstance(item, dict):
        target = item.get("target")
    elif isinstance(item, str):
        parts = item.split(":")
        target = parts[1] if len(parts) >= 2 and parts[1] not in ("ro", "rw") else parts[0]
    else:
        return None
    return target.rstrip("/") or "/" if isinstance(target, str) else None


def _port_key(item: Any) -> tuple[int, str] | None:
    try:
        port = values.parse_port(item)
    except ValueError:
        return None
    return (port["container_port"], port["protocol"])


def _name(item: Any) -> str | None:
    return item.partition("=")[0] if isinstance(item, str) else None


KEYED: dict[str, Callable[[Any], Any]] = {
    "mounts": _mount_target,
    "ports": _port_key,
    "devices": values.device_target,
    "tmpfs": values.tmpfs_target,
    "env": _name,
    "labels": _name,
    "sysctls": _name,
    "networks": _name,
}
UNIQUE = ("cap_add", "cap_drop", "security_opt", "dns", "group_add", "extra_hosts", "env_file", "ignore_changes")


def merge_documents(docs: list[Document]) -> Document:
    """One document: ``docs[0]`` overridden by each later one, with every value's origin."""
    out = Document(data=None, filename=docs[0].filename)
    out.data = _copy(docs[0].data, docs[0], (), (), out)
    for doc in docs[1:]:
        merged = _merge(out.data, doc.data, doc, (), (), out)
        out.data = {} if merged is RESET else merged
    return out


def _record(doc: Document, path: Path, out_path: Path, out: Document) -> None:
    """Carry what ``doc`` knows of ``path`` (position, file, text as written, variables) to ``out_path``."""
    position = doc.positions.get(path)
    if position is not None:
        out.positions[out_path] = position
        out.files[out_path] = doc.filename
    if path in doc.raw:
        out.raw[out_path] = doc.raw[path]
    if path in doc.interpolated:
        out.interpolated[out_path] = doc.interpolated[path]


def _copy(value: Any, doc: Document, path: Path, out_path: Path, out: Document) -> Any:
    """``value`` (from ``doc`` at ``path``) placed at ``out_path``: markers resolved, origins kept."""
    _record(doc, path, out_path, out)
    if isinstance(value, Override):
        value = value.value
    if isinstance(value, dict):
        return {k: _copy(v, doc, (*path, k), (*out_path, k), out) for k, v in value.items() if v is not RESET}
    if isinstance(value, list):
        kept = [(i, v) for i, v in enumerate(value) if v is not RESET]
        return [_copy(v, doc, (*path, i), (*out_path, j), out) for j, (i, v) in enumerate(kept)]
    return value


Origin = tuple[Position, str, str | None, frozenset[str] | None]  # position, file, raw text, variables


def _take(out: Document, prefix: Path) -> dict[Path, Origin]:
    """Remove and return what is recorded at and under ``prefix`` (keyed by the rest of the path)."""
    taken: dict[Path, Origin] = {}
    for key in [k for k in out.positions if k[: len(prefix)] == prefix]:
        taken[key[len(prefix) :]] = (
            out.positions.pop(key),
            out.files.pop(key, out.filename),
            out.raw.pop(key, None),
            out.interpolated.pop(key, None),
        )
    return taken


def _put(out: Document, prefix: Path, taken: dict[Path, Origin]) -> None:
    for rest, (position, filename, raw, used) in taken.items():
        path = (*prefix, *rest)
        out.positions[path] = position
        out.files[path] = filename
        if raw is not None:
            out.raw[path] = raw
        if used is not None:
            out.interpolated[path] = used


def _origin(doc: Document, path: Path, position: Position) -> Origin:
    return (position, doc.filename, doc.raw.get(path), doc.interpolated.get(path))


def _field(out_path: Path) -> str | None:
    """The workspace field a path is the value of (``workspaces.NAME.FIELD``), if any."""
    if len(out_path) == 3 and out_path[0] == "workspaces" and isinstance(out_path[2], str):
        return out_path[2]
    return None


def _as_list(field: str | None, value: Any, raw: Callable[[Any], str | None] = lambda key: None) -> list[Any]:
    """A field's value as a list of entries: ``env`` as a map becomes ``KEY=VALUE`` strings, each
    value as written (``raw``: ``LR: 1e-3`` stays ``1e-3``, see ``load.take_as_written``)."""
    if isinstance(value, dict):
        if field == "networks":
            return list(value)
        return [f"{k}={_text(v, raw(k))}" for k, v in value.items()]
    return [value] if isinstance(value, str) else list(value)


def _text(value: Any, raw: str | None) -> str:
    return raw if raw is not None else "" if value is None else values.scalar_text(value)


def _entries(value: Any) -> bool:
    """Whether a field's value can be read as entries (a map's values must be plain scalars)."""
    if isinstance(value, dict):
        return all(v is None or isinstance(v, (str, int, float, bool)) for v in value.values())
    return isinstance(value, (list, str))


def _merge(base: Any, over: Any, doc: Document, path: Path, out_path: Path, out: Document) -> Any:
    """``over`` (from ``doc`` at ``path``) merged onto ``base`` (already at ``out_path`` in ``out``)."""
    if over is RESET:
        _take(out, out_path)
        return RESET
    if over is None and isinstance(base, dict):
        return base  # `train:` with every line commented out: an empty mapping, nothing to change
    field = _field(out_path)
    if isinstance(over, Override) or not _mergeable(field, base, over):
        _take(out, out_path)
        return _copy(over, doc, path, out_path, out)
    if isinstance(base, dict) and isinstance(over, dict):
        _record(doc, path, out_path, out)
        for key, value in over.items():
            if key in base:
                merged = _merge(base[key], value, doc, (*path, key), (*out_path, key), out)
                if merged is RESET:
                    del base[key]
                else:
                    base[key] = merged
            elif value is not RESET:
                base[key] = _copy(value, doc, (*path, key), (*out_path, key), out)
        return base
    return _merge_entries(field, base, over, doc, path, out_path, out)


def _mergeable(field: str | None, base: Any, over: Any) -> bool:
    if isinstance(base, dict) and isinstance(over, dict):
        return True
    if field == "networks":
        return isinstance(base, (list, dict)) and isinstance(over, (list, dict))
    if field in KEYED or field in UNIQUE:
        return _entries(base) and _entries(over)  # else replaced: validation then names the odd value
    return False


def _merge_entries(field: Any, base: Any, over: Any, doc: Document, path: Path, out_path: Path, out: Document) -> Any:
    """Merge two lists of entries of ``field``: by key, or appending what is new."""
    key_of: Callable[[Any], Any] = KEYED.get(field, lambda item: item)
    saved = _take(out, out_path)
    base_items = _as_list(field, base, lambda key: (saved.get((key,)) or (None, None, None))[2])
    # Each base entry keeps its origin: the whole field's entry when it was written as a map or string.
    origins: list[dict[Path, Origin]] = []
    for i in range(len(base_items)):
        mine = {rest[1:]: v for rest, v in saved.items() if rest[:1] == (i,)}
        if not mine and isinstance(base, dict):
            mine = {rest[1:]: v for rest, v in saved.items() if rest[:1] == (list(base)[i],)}
        origins.append(mine or {(): saved.get((), ((1, 1), out.filename, None, None))})
    over_items = over if isinstance(over, list) else _as_list(field, over, lambda key: doc.raw.get((*path, key)))
    for i, item in enumerate(over_items):
        over_path = (*path, i) if isinstance(over, list) else (*path, list(over)[i]) if isinstance(over, dict) else path
        if item is RESET:
            continue
        key = key_of(item)
        position = doc.positions.get(over_path, doc.positions.get(path, (1, 1)))
        origin: dict[Path, Origin] = {(): _origin(doc, over_path, position)}
        if isinstance(over, list):  # a long-form entry: what is known of its keys too
            origin.update(
                {
                    k[len(over_path) :]: _origin(doc, k, p)
                    for k, p in doc.positions.items()
                    if k[: len(over_path)] == over_path
                }
            )
        found = next((j for j, b in enumerate(base_items) if key is not None and key_of(b) == key), None)
        if found is None:
            base_items.append(item)
            origins.append(origin)
        elif field in KEYED:
            base_items[found] = item
            origins[found] = origin
    _put(out, out_path, {(): saved[()]} if () in saved else {})
    for i, origin in enumerate(origins):
        _put(out, (*out_path, i), origin)
    return base_items


def sources(doc: Document) -> list[tuple[str, Any, str]]:
    """Every leaf of a merged document: (dotted path, value, ``file:line:col`` it came from)."""
    from ngcws.yamlsource import dotted_path

    out: list[tuple[str, Any, str]] = []

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict) and value:
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list) and value and any(isinstance(i, (dict, list)) for i in value):
            for i, item in enumerate(value):
                walk(item, (*path, i))
        elif isinstance(value, list) and value:
            for i, item in enumerate(value):
                out.append((dotted_path((*path, i)), item, doc.where((*path, i))))
        else:
            out.append((dotted_path(path), value, doc.where(path)))

    walk(doc.data, ())
    return out
