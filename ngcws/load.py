"""Load: ngcws.yaml → validated models, with the project's identity.

Every failure is a :class:`~ngcws.errors.ConfigError` whose message starts with
``FILE:LINE:COL: dotted.field.path:``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ngcws.errors import ConfigError
from ngcws.locate import (
    CONFIG_NAME,
    Files,
    Located,
    locate,
    project_name,
    read_document,
    variables_for,
)
from ngcws.yamlsource import Document
from ngcws.yamlsource import Path as Path_

if TYPE_CHECKING:
    from ngcws.inputs import Inputs

__all__ = ["CONFIG_NAME", "Located", "Project", "load", "locate"]


@dataclass(frozen=True)
class Project:
    """A validated ngcws.yaml with its identity: name, folder and file."""

    name: str
    directory: Path
    config_file: Path
    file: Any  # ngcws.model.ProjectFile (imported lazily: pydantic is not needed by every command)
    #: Per workspace, the env names whose values are secret (see ngcws.redact).
    secret_env: dict[str, frozenset[str]] = field(default_factory=dict)
    #: The YAML merged from every config file, each value with the file and line it came from.
    document: Document | None = None
    #: Per workspace, the values of secret variables interpolated outside ``env`` (``command``,
    #: ``labels``, …), each with the variable's name: concealed in essence, labels and plans (see
    #: ngcws.redact.conceal), written back as ``${NAME}`` by exports.
    secret_values: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def workspaces(self) -> dict[str, Any]:
        return dict(self.file.workspaces)


def load(
    explicit: Files = None,
    project_override: str | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Project:
    """Find, read, interpolate and validate ngcws.yaml."""
    located = locate(explicit, cwd)
    return load_located(located, project_override, variables_for(located, environ))


def load_located(
    located: Located, project_override: str | None, variables: Mapping[str, str], inputs: Inputs | None = None
) -> Project:
    """Read, interpolate (with ``variables``) and validate a located ngcws.yaml; every file, path
    and variable it uses goes through ``inputs``, when given."""
    from pydantic import ValidationError

    from ngcws.model import ProjectFile

    doc = read_document(located, variables, inputs)
    take_as_written(doc)
    secret = secret_paths(doc, variables)
    context = {"project_dir": str(located.directory), "variables": variables, "inputs": inputs}
    try:
        file = ProjectFile.model_validate(doc.data, context=context)
    except ValidationError as exc:
        raise _config_error(doc, exc, secret) from None
    name = project_name(located, file.name, project_override)
    secret_names = {ws_name: secret_env(doc, secret, ws_name, ws) for ws_name, ws in file.workspaces.items()}
    values = secret_values(doc, variables)
    return Project(name, located.directory, located.config_file, file, secret_names, doc, values)


def secret_paths(doc: Document, variables: Mapping[str, str]) -> dict[Path_, str]:
    """The values of the file that are secret because their interpolation used a secret variable
    (by name, or a ``.env`` entry that used one: see :func:`ngcws.redact.secret_variable`), each
    with the name of one such variable."""
    from ngcws.redact import secret_variable

    out: dict[Path_, str] = {}
    for path, used in doc.interpolated.items():
        found = sorted(name for name in used if secret_variable(name, variables))
        if found:
            out[path] = found[0]
    return out


def secret_values(doc: Document, variables: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Per workspace, the values of the secret variables its fields other than ``env`` interpolate
    (``command: [train.py, --token, ${HF_TOKEN}]``), each with the variable's name."""
    from ngcws.redact import looks_secret, secret_variable

    out: dict[str, dict[str, str]] = {}
    for path, used in doc.interpolated.items():
        if len(path) < 3 or path[0] != "workspaces" or path[2] == "env":
            continue
        for name in used:
            value = variables.get(name) if secret_variable(name, variables) else None
            if not value:
                continue
            names = out.setdefault(str(path[1]), {})
            # Two variables with one value (.env INDIRECT=${HF_TOKEN}): the one named as a secret.
            if value not in names or (not looks_secret(names[value]), names[value]) > (not looks_secret(name), name):
                names[value] = name
    return out


def secret_env(doc: Document, secret: Mapping[Path_, str], workspace_name: str, workspace: Any) -> frozenset[str]:
    """The env names of a workspace whose values are secret: by name, from an env_file, or
    interpolating a secret variable."""
    from ngcws.redact import looks_secret

    names = {k for k in workspace.env if looks_secret(k)} | set(workspace.env_from_files)
    raw = doc.data["workspaces"][workspace_name].get("env")
    for path in secret:
        if path[:3] != ("workspaces", workspace_name, "env") or len(path) != 4:
            continue
        entry = path[3]
        if isinstance(entry, int) and isinstance(raw, list) and isinstance(raw[entry], str):
            entry = raw[entry].partition("=")[0]
        names.add(str(entry))
    return frozenset(names & set(workspace.env))


#: Fields whose values are strings by nature: an unquoted ``1e3``, ``017`` or ``TRUE`` there is
#: the text as written, not the number or boolean YAML would make of it.
AS_WRITTEN = ("env", "labels", "command")


def take_as_written(doc: Document) -> None:
    """Env values, label values and command arguments exactly as written (``null`` stays null)."""
    for path, text in doc.raw.items():
        if len(path) != 4 or path[0] != "workspaces" or path[2] not in AS_WRITTEN:
            continue
        try:
            container = doc.data["workspaces"][path[1]][path[2]]
            if isinstance(container, list) and path[2] != "command":  # env/labels lists are K=V strings
                continue
            if container[path[3]] is not None:
                container[path[3]] = text
        except (KeyError, IndexError, TypeError):
            continue


def _config_error(doc: Document, exc: Any, secret: Mapping[Path_, str]) -> ConfigError:
    """Turn a pydantic ValidationError into one ConfigError listing every problem."""
    from ngcws.model import FieldConflict

    lines = []
    for err in exc.errors(include_url=False):
        loc = tuple(part for part in err["loc"] if part != "[key]")
        message = _message(err, loc, _secret_at(secret, loc))
        conflict = (err.get("ctx") or {}).get("error")
        if isinstance(conflict, FieldConflict):  # point at the first field, name where the other is
            loc = (*loc, conflict.fields[0])
            others = [
                f"{f} at {doc.where((*loc[:-1], f))}" for f in conflict.fields[1:] if (*loc[:-1], f) in doc.positions
            ]
            message += f" ({'; '.join(others)})" if others else ""
        lines.append(str(doc.error(loc, message)))
    first, *rest = lines
    return ConfigError("\n".join([first, *rest]))


def _secret_at(secret: Mapping[Path_, str], loc: tuple[Any, ...]) -> str | None:
    """The secret variable used by the value at ``loc`` or by a value inside it, if any."""
    for path, name in secret.items():
        if path[: len(loc)] == loc or loc[: len(path)] == path:
            return name
    return None


#: pydantic's own error types whose message names a type or a choice: said in the project's words.
_OWN_WORDS = ("value_error", "assertion_error")


def _message(err: Mapping[str, Any], loc: tuple[Any, ...], secret: str | None = None) -> str:
    """An error in the project's words: the parsers' own messages, else which forms are accepted.
    The value is never shown when it is secret."""
    from pydantic import BaseModel

    from ngcws.forms import KINDS, expected
    from ngcws.model import Healthcheck, Mount, ProjectFile, Ulimit, Workspace
    from ngcws.values import shown, suggest

    kind = err["type"]
    if kind == "extra_forbidden":
        nested = Mount if "mounts" in loc else Ulimit if "ulimits" in loc else Healthcheck
        parents: dict[int, type[BaseModel]] = {1: ProjectFile, 3: Workspace, 4: nested, 5: nested}
        model = _distributed_parent(loc) if "distributed" in loc else parents.get(len(loc))
        known = list(model.model_fields) if model else []
        return (
            f"unknown key {loc[-1]!r}"
            + suggest(str(loc[-1]), known)
            + (f"; known keys: {', '.join(known)}" if known and not suggest(str(loc[-1]), known) else "")
        )
    if kind == "missing":
        return "this field is required"
    choices = re.findall(r"'([^']+)'", str(err["msg"])) if kind == "literal_error" else []
    forms = expected(loc, key="[key]" in err["loc"])
    if forms is None:
        forms = ", ".join(choices[:-1]) + f" or {choices[-1]}" if len(choices) > 1 else KINDS.get(kind, "another value")
    if secret is not None:
        return f"expected {forms}; the value is not shown: it is secret (it uses ${{{secret}}})"
    if kind in _OWN_WORDS:
        return str(err["msg"]).split(", ", 1)[1]
    got = err.get("input")
    return f"expected {forms}, got {shown(got)}" + (suggest(str(got), choices) if choices else "")


def _distributed_parent(loc: tuple[Any, ...]) -> Any:
    """The model of the mapping holding the last key of a path inside a ``distributed:`` block."""
    from ngcws.clusters import model as m

    inner = loc[loc.index("distributed") + 1 : -1]
    return {(): m.Distributed, ("slurm",): m.Slurm, ("kubernetes",): m.Kubernetes}.get(tuple(inner))
