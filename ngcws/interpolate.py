"""``${VAR}`` interpolation and ``.env`` files, as the Compose specification defines them.

Interpolation (Compose spec, *Interpolation*):

* ``$VAR`` and ``${VAR}``: the value of VAR;
* ``${VAR:-default}`` (VAR unset or empty) and ``${VAR-default}`` (VAR unset): the default;
* ``${VAR:?message}`` (unset or empty) and ``${VAR?message}`` (unset): an error with the message;
* ``${VAR:+alt}`` (VAR set and not empty) and ``${VAR+alt}`` (VAR set): ``alt``, else empty;
* defaults, alternatives and messages are interpolated themselves: ``${A:-${B:-x}}``;
* ``$$`` is a literal ``$``; a ``$`` not followed by a name or ``{`` is kept as it is (``$5``).

One difference, on purpose: a variable that is not set and has no default is an error, not a
silently empty string (that is how a mount turns into ``:/workspace``).

``.env`` and ``env_file`` (Compose's *Syntax for environment files*): ``KEY=VALUE`` lines, ``#``
comment lines and blank lines; an optional ``export``; unquoted values end at `` #`` (a comment)
and are interpolated; double-quoted values may span lines, know ``\\n \\r \\t \\\\ \\" \\$``
escapes and are interpolated; single-quoted values are literal (only ``\\'`` is an escape); a
comment may follow a closing quote; ``KEY`` alone takes KEY's value from the variables, if set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A reference that cannot be resolved; the message is for a person."""


def interpolate(value: str, variables: Mapping[str, str], used: set[str] | None = None) -> str:
    """Substitute the variables in ``value``; raise InterpolationError for undefined ones.

    The names of the variables whose values were substituted are added to ``used``.
    """
    if "$" not in value:
        return value
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        dollar = value.find("$", i)
        if dollar < 0:
            out.append(value[i:])
            break
        out.append(value[i:dollar])
        nxt = value[dollar + 1 : dollar + 2]
        if nxt == "$":
            out.append("$")
            i = dollar + 2
        elif nxt == "{":
            end = _closing_brace(value, dollar + 2)
            out.append(_braced(value[dollar + 2 : end], variables, used))
            i = end + 1
        elif (match := _NAME.match(value, dollar + 1)) is not None:
            out.append(_lookup(match.group(), None, "", variables, used))
            i = match.end()
        else:  # `$5`, `$ `, a trailing `$`: not a reference, kept as written
            out.append("$")
            i = dollar + 1
    return "".join(out)


def _closing_brace(value: str, start: int) -> int:
    """The index of the ``}`` closing the ``${`` whose content starts at ``start``."""
    depth, i = 1, start
    while i < len(value):
        if value.startswith("$$", i):
            i += 2
            continue
        if value.startswith("${", i):
            depth += 1
            i += 2
            continue
        if value[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError("invalid interpolation: a ${ is not closed by }")


def _braced(body: str, variables: Mapping[str, str], used: set[str] | None) -> str:
    # The messages never quote the value: it may hold a secret next to the mistake.
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError(
            "invalid interpolation: ${ must start with a variable name;"
            " use ${VAR}, ${VAR:-default}, ${VAR:+alt} or $$ for a literal $"
        )
    name, rest = match.group(), body[match.end() :]
    if not rest:
        return _lookup(name, None, "", variables, used)
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise InterpolationError(
            f"invalid interpolation: {rest[0]!r} after ${{{name}; Compose knows"
            " :- - :? ? :+ + (and no other shell expansions)"
        )
    return _lookup(name, op, rest[len(op) :], variables, used)


def _lookup(name: str, op: str | None, arg: str, variables: Mapping[str, str], used: set[str] | None) -> str:
    current = variables.get(name)
    is_set = current is not None
    filled = is_set and current != ""
    if op in (":+", "+"):
        wanted = filled if op == ":+" else is_set
        return interpolate(arg, variables, used) if wanted else ""
    if (filled if op in (":-", ":?") else is_set) and current is not None:
        if used is not None:
            used.add(name)
        return current
    if op in (":-", "-"):
        return interpolate(arg, variables, used)
    if op in (":?", "?"):
        message = interpolate(arg, variables, used) if arg else ("not set or empty" if op == ":?" else "not set")
        raise InterpolationError(f"${{{name}}} is required: {message}")
    raise InterpolationError(
        f"variable ${{{name}}} is not set; set it in the environment or in .env, or give a default: ${{{name}:-value}}"
    )


# --- .env / env_file --------------------------------------------------------------------------------

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "$$", "'": "'"}


class Layered(Mapping[str, str]):
    """``variables`` first, then ``own`` (a file's entries). Looked up by name, never listed, so
    that a recording ``variables`` mapping sees every name that matters."""

    def __init__(self, variables: Mapping[str, str], own: dict[str, str], secret: frozenset[str] = frozenset()) -> None:
        self.variables = variables
        self.own = own
        #: The names of ``own`` entries whose values are secret (see parse_env_file).
        self.secret = secret

    def __getitem__(self, key: str) -> str:
        found = self.variables.get(key)
        if found is not None:
            return found
        return self.own[key]

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        raise TypeError("the variables are looked up one by one, never listed")

    def __len__(self) -> int:
        return len(self.own)


def parse_env_file(
    text: str,
    variables: Mapping[str, str] | None = None,
    used: set[str] | None = None,
    secret: set[str] | None = None,
) -> dict[str, str]:
    """Parse a ``.env`` / ``env_file`` text; values are interpolated with ``variables`` (then the
    file's own earlier entries) unless single-quoted.

    The names of the entries whose values are secret are added to ``secret``: a secret name, or a
    value that used a secret variable (``INDIRECT=${HF_TOKEN}``; see ngcws.redact.secret_variable).

    Raises ValueError naming the 1-based line of a malformed entry (never quoting a value: the
    file may hold secrets).
    """
    out: dict[str, str] = {}
    lookup = Layered(variables if variables is not None else {}, out)
    lines = text.removeprefix("\ufeff").splitlines()  # a byte order mark is no part of line 1
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith(("export ", "export\t")):
            line = line[len("export") :].lstrip()
        match = _KEY.match(line)
        if match is None:
            raise ValueError(f"line {number}: expected KEY=VALUE")
        key, rest = match.group(), line[match.end() :].lstrip(" \t")
        if not rest or rest.startswith("#"):
            if (inherited := lookup.get(key)) is not None:  # `KEY` alone: from the environment
                _taint(key, {key}, variables, secret)
                if used is not None:
                    used.add(key)
                out[key] = inherited
            continue
        if not rest.startswith("="):
            raise ValueError(f"line {number}: expected KEY=VALUE after {key!r}")
        raw = rest[1:].lstrip(" \t")
        these: set[str] = set()
        try:
            if raw[:1] in ("'", '"'):
                value, index = _quoted(raw, lines, index, number)
                if raw[0] == '"':
                    value = interpolate(value, lookup, these)
            else:
                value = re.split(r"[ \t]#", raw, maxsplit=1)[0].rstrip()
                value = interpolate(value, lookup, these)
        except InterpolationError as exc:
            raise ValueError(f"line {number}: {key}: {exc}") from None
        if used is not None:
            used.update(these)
        _taint(key, these, variables, secret)
        out[key] = value
    return out


def _taint(key: str, these: set[str], variables: Mapping[str, str] | None, secret: set[str] | None) -> None:
    from ngcws.redact import looks_secret, secret_variable

    if secret is None:
        return
    if looks_secret(key) or any(n in secret or secret_variable(n, variables or {}) for n in these):
        secret.add(key)


def _quoted(raw: str, lines: list[str], index: int, number: int) -> tuple[str, int]:
    """A quoted value starting at ``raw`` (which may continue on the following lines)."""
    quote, text, pos = raw[0], raw, 1
    value: list[str] = []
    while True:
        while pos < len(text):
            char = text[pos]
            if char == "\\" and pos + 1 < len(text):
                escaped = text[pos + 1]
                if (quote == '"' and escaped in _ESCAPES) or (quote == "'" and escaped == "'"):
                    value.append(_ESCAPES[escaped])
                    pos += 2
                    continue
            if char == quote:
                after = text[pos + 1 :].strip()
                if after and not after.startswith("#"):
                    raise ValueError(f"line {number}: unexpected text after the closing quote")
                return "".join(value), index
            value.append(char)
            pos += 1
        if index >= len(lines):
            raise ValueError(f"line {number}: the {quote} quote is not closed")
        value.append("\n")
        text, pos = lines[index], 0
        index += 1
