"""``${VAR}`` interpolation, as Docker Compose does it, but never silently empty.

Supported: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}`` (unset),
``${VAR:?message}`` / ``${VAR?message}`` (required), and ``$$`` for a literal ``$``.
A variable that is not set and has no default is an error: a silently empty value is how a mount
turns into ``:/workspace``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_PATTERN = re.compile(
    r"""\$(?:
        (?P<escaped>\$) |
        (?P<named>[A-Za-z_][A-Za-z0-9_]*) |
        \{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\} |
        (?P<invalid>)
    )""",
    re.VERBOSE,
)


class InterpolationError(ValueError):
    """A reference that cannot be resolved; the message is for a person."""


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Substitute the variables in ``value``; raise InterpolationError for undefined ones."""
    if "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        name = match.group("named") or match.group("braced")
        if name is None:
            raise InterpolationError(
                f"invalid interpolation in {value!r}: use ${{VAR}}, ${{VAR:-default}} or $$ for a literal $"
            )
        op, arg = match.group("op"), match.group("arg") or ""
        current = variables.get(name)
        if op in (":-", ":?") and current == "":
            current = None
        if current is not None:
            return current
        if op in (":-", "-"):
            return interpolate(arg, variables)
        if op in (":?", "?"):
            raise InterpolationError(f"${{{name}}} is required: {arg or 'not set'}")
        raise InterpolationError(
            f"variable ${{{name}}} is not set; set it in the environment or in .env, "
            f"or give a default: ${{{name}:-value}}"
        )

    return _PATTERN.sub(replace, value)


def parse_env_file(text: str) -> dict[str, str]:
    """Parse a .env / env_file: ``KEY=VALUE`` lines, ``#`` comments, optional ``export`` and quotes.

    Raises ValueError naming the 1-based line of a malformed entry.
    """
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, val = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise ValueError(f"line {number}: expected KEY=VALUE, got {raw.strip()!r}")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
            val = val[1:-1]
            if raw.strip().split("=", 1)[1].strip()[0] == '"':
                val = val.replace("\\n", "\n").replace('\\"', '"')
        elif " #" in val:
            val = val.split(" #", 1)[0].rstrip()
        out[key] = val
    return out
