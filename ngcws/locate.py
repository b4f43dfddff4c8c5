"""Locate: find ngcws.yaml, name the project, read and interpolate the YAML. No validation.

This is all ``ngcws exec`` and ``ngcws logs`` need (:func:`peek`); :mod:`ngcws.load` adds the
validated models on top. Kept free of pydantic and dataclasses so those commands start fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ngcws.errors import ConfigError, ConfigNotFound, UsageError
from ngcws.interpolate import InterpolationError, Layered, interpolate, parse_env_file

if TYPE_CHECKING:
    from ngcws.inputs import Inputs
    from ngcws.yamlsource import Document

CONFIG_NAME = "ngcws.yaml"


class Located:
    """Where the project lives, known before any validation."""

    __slots__ = ("config_file", "directory")

    def __init__(self, config_file: Path, directory: Path) -> None:
        self.config_file = config_file
        self.directory = directory


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


def variables_for(
    located: Located, environ: Mapping[str, str] | None = None, inputs: Inputs | None = None
) -> Mapping[str, str]:
    """The interpolation variables: the environment, then ``.env`` beside ngcws.yaml.

    ``.env`` values may use variables themselves (``DATA=${HOME}/datasets``). The result is looked
    up by name, never listed, so that a recording ``environ`` sees every variable that matters.
    """
    if inputs is not None:
        environ = inputs.environ
    environ = os.environ if environ is None else environ
    dotenv = located.directory / ".env"
    own: dict[str, str] = {}
    try:
        text = inputs.read(dotenv) if inputs is not None else (dotenv.read_text() if dotenv.is_file() else None)
        if text is not None:
            own = parse_env_file(text, environ)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{dotenv}: cannot read: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{dotenv}: {exc}") from None
    return Layered(environ, own)


def read_document(located: Located, variables: Mapping[str, str], inputs: Inputs | None = None) -> Document:
    try:
        text = inputs.read(located.config_file) if inputs is not None else located.config_file.read_text()
        if text is None:
            raise FileNotFoundError(f"{located.config_file}: no such file")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{located.config_file}: cannot read: {exc}") from None
    return parse_document(text, located, variables)


def parse_document(text: str, located: Located, variables: Mapping[str, str]) -> Document:
    """Parse and interpolate the text of ``located``'s ngcws.yaml."""
    from ngcws.yamlsource import parse

    filename = _display_name(located.config_file)
    problems: list[tuple[tuple[str | int, ...], str]] = []
    interpolated: dict[tuple[str | int, ...], frozenset[str]] = {}

    def substitute(value: str, path: tuple[str | int, ...]) -> str:
        used: set[str] = set()
        try:
            result = interpolate(value, variables, used)
        except InterpolationError as exc:
            problems.append((path, str(exc)))
            return value
        if used:
            interpolated[path] = frozenset(used)
        return result

    doc = parse(text, filename, transform=substitute)
    doc.interpolated = interpolated
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
