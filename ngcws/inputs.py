"""Inputs: everything a desired state was computed from, recorded while it is computed.

The loader reads every file (ngcws.yaml, ``.env``, each ``env_file``), resolves every host path
(bind sources, env files: symlinks followed) and looks up every environment variable through one
:class:`Inputs`. What it records is exactly what the result depends on, taken from the very texts
that were used (so a file edited during a load cannot be recorded with its newer text). The
desired-state cache (:mod:`ngcws.state`) is valid while every recorded input is unchanged; a
watcher uses :attr:`Inputs.files` as the list of files to watch.

Values are recorded as keyed digests (see :mod:`ngcws.redact`), never as text: a cache file holds
no value of a variable or line of an env file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ngcws.redact import digest


class RecordingMapping(Mapping[str, str]):
    """The environment, remembering the digest of each variable looked up (None: not set)."""

    def __init__(self, data: Mapping[str, str], key: bytes) -> None:
        self.data = data
        self.key = key
        self.seen: dict[str, str | None] = {}

    def _record(self, name: str) -> str | None:
        value = self.data.get(name)
        self.seen[name] = None if value is None else digest(self.key, value)
        return value

    def __getitem__(self, key: str) -> str:
        value = self._record(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._record(key) is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self._record(key)
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        raise TypeError("listing every variable would make the cache key meaningless")

    def __len__(self) -> int:
        return len(self.data)


class Inputs:
    """A recorder of the files, paths and variables one load used."""

    def __init__(self, environ: Mapping[str, str], key: bytes) -> None:
        self.key = key
        self.environ = RecordingMapping(environ, key)
        self._files: dict[str, str | None] = {}
        self._paths: dict[str, list[Any]] = {}

    @property
    def files(self) -> list[Path]:
        """Every file the result was computed from (present or looked for), in reading order."""
        return [Path(p) for p in self._files]

    def read(self, path: Path) -> str | None:
        """The text of ``path`` (None if it does not exist); other errors propagate."""
        try:
            text = path.read_text()
        except FileNotFoundError:
            self._files[str(path)] = None
            return None
        self._files[str(path)] = digest(self.key, text)
        return text

    def resolve(self, path: Path) -> Path:
        """``path`` with symlinks resolved, recording where it led and whether it exists."""
        resolved = path.resolve()
        self._paths[str(path)] = [str(resolved), resolved.exists(), resolved.is_file()]
        return resolved

    def record(self) -> dict[str, Any]:
        return {"files": dict(self._files), "paths": dict(self._paths), "environ": dict(self.environ.seen)}


def unchanged(record: dict[str, Any], environ: Mapping[str, str], key: bytes) -> bool:
    """Whether every input in ``record`` (from :meth:`Inputs.record`) is still what it was."""
    for path, was in record["files"].items():
        try:
            now: str | None = digest(key, Path(path).read_text())
        except FileNotFoundError:
            now = None
        except (OSError, UnicodeDecodeError):
            return False
        if now != was:
            return False
    for path, was in record["paths"].items():
        resolved = Path(path).resolve()
        if [str(resolved), resolved.exists(), resolved.is_file()] != was:
            return False
    for name, was in record["environ"].items():
        value = environ.get(name)
        if (None if value is None else digest(key, value)) != was:
            return False
    return True


def read_text(context: Mapping[str, Any] | None, path: Path) -> str:
    """Read ``path`` through the context's recorder, if any (for the model's validators)."""
    inputs = (context or {}).get("inputs")
    if isinstance(inputs, Inputs):
        text = inputs.read(path)
        if text is None:
            raise FileNotFoundError(os.strerror(2), str(path))
        return text
    return path.read_text()


def resolve(context: Mapping[str, Any] | None, path: Path) -> Path:
    """Resolve ``path`` through the context's recorder, if any (for the model's validators)."""
    inputs = (context or {}).get("inputs")
    return inputs.resolve(path) if isinstance(inputs, Inputs) else path.resolve()
