"""Registry credentials: the user's existing docker logins, or NGC_API_KEY for nvcr.io.

This is the one place that imports docker-py: its ``docker.auth`` already reads
``$DOCKER_CONFIG/config.json``, ``credsStore`` and ``credHelpers`` exactly as the docker CLI does.
It is imported only when something is about to be pulled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


def registry_of(repository: str) -> str:
    """The registry host of a repository (``docker.io`` when none is named)."""
    first, sep, _ = repository.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "docker.io"


def auth_header(repository: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The ``X-Registry-Auth`` header for pulling ``repository``, or None to pull anonymously."""
    import docker.auth

    env = os.environ if environ is None else environ
    registry = registry_of(repository)
    ngc_key = env.get("NGC_API_KEY")
    if ngc_key and registry == "nvcr.io":
        credentials: Mapping[str, str] | None = {
            "username": "$oauthtoken",
            "password": ngc_key,
            "serveraddress": "nvcr.io",
        }
    else:
        config = docker.auth.load_config(config_path=None, credstore_env=None)
        credentials = config.resolve_authconfig(registry)
    if not credentials:
        return None
    header: bytes = docker.auth.encode_header(dict(credentials))
    return header.decode("ascii")
