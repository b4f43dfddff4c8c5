"""The fully resolved ngcws.yaml that ``ngcws config`` prints: a valid ngcws.yaml again.

Every value is written in a form the loader accepts and that gives the same desired state when
loaded back: unset fields left out, ports as ``"IP:HOST:CONTAINER/proto"`` strings, tmpfs and
devices as ``docker run`` writes them, durations with a unit, mounts in long form with absolute
sources, sizes in bytes, ``$`` written ``$$`` (the output is interpolated again when loaded). Entries that come
from an ``env_file`` stay there (the file is listed), unless secrets are shown; secret values are
``<redacted>`` unless secrets are shown, and so is a secret variable's value wherever else it was
interpolated (``command: [train.py, --token, ${HF_TOKEN}]``). Pure.
"""

from __future__ import annotations

from typing import Any

from ngcws.redact import map_strings, masked, shown


def resolved_file(project: Any, show_secrets: bool = False) -> dict[str, Any]:
    """The resolved ngcws.yaml of a loaded :class:`ngcws.load.Project`, as plain data."""
    workspaces = {}
    for name, workspace in project.workspaces.items():
        data = workspace.model_dump(mode="json")
        env = dict(data["env"])
        if not show_secrets:
            env = shown({k: v for k, v in env.items() if k not in workspace.env_from_files}, project.secret_env[name])
            data = masked(data, project.secret_values.get(name, ()))  # secret variables used outside env
        data["env"] = env
        data["ports"] = [port_text(port) for port in data["ports"]]
        if "tmpfs" in data:
            data["tmpfs"] = [f"{path}:{options}" if options else path for path, options in data["tmpfs"].items()]
        if "devices" in data:
            data["devices"] = [f"{d['source']}:{d['target']}:{d['permissions']}" for d in data["devices"]]
        if isinstance(data.get("healthcheck"), dict):
            check = data["healthcheck"]
            for key in ("interval", "timeout", "start_period", "start_interval"):
                if isinstance(check.get(key), int):
                    check[key] = duration_text(check[key])
        workspaces[name] = _escaped(_without_nulls(data))
    return {"name": project.name, "workspaces": workspaces}


def port_text(port: dict[str, Any]) -> str:
    """A canonical port mapping → the string form the loader reads (``127.0.0.1:8888:8888/tcp``)."""
    ip = port["host_ip"]
    host = "" if port["host_port"] is None else str(port["host_port"])
    text = f"{port['container_port']}/{port['protocol']}"
    if ip:
        return f"{'[' + ip + ']' if ':' in ip else ip}:{host}:{text}"
    return f"{host}:{text}" if host else text


def duration_text(nanoseconds: int) -> str:
    """Nanoseconds → a duration the loader reads back (a bare number there means seconds)."""
    return f"{nanoseconds // 10**9}s" if nanoseconds % 10**9 == 0 else f"{nanoseconds}ns"


def _without_nulls(value: Any) -> Any:
    """Maps without their null (unset: the default) entries, at any depth."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    return value


def _escaped(value: Any) -> Any:
    """Every string value with ``$`` written ``$$``, so that loading it again gives it back."""
    return map_strings(value, lambda text: text.replace("$", "$$"))


def dump_yaml(data: Any) -> str:
    """YAML for ``data``. PyYAML writes YAML 1.1 and quotes every string 1.1 would read as
    something else; the few 1.2-only spellings (``0o17``) are read back as text by the only fields
    where a string could hold them (env, labels and command take values as written)."""
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False))
