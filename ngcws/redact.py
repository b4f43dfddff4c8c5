"""Secrets never leave the process: the one rule for which values are secret, and how they are shown.

An env value is secret when its name looks secret (it contains ``KEY``, ``TOKEN``, ``SECRET``,
``PASSWORD``, ``PASS`` or ``CREDENTIAL``, in any case), when it came from an ``env_file``, or when it
interpolates a secret variable: one whose name looks secret (``WANDB: ${WANDB_API_KEY}``), or a
``.env`` entry whose own value used a secret variable (``.env``: ``INDIRECT=${HF_TOKEN}``; file:
``VIA: ${INDIRECT}``), through any number of such steps. Secrecy follows the value. The container gets
the value; container labels, the desired-state cache, ``plan``/``up``/``ps`` output and error
messages get at most a keyed digest (HMAC-SHA256 with a per-user key), so that a changed secret is
still seen as drift, but the value cannot be read back or guessed from a list of candidates
without the key. Pure: the key is passed in (see :mod:`ngcws.state` for where it is kept).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

PATTERNS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASS", "CREDENTIAL")
PREFIX = "secret:hmac-sha256:"
SHOWN = "<redacted>"


def looks_secret(name: str) -> bool:
    """Whether a variable named ``name`` holds a secret by its name alone."""
    upper = name.upper()
    return any(pattern in upper for pattern in PATTERNS)


def secret_variable(name: str, variables: Mapping[str, str]) -> bool:
    """Whether the interpolation variable ``name`` holds a secret: by its name, or because it is a
    ``.env`` entry whose value used a secret variable itself (``INDIRECT=${HF_TOKEN}``), at any
    depth of ``.env`` layers (``variables`` is an ngcws.interpolate.Layered for those)."""
    if looks_secret(name):
        return True
    while variables is not None:
        if name in getattr(variables, "secret", ()):
            return True
        variables = getattr(variables, "variables", None)  # type: ignore[assignment]
    return False


def digest(key: bytes, value: str) -> str:
    """The keyed digest that stands for a secret value (``secret:hmac-sha256:<hex>``)."""
    return PREFIX + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def is_digest(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def key_id(key: bytes) -> str:
    """A fingerprint of the key (not the key): which key digested a value."""
    return hashlib.sha256(b"ngcws-key-id:" + key).hexdigest()[:16]


def digested(env: Mapping[str, str], secret: Iterable[str], key: bytes) -> dict[str, str]:
    """``env`` with each secret value replaced by its digest."""
    names = set(secret)
    return {k: digest(key, v) if k in names else v for k, v in env.items()}


def shown(env: Mapping[str, str], secret: Iterable[str]) -> dict[str, str]:
    """``env`` for a person: each secret value replaced by ``<redacted>``."""
    names = set(secret)
    return {k: SHOWN if k in names else v for k, v in env.items()}


#: Essence fields where a secret value is replaced by a digest of the whole string that holds it.
#: Other fields (image, mounts, user, …) are used as they are; ``plan``/``up`` name a secret there.
CONCEALED = ("command", "entrypoint", "labels", "healthcheck", "working_dir", "hostname")


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` with ``change`` applied to every string in it, at any depth of maps and lists."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, change) for v in value]
    return value


def strings(value: Any) -> Iterator[str]:
    """Every string in ``value``, at any depth of maps, lists and tuples."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def holds_secret(value: Any, secrets: Iterable[str]) -> bool:
    """Whether any string inside ``value`` contains one of ``secrets``."""
    found = list(secrets)
    return any(secret in text for text in strings(value) for secret in found)


def holds_digest(value: Any) -> bool:
    """Whether a digest (a concealed secret) is anywhere inside ``value``."""
    return any(is_digest(text) for text in strings(value))


def conceal(essence: Mapping[str, Any], secrets: Iterable[str], key: bytes) -> dict[str, Any]:
    """``essence`` with each string of the :data:`CONCEALED` fields that contains a secret value
    replaced by its keyed digest (a changed secret is still drift; the value is not kept)."""
    found = [s for s in secrets if s]

    def hide(text: str) -> str:
        return digest(key, text) if any(secret in text for secret in found) else text

    return {k: map_strings(v, hide) if k in CONCEALED and found else v for k, v in essence.items()}


def masked(value: Any, secrets: Iterable[str]) -> Any:
    """``value`` with every secret value inside its strings shown as :data:`SHOWN`, at any depth
    (for output that quotes the file's values: ``ngcws config``)."""
    found = sorted((s for s in secrets if s), key=len, reverse=True)

    def hide(text: str) -> str:
        for secret in found:
            text = text.replace(secret, SHOWN)
        return text

    return map_strings(value, hide) if found else value
