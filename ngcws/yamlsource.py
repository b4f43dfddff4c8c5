"""YAML text to plain data, remembering where every value came from.

PyYAML's own loaders silently accept duplicate keys and expand aliases without bound; this module
composes the node graph itself, so it can refuse both, and records the line and column of every
value so that validation errors can point at ``ngcws.yaml:LINE:COL``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ngcws.errors import ConfigError

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line, column

#: Upper bound on the number of values a document may expand to (aliases included): real
#: ngcws.yaml files hold a few hundred; an alias bomb holds billions.
MAX_VALUES = 100_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Document:
    """A parsed YAML document: its data and the position of each value, by path."""

    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    filename: str = "ngcws.yaml"

    def position(self, path: Path) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return (1, 1)

    def error(self, path: Path, message: str) -> ConfigError:
        """A ConfigError naming ``file:line:col: dotted.path: message``."""
        line, col = self.position(path)
        dotted = dotted_path(path)
        where = f"{self.filename}:{line}:{col}"
        return ConfigError(f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}")


def dotted_path(path: Path) -> str:
    """``('workspaces', 'train', 'mounts', 0)`` → ``workspaces.train.mounts[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(text: str, filename: str, transform: Callable[[str, Path], Any] | None = None) -> Document:
    """Parse one YAML document. ``transform`` is applied to every string scalar (interpolation)."""
    _refuse_tabs(text, filename)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{filename}: invalid YAML: {exc}") from None
    doc = Document(data=None, filename=filename)
    if root is None:
        raise ConfigError(f"{filename}:1:1: the file is empty", hint="Run `ngcws init` to write one.")
    builder = _Builder(doc, transform)
    doc.data = builder.build(root, ())
    return doc


def _refuse_tabs(text: str, filename: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped) + 1
            raise ConfigError(f"{filename}:{number}:{col}: a tab indents this line; YAML indentation must use spaces")


class _Builder:
    def __init__(self, doc: Document, transform: Callable[[str, Path], Any] | None) -> None:
        self.doc = doc
        self.transform = transform
        self.count = 0
        self.scalars = _Loader("")  # only used to resolve scalar tags (int, bool, null...)

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            raise ConfigError(
                f"{self.doc.filename}:{line}:{col}: the document expands to more than "
                f"{MAX_VALUES} values (aliases nested too deeply?)"
            )
        self.doc.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self.scalars.construct_object(node)
        if isinstance(value, str) and self.transform is not None:
            return self.transform(value, path)
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        literal: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`; literal keys win
                merged = self.build(value_node, path)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            out.setdefault(k, v)
                continue
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            raw_key = self.scalars.construct_object(key_node)
            if isinstance(raw_key, (list, dict)):
                raise ConfigError(f"{self.doc.filename}:{line}:{col}: mapping keys must be plain scalars")
            key = raw_key if isinstance(raw_key, str) else str(raw_key)
            if key in literal:
                first = self.doc.positions.get((*path, key), (line, col))
                raise ConfigError(
                    f"{self.doc.filename}:{line}:{col}: {dotted_path((*path, key))}: "
                    f"duplicate key (first defined on line {first[0]})"
                )
            literal.add(key)
            value_mark = value_node.start_mark
            self.doc.positions[(*path, key)] = (value_mark.line + 1, value_mark.column + 1)
            out[key] = self.build(value_node, (*path, key))
        return out
