"""The one image-reference parser, and registry errors that name the registry the image comes from."""

from __future__ import annotations

import pytest

from ngcws.engine.client import pull_error
from ngcws.errors import EngineError, ImageNotFound, RegistryAuthError
from ngcws.imageref import image_ref, parse_image, parse_image_ref


@pytest.mark.parametrize(
    ("text", "name", "registry", "tag", "digest", "pull_tag"),
    [
        ("nvcr.io/nvidia/pytorch:23.08-py3", "nvcr.io/nvidia/pytorch", "nvcr.io", "23.08-py3", None, "23.08-py3"),
        ("nvcr.io#nvidia/pytorch:23.08-py3", "nvcr.io/nvidia/pytorch", "nvcr.io", "23.08-py3", None, "23.08-py3"),
        ("nvidia/cuda:12.2.0-base-ubuntu22.04", "nvidia/cuda", "docker.io", "12.2.0-base-ubuntu22.04", None, None),
        ("ubuntu", "ubuntu", "docker.io", None, None, "latest"),
        ("localhost/x", "localhost/x", "localhost", None, None, "latest"),
        ("localhost:5000/nvidia/pytorch:1", "localhost:5000/nvidia/pytorch", "localhost:5000", "1", None, "1"),
        ("registry:5000/team/img", "registry:5000/team/img", "registry:5000", None, None, "latest"),
        ("docker.io/library/ubuntu:22.04", "docker.io/library/ubuntu", "docker.io", "22.04", None, "22.04"),
        (
            f"nvcr.io/nvidia/pytorch:23.08-py3@sha256:{'a' * 64}",
            "nvcr.io/nvidia/pytorch",
            "nvcr.io",
            "23.08-py3",
            f"sha256:{'a' * 64}",
            f"sha256:{'a' * 64}",
        ),
    ],
)
def test_references(
    text: str, name: str, registry: str, tag: str | None, digest: str | None, pull_tag: str | None
) -> None:
    ref = parse_image_ref(text)
    assert (ref.name, ref.registry, ref.tag, ref.digest) == (name, registry, tag, digest)
    assert ref.pull_tag == (pull_tag or tag)
    assert image_ref(str(ref)) == ref


@pytest.mark.parametrize("bad", ["UPPER/case", "", "a b", "nvcr.io/nvidia/pytorch:", "x@sha256:12", None, 3])
def test_bad_references(bad: object) -> None:
    with pytest.raises(ValueError, match="image reference"):
        parse_image(bad)


@pytest.mark.parametrize(
    ("image", "message", "error", "words"),
    [
        (
            "nvidia/cuda:12.2.0-base",
            "pull access denied for nvidia/cuda, repository does not exist or may require 'docker login'",
            RegistryAuthError,
            "refused to let us pull nvidia/cuda:12.2.0-base (docker.io, Docker Hub)",
        ),
        (
            "nvcr.io/nvidia/pytorch:23.08-py3",
            "unauthorized: authentication required",
            RegistryAuthError,
            "refused to let us pull nvcr.io/nvidia/pytorch:23.08-py3 (nvcr.io)",
        ),
        (
            "localhost:5001/x:1",
            "denied: requested access to the resource is denied",
            RegistryAuthError,
            "localhost:5001",
        ),
        (
            "nvidia/cuda:99",
            "manifest for nvidia/cuda:99 not found: manifest unknown",
            ImageNotFound,
            "not found on docker.io",
        ),
        (
            "nvcr.io/nvidia/pytorch:23.08-py3",
            "failed to register layer: open /var/lib/docker/overlay2/x/diff: permission denied",
            EngineError,
            "pulling nvcr.io/nvidia/pytorch:23.08-py3 failed (nvcr.io)",
        ),
    ],
)
def test_pull_errors_name_the_real_registry(image: str, message: str, error: type[EngineError], words: str) -> None:
    found = pull_error(image_ref(image), 500, message)
    assert type(found) is error and words in found.message
    if error is RegistryAuthError:
        login = "docker login" if "docker.io" in words else f"docker login {image.split('/')[0]} "
        assert found.hint and login in found.hint and "docker login nvidia" not in found.hint
