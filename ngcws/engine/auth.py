"""Registry credentials: the user's existing docker logins, or NGC_API_KEY for nvcr.io.

This is the one place that imports docker-py: its ``docker.auth`` already reads
``$DOCKER_CONFIG/config.json``, ``credsStore`` and ``credHelpers`` exactly as the docker CLI does.
It is imported only when something is about to be pulled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ngcws.errors import RegistryAuthError
from ngcws.imageref import ImageRef


def stored_credentials(image: ImageRef, environ: Mapping[str, str] | None = None) -> tuple[dict[str, str] | None, str]:
    """The credentials a pull of ``image`` sends, and where they come from (``NGC_API_KEY`` or
    ``docker login``); ``(None, "")`` to pull anonymously.

    Logins are read from ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``) of ``environ``.
    """
    import docker.auth

    env = os.environ if environ is None else environ
    registry = image.registry
    ngc_key = env.get("NGC_API_KEY")
    if ngc_key and registry == "nvcr.io":
        return {"username": "$oauthtoken", "password": ngc_key, "serveraddress": "nvcr.io"}, "NGC_API_KEY"
    folder = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    path = os.path.join(folder, "config.json")
    if not os.path.isfile(path):
        return None, ""
    try:
        config = docker.auth.load_config(config_path=path, credstore_env=None)
        credentials = config.resolve_authconfig(registry)
    except Exception as exc:  # a credential helper that is missing or fails
        raise RegistryAuthError(
            f"cannot read your docker login for {registry} from {path}: {exc}",
            hint=f"Check its credsStore / credHelpers entry, or log in again with `{image.login_command()}`.",
        ) from None
    return (dict(credentials), "docker login") if credentials else (None, "")


def pull_auth(image: ImageRef, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """The ``X-Registry-Auth`` header for pulling ``image`` (None: anonymously), and where its
    credentials come from (:func:`stored_credentials`)."""
    import docker.auth

    credentials, source = stored_credentials(image, environ)
    if not credentials:
        return None, ""
    header: bytes = docker.auth.encode_header(credentials)
    return header.decode("ascii"), source
