"""Image references: the one parser of ngcws for ``[REGISTRY/]PATH[:TAG][@DIGEST]``. Pure.

Docker's rules (distribution/reference): the first part names a registry only if it has a dot
or a port or is ``localhost``; otherwise the image comes from Docker Hub (``docker.io``), so
``nvidia/cuda:12.2.0-base`` is pulled from docker.io, not from a host called ``nvidia``. The
enroot/pyxis spelling ``nvcr.io#nvidia/pytorch:23.08-py3`` (NVIDIA's guide) is accepted and
normalised. Validation, pulling, logins and error messages all read references through here.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_DOMAIN = rf"(?:localhost(?::\d+)?|{_LABEL}(?:\.{_LABEL})+(?::\d+)?|{_LABEL}:\d+)"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[a-z0-9]+:[a-f0-9]{32,}"
_REFERENCE = re.compile(
    rf"^(?:(?P<registry>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
#: The same language for the JSON Schema (which also accepts enroot's REGISTRY#REPOSITORY form).
IMAGE_PATTERN = rf"^(?:{_DOMAIN}[/#])?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$"
EXAMPLE = "nvcr.io/nvidia/pytorch:23.08-py3"


class ImageRef(NamedTuple):
    """A parsed reference; ``name`` is the repository exactly as written (what the engine pulls)."""

    name: str
    registry: str
    tag: str | None
    digest: str | None

    @property
    def pull_tag(self) -> str:
        """What ``POST /images/create`` takes as ``tag``: the digest, the tag, or ``latest``."""
        return self.digest or self.tag or "latest"

    @property
    def on_docker_hub(self) -> bool:
        return self.registry in _HUB_ALIASES

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def login_command(self) -> str:
        """The ``docker login`` that gives ngcws (and docker) access to this image's registry."""
        if self.on_docker_hub:
            return "docker login"
        user = "'$oauthtoken'" if self.registry == "nvcr.io" else "USER"
        return f"docker login {self.registry} -u {user}"


def parse_image_ref(value: Any) -> ImageRef:
    """Validate and parse a reference; raises ValueError with a message for a person."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected an image reference such as {EXAMPLE}, got {value!r}")
    text = value.strip()
    if "#" in text:  # enroot / pyxis: nvcr.io#nvidia/pytorch:23.08-py3
        host, _, rest = text.partition("#")
        text = f"{host}/{rest}" if re.fullmatch(_DOMAIN, host) else text  # else: invalid below
    match = _REFERENCE.match(text)
    if not match:
        raise ValueError(
            f"{value!r} is not a valid image reference (expected REGISTRY/REPOSITORY:TAG, lower-case, e.g. {EXAMPLE})"
        )
    registry = match.group("registry")
    name = f"{registry}/{match.group('path')}" if registry else match.group("path")
    return ImageRef(name, registry or DOCKER_HUB, match.group("tag"), match.group("digest"))


def parse_image(value: Any) -> str:
    """A validated reference in ngcws's canonical spelling (the model's ``image`` field)."""
    return str(parse_image_ref(value))


def image_ref(text: str) -> ImageRef:
    """Parse a reference already validated (or one the engine gave); never raises."""
    try:
        return parse_image_ref(text)
    except ValueError:
        name, _, digest = text.partition("@")
        first = name.split("/", 1)[0]
        registry = first if "/" in name and ("." in first or ":" in first or first == "localhost") else DOCKER_HUB
        return ImageRef(name, registry, None, digest or None)
