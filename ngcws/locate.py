"""Locate: find ngcws.yaml, name the project, read and interpolate the YAML. No validation.

This is all ``ngcws exec`` and ``ngcws logs`` need (:func:`peek`); :mod:`ngcws.load` adds the
validated models on top. Kept free of pydantic and dataclasses so those commands start fast.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ngcws.errors import ConfigError, ConfigNotFound, UsageError
from ngcws.interpolate import InterpolationError, Layered, interpolate, parse_env_file

if TYPE_CHECKING:
    from ngcws.inputs import Inputs
    from ngcws.yamlsource import Document

CONFIG_NAME = "ngcws.yaml"
OVERRIDE_NAME = "ngcws.override.yaml"

#: ``-f`` as given on the command line: one file, several (later ones override), or none.
Files = str | Sequence[str] | None


class Located:
    """Where the project lives, known before any validation.

    ``config_file`` is the first file (it names the project's folder); ``config_files`` are all
    the files to merge, in order: ngcws.yaml and ngcws.override.yaml, or those given with ``-f``.
    ``optional`` files may be absent (ngcws.override.yaml): they are looked for on every load, so
    that creating one is a change of input like any other.
    """

    __slots__ = ("config_file", "config_files", "directory", "optional")

    def __init__(
        self, config_file: Path, directory: Path, config_files: Sequence[Path] = (), optional: Sequence[Path] = ()
    ) -> None:
        self.config_file = config_file
        self.directory = directory
        self.config_files = tuple(config_files) or (config_file,)
        self.optional = frozenset(optional)


def locate(explicit: Files = None, cwd: Path | None = None) -> Located:
    """``-f`` (repeatable)/``NGCWS_FILE`` (a list, like COMPOSE_FILE), else ngcws.yaml in the current
    folder or the nearest parent, with ngcws.override.yaml beside it when there is one."""
    given = [explicit] if isinstance(explicit, str) else list(explicit or [])
    if not given and os.environ.get("NGCWS_FILE"):
        given = [p for p in os.environ["NGCWS_FILE"].split(os.pathsep) if p]
    start = (cwd or Path.cwd()).resolve()
    if given:
        paths = []
        for name in given:
            path = (start / name).resolve()
            if not path.is_file():
                raise ConfigNotFound(f"{name}: no such file")
            paths.append(path)
        return Located(paths[0], paths[0].parent, paths)
    for folder in (start, *start.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            override = folder / OVERRIDE_NAME
            return Located(candidate, folder, [candidate, override], optional=[override])
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
    secret: set[str] = set()
    try:
        text = inputs.read(dotenv) if inputs is not None else (dotenv.read_text() if dotenv.is_file() else None)
        if text is not None:
            own = parse_env_file(text, environ, secret=secret)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{dotenv}: cannot read: {exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{dotenv}: {exc}") from None
    return Layered(environ, own, frozenset(secret))


def read_document(located: Located, variables: Mapping[str, str], inputs: Inputs | None = None) -> Document:
    """Read, interpolate and merge every config file (:mod:`ngcws.merge`); each value remembers
    its file and line. Every file, an absent optional one too, is read through ``inputs``."""
    docs = []
    for path in located.config_files:
        try:
            if inputs is not None:
                text = inputs.read(path)
            else:
                text = path.read_text() if path.is_file() or path not in located.optional else None
            if text is None and path not in located.optional:
                raise FileNotFoundError(f"{path}: no such file")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
        if text is not None:
            docs.append(parse_document(text, located, variables, path))
    if len(docs) == 1 and not _has_markers(docs[0].data):
        return docs[0]
    from ngcws.merge import merge_documents

    doc = merge_documents(docs)
    if not isinstance(doc.data, dict):
        raise ConfigError(
            f"{doc.filename}:1:1: the top level must be a mapping with a workspaces: key, got {type(doc.data).__name__}"
        )
    return doc


def _has_markers(data: object) -> bool:
    """Whether ``!reset``/``!override`` tags are used (then even one file goes through the merge)."""
    from ngcws.yamlsource import RESET, Override

    if data is RESET or isinstance(data, Override):
        return True
    if isinstance(data, dict):
        return any(_has_markers(v) for v in data.values())
    return isinstance(data, list) and any(_has_markers(v) for v in data)


def parse_document(text: str, located: Located, variables: Mapping[str, str], path: Path | None = None) -> Document:
    """Parse and interpolate the text of one of ``located``'s config files (default: the first)."""
    from ngcws.yamlsource import parse

    filename = _display_name(path or located.config_file)
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
