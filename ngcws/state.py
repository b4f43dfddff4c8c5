"""The desired state of this folder's project, computed once per change of its inputs.

Validating ngcws.yaml needs pydantic, whose import and model building cost more than everything
else ``ngcws up`` does when nothing has changed. The computed :class:`DesiredState` is therefore
cached per config file, with a record of everything it was computed from (:mod:`ngcws.inputs`):
the digest of the exact text of ngcws.yaml, its override files (ngcws.override.yaml, also while
it does not exist, or the ``-f`` files), ``.env`` and each ``env_file`` as they were read, where
each host path (bind sources, env files) led with symlinks resolved, every environment variable
looked up, the config file's own path, home, invoking user, ``-p`` and ngcws version. A hit
returns exactly what a fresh load would; any difference is a miss and a full load.

The cache holds no secret value (:mod:`ngcws.redact`): inputs are keyed digests, and the env
values of secret names are left out of the cached create requests. On a hit they are taken again
from the files and the environment (YAML only, no pydantic) and checked against the digests in
the cached state; a mismatch is a miss. Cache files and the key are written with mode 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ngcws import __version__
from ngcws.inputs import Inputs, unchanged
from ngcws.locate import Files, Located, locate, variables_for
from ngcws.redact import digest, key_id
from ngcws.spec import DesiredContainer, DesiredState, Identity, Invoker, Secrets

_HIDDEN = "<not cached>"


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


def cache_root() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "ngcws"


def user_key() -> bytes:
    """This user's key for digests of secret values: 32 random bytes in the cache folder (0600),
    made on first use. Without a writable cache folder, a key derived from the uid and the machine
    id (weaker: the same for every process of this user, guessable by others on the machine)."""
    path = cache_root() / "secret.key"
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".secret.key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(os.urandom(32))
        try:
            os.link(tmp, path)  # atomic, and never replaces a key another process made first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except OSError:
        pass
    machine = b""
    for source in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            machine = Path(source).read_bytes().strip()
            break
        except OSError:
            continue
    return hashlib.sha256(b"ngcws-fallback-key:" + machine + str(os.getuid()).encode()).digest()


def compute_state(
    located: Located,
    project_override: str | None,
    invoker: Invoker,
    key: bytes,
    environ: Mapping[str, str] | None = None,
) -> tuple[DesiredState, Inputs]:
    """A fresh load, and the inputs it used (``inputs.files``: the files to watch for changes)."""
    from ngcws.load import load_located
    from ngcws.spec import desired_state

    inputs = Inputs(os.environ if environ is None else environ, key)
    variables = variables_for(located, inputs=inputs)
    project = load_located(located, project_override, variables, inputs)
    identity = Identity(project.name, str(project.directory), str(project.config_file))
    state = desired_state(
        identity, project.workspaces, invoker, Secrets(key, project.secret_env, project.secret_values)
    )
    return state, inputs


def input_files(explicit: Files = None, project_override: str | None = None) -> list[Path]:
    """The files the desired state of the project found from here is computed from (ngcws.yaml, its
    override files and ``.env`` even while they do not exist, each env_file): what a watcher watches."""
    located = locate(explicit)
    _, inputs = compute_state(located, project_override, current_invoker(), user_key())
    return inputs.files


def load_state(explicit: Files = None, project_override: str | None = None) -> DesiredState:
    """The desired state of the project found from here (or ``-f``), from cache when valid."""
    located = locate(explicit)
    invoker = current_invoker()
    key = user_key()
    cache = cache_path(located)
    identity_key = _key(located, invoker, project_override, key)
    found = _read(cache, identity_key, located, key)
    if found is not None:
        return found
    state, inputs = compute_state(located, project_override, invoker, key)
    if any(c.concealed for c in state.containers.values()):
        with contextlib.suppress(OSError):  # its create requests hold secret values: not kept on disk
            cache.unlink()
    else:
        _write(cache, {"key": identity_key, "inputs": inputs.record(), "state": _without_secrets(state).to_json()})
    return state


def identity_state(explicit: Files = None, project_override: str | None = None) -> tuple[DesiredState, str | None]:
    """For ``down``, ``stop`` and ``ps``, which need only the project's identity (name and folder)
    and what the containers' labels say: the desired state when ngcws.yaml resolves, else the
    identity alone (no desired containers) and a note saying why. Tearing down never needs the
    file's variables or env files; ``-p NAME`` without a file names the project of this folder,
    as ``docker compose -p NAME down`` does."""
    from ngcws.errors import ConfigError, ConfigNotFound
    from ngcws.locate import CONFIG_NAME, project_name

    try:
        located = locate(explicit)
    except ConfigNotFound:
        if project_override is None or explicit or os.environ.get("NGCWS_FILE"):
            raise
        folder = Path.cwd().resolve()
        name = project_name(Located(folder / CONFIG_NAME, folder), None, project_override)
        note = f"no {CONFIG_NAME} here: acting on the containers labelled as project {name!r}"
        return DesiredState(Identity(name, str(folder), str(folder / CONFIG_NAME)), (), {}), note
    try:
        return load_state(explicit, project_override), None
    except ConfigNotFound:
        raise
    except ConfigError as exc:
        why = exc.message.splitlines()[0]
    name, workspaces = _identity_of(located, project_override)
    note = f"{why}\nacting on the containers' labels only (project {name!r}, {located.directory})"
    return DesiredState(Identity(name, str(located.directory), str(located.config_file)), workspaces, {}), note


def _identity_of(located: Located, project_override: str | None) -> tuple[str, tuple[str, ...]]:
    """The project name and workspace names of a file that does not resolve: the YAML as written,
    with only the ``name:`` interpolated (when its variables are set)."""
    from ngcws.errors import ConfigError
    from ngcws.interpolate import InterpolationError, interpolate
    from ngcws.locate import normalize_name, project_name
    from ngcws.yamlsource import parse

    try:
        variables: Mapping[str, str] = variables_for(located)
    except ConfigError:
        variables = os.environ
    declared: Any = None
    names: dict[str, None] = {}
    for path in located.config_files:  # ngcws.yaml and its overrides: the last name wins, workspaces add up
        if not path.is_file():
            continue
        data = parse(path.read_text(), str(path)).data
        data = data if isinstance(data, dict) else {}
        declared = data.get("name", declared)
        workspaces = data.get("workspaces")
        names.update(dict.fromkeys(str(k) for k in workspaces) if isinstance(workspaces, dict) else {})
    if isinstance(declared, str) and project_override is None:
        try:
            declared = interpolate(declared, variables)
        except InterpolationError as exc:
            raise ConfigError(
                f"{located.config_file}: name: {exc}", hint="or pass the project name: ngcws -p NAME ..."
            ) from None
        if normalize_name(declared) != declared:
            raise ConfigError(f"{located.config_file}: name: {declared!r} must match [a-z0-9][a-z0-9_-]*")
    return project_name(located, declared if isinstance(declared, str) else None, project_override), tuple(names)


def _key(located: Located, invoker: Invoker, override: str | None, key: bytes) -> dict[str, Any]:
    return {
        "version": __version__,
        "config_file": str(located.config_file),
        "config_files": [str(p) for p in located.config_files],
        "directory": str(located.directory),
        "home": os.path.expanduser("~"),
        "invoker": [invoker.uid, invoker.gid, invoker.name, invoker.group],
        "override": override,
        "key_id": key_id(key),
    }


def _read(path: Path, identity_key: dict[str, Any], located: Located, key: bytes) -> DesiredState | None:
    try:
        data = json.loads(path.read_text())
        if data["key"] != identity_key or not unchanged(data["inputs"], os.environ, key):
            return None
        state = DesiredState.from_json(data["state"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if any(c.secret_env for c in state.containers.values()):
        return _with_secrets(state, located, key)
    return state


def _without_secrets(state: DesiredState) -> DesiredState:
    """``state`` with the values of secret env names taken out of the create requests."""
    containers = {}
    for name, container in state.containers.items():
        if container.secret_env:
            env = [_entry(item, container.secret_env, lambda _: _HIDDEN) for item in container.request["Env"]]
            container = container._replace(request={**container.request, "Env": env})
        containers[name] = container
    return state._replace(containers=containers)


def _entry(item: str, secret: tuple[str, ...], value: Any) -> str:
    name, _, _ = item.partition("=")
    return f"{name}={value(name)}" if name in secret else item


def _with_secrets(state: DesiredState, located: Located, key: bytes) -> DesiredState | None:
    """Put the secret env values back, taken again from the files and the environment; None
    unless each one has the digest the cached state holds."""
    try:
        found = secret_values(state, located)
    except Exception:  # whatever a fresh load would say about it, it says it on the miss
        return None
    containers: dict[str, DesiredContainer] = {}
    for name, container in state.containers.items():
        values = found.get(name, {})
        for secret in container.secret_env:
            value = values.get(secret)
            if value is None or digest(key, value) != container.essence["env"].get(secret):
                return None
        env = [_entry(item, container.secret_env, values.__getitem__) for item in container.request["Env"]]
        containers[name] = container._replace(request={**container.request, "Env": env})
    return state._replace(containers=containers)


def secret_values(state: DesiredState, located: Located) -> dict[str, dict[str, str]]:
    """Per workspace with secrets, its env (env_file merged under env) from YAML alone."""
    from ngcws.interpolate import parse_env_file
    from ngcws.load import take_as_written
    from ngcws.locate import read_document
    from ngcws.values import parse_mapping

    variables = variables_for(located)
    doc = read_document(located, variables)
    take_as_written(doc)
    out: dict[str, dict[str, str]] = {}
    for name, container in state.containers.items():
        if not container.secret_env:
            continue
        raw = doc.data["workspaces"][name]
        files = raw.get("env_file") or []
        env: dict[str, str] = {}
        for file in [files] if isinstance(files, str) else files:
            path = (located.directory / os.path.expanduser(file)).resolve()
            env.update(parse_env_file(path.read_text(), variables))
        env.update(parse_mapping(raw.get("env"), "env", variables))
        out[name] = env
    return out


def cache_path(located: Located) -> Path:
    """One cache file per list of config files: a digest of their paths, so no two lists share one."""
    name = hashlib.sha256("\0".join(map(str, located.config_files)).encode()).hexdigest()[:32]
    return cache_root() / "state" / f"{name}.json"


def _write(path: Path, data: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass  # a cache we cannot write only costs time
