"""The desired state of this folder's project, computed once per change of its inputs.

Validating ngcws.yaml needs pydantic, whose import and model building cost more than everything
else ``ngcws up`` does when nothing has changed. The computed :class:`DesiredState` is therefore
cached per config file, together with everything it was computed from: the exact text of
ngcws.yaml, ``.env`` and each ``env_file``, the value of every variable the computation looked up,
the home folder, the invoking user, the ``-p`` override and the ngcws version. Any difference, or a
bind-mount source that no longer exists, means a miss and a full load.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ngcws import __version__
from ngcws.locate import Located, locate, variables_for
from ngcws.spec import DesiredState, Identity, Invoker


def current_invoker() -> Invoker:
    import grp
    import pwd

    uid, gid = os.getuid(), os.getgid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = os.environ.get("USER") or f"user{uid}"
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = name
    return Invoker(uid=uid, gid=gid, name=name, group=group)


class RecordingMapping(Mapping[str, str]):
    """The interpolation variables, remembering which ones were looked up (and found or not)."""

    def __init__(self, data: Mapping[str, str]) -> None:
        self.data = data
        self.seen: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str:
        self.seen[key] = self.data.get(key)
        return self.data[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.seen[key] = self.data.get(key)
        return key in self.data

    def get(self, key: str, default: Any = None) -> Any:
        self.seen[key] = self.data.get(key)
        return self.data.get(key, default)

    def __iter__(self) -> Iterator[str]:
        raise TypeError("listing every variable would make the cache key meaningless")

    def __len__(self) -> int:
        return len(self.data)


def load_state(explicit: str | None = None, project_override: str | None = None) -> DesiredState:
    """The desired state of the project found from here (or ``-f``), from cache when valid."""
    located = locate(explicit)
    invoker = current_invoker()
    variables = variables_for(located)
    cache = _cache_path(located)
    found = _read(cache, located, variables, invoker, project_override)
    if found is not None:
        return found
    from ngcws.load import load_located

    recorder = RecordingMapping(variables)
    project = load_located(located, project_override, recorder)
    identity = Identity(project.name, str(project.directory), str(project.config_file))
    from ngcws.spec import desired_state

    state = desired_state(identity, project.workspaces, invoker)
    env_files = sorted({p for ws in project.workspaces.values() for p in ws.env_file})
    key = _key(located, invoker, project_override, recorder.seen, env_files)
    _write(cache, {"key": key, "state": state.to_json()})
    return state


def _key(
    located: Located, invoker: Invoker, override: str | None, variables: dict[str, str | None], env_files: list[str]
) -> dict[str, Any]:
    def text(path: Path) -> str | None:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return None

    return {
        "version": __version__,
        "config": text(located.config_file),
        "dotenv": text(located.directory / ".env"),
        "env_files": {p: text(Path(p)) for p in env_files},
        "variables": variables,
        "home": os.path.expanduser("~"),
        "invoker": [invoker.uid, invoker.gid, invoker.name, invoker.group],
        "override": override,
    }


def _read(
    path: Path, located: Located, variables: Mapping[str, str], invoker: Invoker, override: str | None
) -> DesiredState | None:
    try:
        data = json.loads(path.read_text())
        cached = data["key"]
        key = _key(
            located, invoker, override, {k: variables.get(k) for k in cached["variables"]}, list(cached["env_files"])
        )
        if key != cached:
            return None
        state = DesiredState.from_json(data["state"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for container in state.containers.values():
        for mount in container.essence["mounts"]:
            if mount["type"] == "bind" and not os.path.exists(mount["source"]):
                return None  # the loader would refuse it (or create_host_path would make it)
    return state


def _cache_path(located: Located) -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    flat = str(located.config_file).strip("/").replace("/", "%")
    return Path(root) / "ngcws" / "state" / f"{flat}.json"


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass  # a cache we cannot write only costs time
