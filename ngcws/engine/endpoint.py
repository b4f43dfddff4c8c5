"""Which engine to talk to, and why: the docker CLI's own resolution, standard library only.

Precedence, as ``docker`` has it (cli/command/cli.go ``resolveContextName``):

1. ``--context`` / ``-c`` on ngcws's command line;
2. ``DOCKER_HOST`` (the *default* context, with ``DOCKER_TLS_VERIFY`` / ``DOCKER_TLS`` and
   ``DOCKER_CERT_PATH`` for ``tcp://``);
3. ``DOCKER_CONTEXT``;
4. ``currentContext`` in ``config.json`` of the docker config folder (``DOCKER_CONFIG`` or
   ``~/.docker``);
5. the default socket ``unix:///var/run/docker.sock``.

A named context is read from the config folder's context store, exactly where ``docker context
create`` writes it: ``contexts/meta/<sha256(name)>/meta.json`` (its ``docker`` endpoint: ``Host``,
``SkipTLSVerify``) and ``contexts/tls/<sha256(name)>/docker/{ca,cert,key}.pem``. The context called
``default`` is DOCKER_HOST or the default socket. Nothing here opens a connection or imports
``ssl``: a local socket stays as cheap as before (``ngcws exec`` is on the hot path).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from ngcws.errors import EngineUnavailable, UsageError

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_CONTEXT = "default"

#: Set by the command line's ``--context`` / ``-c`` (fastpath.py, cli.py) before any engine is made.
selected_context: str | None = None


class TLS(NamedTuple):  # NamedTuple, not a dataclass: importing dataclasses costs `ngcws exec` ~4 ms
    """TLS for a ``tcp://`` endpoint; files that do not exist are left out, as docker does."""

    ca: str | None
    cert: str | None
    key: str | None
    verify: bool


class Endpoint(NamedTuple):
    host: str  # unix:///path, tcp://host:port, ssh://[user@]host[:port]
    tls: TLS | None
    context: str  # "default" or the context's name
    reason: str  # why this one: "DOCKER_HOST", "--context flag", ...

    @property
    def scheme(self) -> str:
        return urlsplit(self.host).scheme

    @property
    def local_socket(self) -> str | None:
        """The socket's path when the engine is a unix socket on this host."""
        return urlsplit(self.host).path if self.scheme == "unix" else None

    def describe(self) -> str:
        """``tcp://h:2376 (TLS, verified): context "remote", from DOCKER_CONTEXT``."""
        how = ""
        if self.tls is not None:
            how = " (TLS, verified)" if self.tls.verify else " (TLS, server not verified)"
        where = f'context "{self.context}"' if self.context != DEFAULT_CONTEXT else "default context"
        return f"{self.host}{how}: {where}, from {self.reason}"


def config_dir(environ: Mapping[str, str]) -> Path:
    """The docker CLI's config folder: ``DOCKER_CONFIG`` or ``~/.docker``."""
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"])
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".docker"


def resolve(
    context_flag: str | None = None, environ: Mapping[str, str] | None = None, host: str | None = None
) -> Endpoint:
    """The endpoint ``docker`` would use with the same flag, environment and config folder.

    ``host`` is an explicit endpoint (like ``docker -H``), used by tests for private engines.
    """
    env = os.environ if environ is None else environ
    if context_flag is None:
        context_flag = selected_context
    if host and context_flag:
        raise UsageError("conflicting options: either specify a host or a context, not both")
    if host:
        return _default(host, env, "an explicit host")
    if context_flag:
        return _named(context_flag, env, "the --context flag")
    if env.get("DOCKER_HOST"):
        return _default(env["DOCKER_HOST"], env, "DOCKER_HOST")
    if env.get("DOCKER_CONTEXT"):
        return _named(env["DOCKER_CONTEXT"], env, "DOCKER_CONTEXT")
    current, config_file = _current_context(env)
    if current:
        return _named(current, env, f"currentContext in {config_file}")
    return _default(DEFAULT_HOST, env, "the built-in default (no context chosen)")


def _current_context(env: Mapping[str, str]) -> tuple[str | None, Path]:
    path = config_dir(env) / "config.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, path
    except OSError as exc:
        raise UsageError(f"cannot read the docker config {path}: {exc.strerror}") from None
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise UsageError(f"the docker config {path} is not valid JSON: {exc}") from None
    current = config.get("currentContext") if isinstance(config, dict) else None
    return (str(current) if current else None), path


def _default(host: str, env: Mapping[str, str], reason: str) -> Endpoint:
    """The default context: ``host`` with the DOCKER_TLS* environment for tcp://."""
    host = _normalise(host)
    tls = None
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    if urlsplit(host).scheme == "tcp" and (verify or env.get("DOCKER_TLS")):
        certs = Path(env.get("DOCKER_CERT_PATH") or config_dir(env))
        ca = _existing(certs / "ca.pem")
        if ca is None:  # docker refuses too ("open .../ca.pem: no such file or directory")
            flag = "DOCKER_TLS_VERIFY" if verify else "DOCKER_TLS"
            raise UsageError(
                f"{flag} is set for {host}, but there is no {certs / 'ca.pem'}",
                hint="Set DOCKER_CERT_PATH to the folder with ca.pem, cert.pem and key.pem.",
            )
        tls = TLS(ca, _existing(certs / "cert.pem"), _existing(certs / "key.pem"), verify)
    return Endpoint(_with_port(host), tls, DEFAULT_CONTEXT, reason)


def _named(name: str, env: Mapping[str, str], reason: str) -> Endpoint:
    if name == DEFAULT_CONTEXT:  # the default context is DOCKER_HOST, else the default socket
        if env.get("DOCKER_HOST"):
            return _default(env["DOCKER_HOST"], env, f"{reason}, then DOCKER_HOST")
        return _default(DEFAULT_HOST, env, reason)
    import hashlib  # only for a named context

    digest = hashlib.sha256(name.encode()).hexdigest()
    store = config_dir(env) / "contexts"
    meta_path = store / "meta" / digest / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise UsageError(
            f'context "{name}" does not exist (chosen by {reason}; looked in {store})',
            hint="`docker context ls` lists the contexts; `docker context create` makes one.",
        ) from None
    except (OSError, ValueError) as exc:
        raise UsageError(f'context "{name}": cannot read {meta_path}: {exc}') from None
    docker = (meta.get("Endpoints") or {}).get("docker") or {}
    host = docker.get("Host")
    if not host:
        raise EngineUnavailable(f'context "{name}" has no docker endpoint ({meta_path})')
    host = _normalise(str(host))
    tls_dir = store / "tls" / digest / "docker"
    files = [_existing(tls_dir / f) for f in ("ca.pem", "cert.pem", "key.pem")]
    skip_verify = bool(docker.get("SkipTLSVerify"))
    tls = None
    if urlsplit(host).scheme == "tcp" and (any(files) or skip_verify):
        tls = TLS(files[0], files[1], files[2], not skip_verify)
    return Endpoint(_with_port(host), tls, name, reason)


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def _normalise(host: str) -> str:
    host = host.strip()
    if host.startswith("/"):
        return f"unix://{host}"
    if host.startswith("http://"):
        return "tcp://" + host[len("http://") :]
    return host


def _with_port(host: str) -> str:
    """``tcp://h`` is ``tcp://h:2375``, with or without TLS, as the docker CLI has it."""
    parts = urlsplit(host)
    if parts.scheme == "tcp" and parts.port is None:
        return f"tcp://{parts.hostname or 'localhost'}:2375"
    return host
