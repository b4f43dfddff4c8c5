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


def auth_header(image: ImageRef, environ: Mapping[str, str] | None = None) -> str | None:
    """The ``X-Registry-Auth`` header for pulling ``image``, or None to pull anonymously.

    Logins are read from ``$DOCKER_CONFIG/config.json`` (default ``~/.docker``) of ``environ``.
    """
    import docker.auth

    env = os.environ if environ is None else environ
    registry = image.registry
    ngc_key = env.get("NGC_API_KEY")
    if ngc_key and registry == "nvcr.io":
        credentials: Mapping[str, str] | None = {
            "username": "$oauthtoken",
            "password": ngc_key,
            "serveraddress": "nvcr.io",
        }
    else:
        folder = env.get("DOCKER_CONFIG") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
        path = os.path.join(folder, "config.json")
        if not os.path.isfile(path):
            return None
        try:
            config = docker.auth.load_config(config_path=path, credstore_env=None)
            credentials = config.resolve_authconfig(registry)
        except Exception as exc:  # a credential helper that is missing or fails
            raise RegistryAuthError(
                f"cannot read your docker login for {registry} from {path}: {exc}",
                hint=f"Check its credsStore / credHelpers entry, or log in again with `{image.login_command()}`.",
            ) from None
    if not credentials:
        return None
    header: bytes = docker.auth.encode_header(dict(credentials))
    return header.decode("ascii")
