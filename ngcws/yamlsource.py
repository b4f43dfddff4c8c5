"""YAML text to plain data, remembering where every value came from.

PyYAML's own loaders silently accept duplicate keys and expand aliases without bound; this module
composes the node graph itself, so it can refuse both, and records the line and column of every
value so that validation errors can point at ``ngcws.yaml:LINE:COL``.

Scalars follow the YAML 1.2 core schema, as Docker Compose reads its files (PyYAML's defaults are
YAML 1.1, where ``22:22`` is the base-60 number 1342, ``yes``/``on`` are booleans and ``017`` is
octal): ``null``/``~``/empty, ``true``/``false`` (three spellings each), decimal integers,
``0o`` octal and ``0x`` hex integers, floats, ``.inf``/``.nan``; everything else is a string. The
text of every unquoted non-string scalar is kept in :attr:`Document.raw`, so fields whose values
are strings by nature (env values, labels, command arguments) can take them exactly as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import yaml

from ngcws.errors import ConfigError

Path = tuple[str | int, ...]
Position = tuple[int, int]  # 1-based line, column

#: Upper bound on the number of values a document may expand to (aliases included): real
#: ngcws.yaml files hold a few hundred; an alias bomb holds billions.
MAX_VALUES = 100_000

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CoreSchemaLoader(_Base):  # type: ignore[misc]
    """Resolves plain scalars by the YAML 1.2 core schema (plus ``<<`` merge keys, as Compose)."""

    yaml_implicit_resolvers: ClassVar[dict[str | None, list[tuple[str, re.Pattern[str]]]]] = {}


_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_CORE = (
    (_NULL, r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_BOOL, r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        _FLOAT,
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    (_MERGE, r"^<<$", ["<"]),
)
for _tag, _pattern, _first in _CORE:
    _CoreSchemaLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def core_scalar(tag: str, text: str) -> Any:
    """The value of a scalar with a resolved core-schema ``tag`` (raises ValueError otherwise)."""
    if tag == _STR:
        return text
    if tag == _NULL:
        if text not in ("", "~", "null", "Null", "NULL"):
            raise ValueError(f"{text!r} is not null")
        return None
    if tag == _BOOL:
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return text.lower() == "true"
    if tag == _INT:
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if not digits.isdigit():
            raise ValueError(f"{text!r} is not an integer")
        return sign * int(digits, 10)
    if tag == _FLOAT:
        lowered = text.lower()
        if lowered.endswith((".inf", ".nan")):
            return float(lowered.replace(".", ""))
        return float(text)
    raise ValueError(f"unsupported tag {tag!r}")


class Override:
    """A value tagged ``!override`` in an override file: it replaces, never merges."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


#: A value tagged ``!reset`` in an override file: the key is removed from the merged result.
RESET: Any = type("Reset", (), {"__repr__": lambda self: "!reset"})()


@dataclass
class Document:
    """A parsed YAML document: its data and the position of each value, by path.

    A document merged from several files (:mod:`ngcws.merge`) also knows, in ``files``, which
    file each value came from; values without an entry come from ``filename``.
    """

    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    filename: str = "ngcws.yaml"
    #: The text as written of each plain scalar that resolved to a number, boolean or null.
    raw: dict[Path, str] = field(default_factory=dict)
    #: The variables each interpolated scalar used, by path (set by the caller that interpolates).
    interpolated: dict[Path, frozenset[str]] = field(default_factory=dict)
    #: Which file each value came from, in a document merged from several (ngcws.merge); else filename.
    files: dict[Path, str] = field(default_factory=dict)

    def position(self, path: Path) -> Position:
        """The position of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return (1, 1)

    def where(self, path: Path) -> str:
        """``file:line:col`` of ``path`` (or of its nearest ancestor that has a position)."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return f"{self.files.get(tuple(path[:end]), self.filename)}:{found[0]}:{found[1]}"
        return f"{self.filename}:1:1"

    def error(self, path: Path, message: str) -> ConfigError:
        """A ConfigError naming ``file:line:col: dotted.path: message``."""
        dotted = dotted_path(path)
        where = self.where(path)
        return ConfigError(f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}")


def dotted_path(path: Path) -> str:
    """``('workspaces', 'train', 'mounts', 0)`` → ``workspaces.train.mounts[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse(text: str, filename: str, transform: Callable[[str, Path], str] | None = None) -> Document:
    """Parse one YAML document (a leading UTF-8 byte order mark is ignored). ``transform`` is
    applied to every string scalar (interpolation); its result is a string whatever it spells."""
    text = strip_bom(text)
    _refuse_tabs(text, filename)
    try:
        root = yaml.compose(text, Loader=_CoreSchemaLoader)
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


def strip_bom(text: str) -> str:
    """``text`` without a leading UTF-8 byte order mark (editors on Windows write one)."""
    return text[1:] if text.startswith("\ufeff") else text


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

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_VALUES:
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            raise ConfigError(
                f"{self.doc.filename}:{line}:{col}: the document expands to more than "
                f"{MAX_VALUES} values (aliases nested too deeply?)"
            )
        self.doc.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if node.tag == "!reset":
            return RESET
        if node.tag == "!override":
            if isinstance(node, yaml.ScalarNode):  # resolve the scalar as if untagged
                plain = not getattr(node, "style", None)
                tags = [t for t, pattern, _ in _CORE if t != _MERGE and plain and re.match(pattern, node.value)]
                node.tag = tags[0] if tags else _STR
            else:
                node.tag = "tag:yaml.org,2002:map" if isinstance(node, yaml.MappingNode) else "tag:yaml.org,2002:seq"
            return Override(self.build(node, path))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path) -> Any:
        plain = not getattr(node, "style", None)  # None (PyYAML) or "" (libyaml) for a plain scalar
        try:
            value = core_scalar(node.tag, node.value)
        except ValueError as exc:
            line, col = node.start_mark.line + 1, node.start_mark.column + 1
            where = f"{self.doc.filename}:{line}:{col}"
            raise ConfigError(f"{where}: {dotted_path(path) or 'value'}: {exc}") from None
        if isinstance(value, str) and self.transform is not None:
            # An interpolated scalar stays text, as in Compose: its kind was decided by what is
            # written in the file, never by a variable's value (`${GPUS:-}` is an empty string, not
            # a null; `${U}` = `0o17` is the text 0o17, not 15). Each field parses the text itself.
            return self.transform(value, path)
        if plain and not isinstance(value, str):
            self.doc.raw[path] = node.value
        return value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        literal: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:  # `<<: *defaults`; literal keys win
                merged = self.build(value_node, path)
                for item in merged if isinstance(merged, list) else [merged]:
                    if isinstance(item, dict):
                        for k, v in item.items():
                            out.setdefault(k, v)
                continue
            line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{self.doc.filename}:{line}:{col}: mapping keys must be plain scalars")
            key = key_node.value  # keys are text as written: `0x10:` is the key "0x10", not 16
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
