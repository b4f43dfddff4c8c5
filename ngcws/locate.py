"""Locate: find ngcws.yaml, name the project, read and interpolate the YAML. No validation.

This is all ``ngcws exec`` and ``ngcws logs`` need (:func:`peek`); :mod:`ngcws.load` adds the
validated models on top. Kept free of pydantic and dataclasses so those commands start fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ngcws.errors import ConfigError, ConfigNotFound, UsageError
from ngcws.interpolate import InterpolationError, interpolate, parse_env_file

if TYPE_CHECKING:
    from ngcws.yamlsource import Document

CONFIG_NAME = "ngcws.yaml"


class Located:
    """Where the project lives, known before any validation."""

    __slots__ = ("config_file", "directory")

    def __init__(self, config_file: Path, directory: Path) -> None:
        self.config_file = config_file
        self.directory = directory


def unknown_workspace(name: str, known: list[str], config_file: Path) -> UsageError:
    from ngcws.values import suggest

    return UsageError(f"no workspace {name!r} in {config_file}{suggest(name, known)}; defined: {', '.join(known)}")


def locate(explicit: str | None = None, cwd: Path | None = None) -> Located:
    """``-f``/``NGCWS_FILE``, else ngcws.yaml in the current folder or the nearest parent."""
    explicit = explicit or os.environ.get("NGCWS_FILE") or None
    start = (cwd or Path.cwd()).resolve()
    if explicit:
        path = (start / explicit).resolve()
        if not path.is_file():
            raise ConfigNotFound(f"{explicit}: no such file")
        return Located(path, path.parent)
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return Located(candidate, folder)
    raise ConfigNotFound(
        f"no {CONFIG_NAME} in {start} or any parent folder",
        hint="Run `ngcws init` to write one here, or pass -f FILE.",
    )


def normalize_name(raw: str) -> str:
    """A folder name → a project name: lower case, only [a-z0-9_-], starting alphanumeric."""
    name = re.sub(r"[^a-z0-9_-]", "", raw.lower()).lstrip("_-")
    return name


def project_name(located: Located, declared: str | None, override: str | None) -> str:
    if override is not None:
        name = normalize_name(override)
        if not name or name != override:
            raise UsageError(f"project name {override!r} must match [a-z0-9][a-z0-9_-]*")
        return name
    if declared:
        return declared
    name = normalize_name(located.directory.name)
    if not name:
        raise ConfigError(
            f"{located.config_file}: the folder name {located.directory.name!r} gives no project name;"
            " set name: in the file or pass -p"
        )
    return name


def variables_for(located: Located, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The interpolation variables: ``.env`` beside ngcws.yaml, overridden by the environment."""
    out: dict[str, str] = {}
    dotenv = located.directory / ".env"
    if dotenv.is_file():
        try:
            out.update(parse_env_file(dotenv.read_text()))
        except ValueError as exc:
            raise ConfigError(f"{dotenv}: {exc}") from None
    out.update(os.environ if environ is None else environ)
    return out


def read_document(located: Located, variables: Mapping[str, str]) -> Document:
    try:
        text = located.config_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{located.config_file}: cannot read: {exc}") from None

    from ngcws.yamlsource import parse

    filename = _display_name(located.config_file)
    problems: list[tuple[tuple[str | int, ...], str]] = []

    def substitute(value: str, path: tuple[str | int, ...]) -> str:
        try:
            return interpolate(value, variables)
        except InterpolationError as exc:
            problems.append((path, str(exc)))
            return value

    doc = parse(text, filename, transform=substitute)
    if problems:
        raise doc.error(*problems[0])
    if not isinstance(doc.data, dict):
        raise ConfigError(
            f"{filename}:1:1: the top level must be a mapping with a workspaces: key, got {type(doc.data).__name__}"
        )
    return doc


def _display_name(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Peek:
    """What exec/logs need of ngcws.yaml, read without full validation (fast path)."""

    __slots__ = ("config_file", "directory", "name", "variables", "workspaces")

    def __init__(self, name: str, located: Located, workspaces: list[str], variables: dict[str, str]) -> None:
        self.name = name
        self.directory = located.directory
        self.config_file = located.config_file
        self.workspaces = workspaces
        self.variables = variables

    def workspace(self, name: str | None) -> str:
        if name is None:
            return self.workspaces[0]
        if name not in self.workspaces:
            raise unknown_workspace(name, self.workspaces, self.config_file)
        return name


def peek(explicit: str | None = None, project_override: str | None = None) -> Peek:
    """Project name and workspace names, for commands that act on existing containers.

    The answer is cached per config file, keyed by the exact text of ngcws.yaml and .env and the
    values of the variables the file mentions, so that ``ngcws exec`` skips YAML parsing (a tenth
    of its start-up) whenever nothing it depends on changed.
    """
    located = locate(explicit)
    variables = variables_for(located)
    key = _peek_key(located)
    cache = _cache_path(located)
    found = _read_cache(cache, key)
    if found is None:
        doc = read_document(located, variables)
        workspaces = doc.data.get("workspaces")
        if not isinstance(workspaces, dict) or not workspaces:
            raise doc.error(("workspaces",), "define at least one workspace")
        declared = doc.data.get("name")
        found = {
            "name": declared if isinstance(declared, str) else None,
            "workspaces": [str(k) for k in workspaces],
        }
        _write_cache(cache, {**key, **found})
    name = project_name(located, found["name"], project_override)
    return Peek(name, located, list(found["workspaces"]), variables)


_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _peek_key(located: Located) -> dict[str, Any]:
    text = located.config_file.read_text(errors="replace")
    dotenv = located.directory / ".env"
    env_text = dotenv.read_text(errors="replace") if dotenv.is_file() else None
    names = sorted(set(_VARIABLE.findall(text)))
    return {"text": text, "dotenv": env_text, "vars": {n: os.environ.get(n) for n in names}}


def _cache_path(located: Located) -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    flat = str(located.config_file).strip("/").replace("/", "%")
    return Path(root) / "ngcws" / "peek" / f"{flat}.json"


def _read_cache(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or any(data.get(k) != v for k, v in key.items()):
        return None
    return data


def _write_cache(path: Path, data: dict[str, Any]) -> None:
    import json

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass  # a cache we cannot write only costs time
