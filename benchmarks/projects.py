"""Equivalent projects for ngcws and its peers, the busy engine, and the multi-layer image to pull.

Every workspace/service gets the same request: the test bed's NGC image, ``shm_size: 1g``, the
project folder bind-mounted at /workspace as the working dir, an init process and a keep-alive
command (ngcws's own; ``sleep infinity`` for the peers). ngcws runs with ``gpus: none`` so no tool
asks for a GPU. Everything made here is removed by the context managers that made it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import RUN, devcontainer_command, ngcws_command, quiet, testbed, uninterrupted

FOREIGN_LABEL = "ngcws-bench.foreign"


class Skipped(Exception):
    """A case that cannot run on this machine; the run goes on and the table says why."""


PULL_IMAGE_PATH = "ngcws-bench/pytorch-layers"
PULL_IMAGE_TAG = "23.08-py3"


def names(count: int) -> list[str]:
    return ["train"] if count == 1 else [f"w{i:02d}" for i in range(1, count + 1)]


def write_ngcws(folder: Path, project: str, image: str, count: int) -> None:
    lines = [f"name: {project}", "workspaces:"]
    for name in names(count):
        lines += [
            f"  {name}:",
            f"    image: {image}",
            "    gpus: none",
            "    shm_size: 1g",
            "    mounts: ['.:/workspace']",
            "    working_dir: /workspace",
        ]
    (folder / "ngcws.yaml").write_text("\n".join(lines) + "\n")


def write_compose(folder: Path, image: str, count: int) -> None:
    lines = ["version: '2.4'", "services:"]
    for name in names(count):
        lines += [
            f"  {name}:",
            f"    image: {image}",
            "    shm_size: 1g",
            "    init: true",
            "    volumes: ['.:/workspace']",
            "    working_dir: /workspace",
            "    command: [sleep, infinity]",
        ]
    (folder / "docker-compose.yml").write_text("\n".join(lines) + "\n")


def write_devcontainer(folder: Path, image: str) -> None:
    (folder / ".devcontainer").mkdir()
    config = {
        "image": image,
        "runArgs": ["--shm-size=1g", "--init"],
        "workspaceMount": "source=${localWorkspaceFolder},target=/workspace,type=bind",
        "workspaceFolder": "/workspace",
    }
    (folder / ".devcontainer" / "devcontainer.json").write_text(json.dumps(config))


@dataclass
class Projects:
    """One ngcws project and its docker-compose (and, for one workspace, devcontainer) twins."""

    root: Path
    count: int
    ngcws: list[str]
    ngcws_dir: Path
    project: str
    compose_dir: Path | None = None
    devcontainer: list[str] | None = None
    devcontainer_dir: Path | None = None

    def ngcws_up(self) -> None:
        quiet([*self.ngcws, "up"], self.ngcws_dir)

    def ngcws_down(self) -> None:
        quiet([*self.ngcws, "down", "--force"], self.ngcws_dir)

    def compose_up(self) -> None:
        assert self.compose_dir
        quiet([*self.compose, "up", "-d"], self.compose_dir)

    def compose_down(self) -> None:
        assert self.compose_dir
        quiet([*self.compose, "down", "-t", "10"], self.compose_dir)

    @property
    def first_container(self) -> str:
        return f"{self.project}-{names(self.count)[0]}"

    @property
    def compose(self) -> list[str]:
        """docker-compose with this run's own project name (not the folder's, which anyone may share)."""
        return ["docker-compose", "-p", f"{self.project}c"]


@contextmanager
def projects(count: int, *, up: bool = True, devcontainer: bool = False) -> Iterator[Projects]:
    """The projects, brought up (``up``) or only written; taken down and deleted afterwards."""
    image = testbed()["NGCWS_TB_NGC"]
    root = Path(tempfile.mkdtemp(prefix="ngcws-bench-"))
    project = f"bench{count}-{RUN}"
    made = Projects(root, count, ngcws_command(), root / "n", project)
    try:
        made.ngcws_dir.mkdir()
        write_ngcws(made.ngcws_dir, project, image, count)
        if shutil.which("docker-compose"):
            made.compose_dir = root / "c"
            made.compose_dir.mkdir()
            write_compose(made.compose_dir, image, count)
        made.devcontainer = devcontainer_command() if devcontainer else None
        if made.devcontainer:
            made.devcontainer_dir = root / "d"
            made.devcontainer_dir.mkdir()
            write_devcontainer(made.devcontainer_dir, image)
        if up:
            made.ngcws_up()
            if made.compose_dir:
                made.compose_up()
            if made.devcontainer and made.devcontainer_dir:
                quiet([*made.devcontainer, "up", "--workspace-folder", str(made.devcontainer_dir)])
        yield made
    finally:
        with uninterrupted():
            quiet([*made.ngcws, "down", "--force"], made.ngcws_dir, check=False)
            if made.compose_dir:
                quiet([*made.compose, "down", "-t", "1"], made.compose_dir, check=False)
            if made.devcontainer_dir:
                remove_labelled(f"devcontainer.local_folder={made.devcontainer_dir}")
            shutil.rmtree(root, ignore_errors=True)


def remove_labelled(label: str) -> None:
    ids = quiet(["docker", "ps", "-aq", "--filter", f"label={label}"], check=False).split()
    if ids:
        quiet(["docker", "rm", "-f", *ids], check=False)


@contextmanager
def foreign_containers(count: int) -> Iterator[None]:
    """``count`` running containers that belong to nobody's project (a busy shared GPU server),
    labelled with this run's id and removed by it, Ctrl-C or not."""
    image = testbed()["NGCWS_TB_TINY"]
    left = quiet(["docker", "ps", "-aq", "--filter", f"label={FOREIGN_LABEL}"], check=False).split()
    if left:
        print(
            f"note: {len(left)} containers left by an interrupted earlier run (they count as foreign here); "
            f"remove them with: docker rm -f $(docker ps -aq --filter label={FOREIGN_LABEL})",
            flush=True,
        )

    def one(i: int) -> None:
        argv = ["docker", "run", "-d", "--label", f"{FOREIGN_LABEL}={RUN}", "--name", f"ngcws-bench-{RUN}-{i:03d}"]
        quiet([*argv, "--label", f"team=t{i % 7}", image, "sleep", "86400"])

    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(one, range(count)))
        yield
    finally:
        with uninterrupted():
            remove_labelled(f"{FOREIGN_LABEL}={RUN}")


def pull_image() -> str:
    """A multi-layer image of more than 1 GB in the local registry, built once from the test bed's
    PyTorch image (its files in five layers, none shared with another local image, so a pull after
    ``docker rmi`` fetches and extracts every byte)."""
    tb = testbed()
    registry = tb["NGCWS_TB_REGISTRY"]
    reference = f"{registry}/{PULL_IMAGE_PATH}:{PULL_IMAGE_TAG}"
    if _in_registry(registry, PULL_IMAGE_PATH, PULL_IMAGE_TAG):
        return reference
    torch = tb.get("NGCWS_TB_TORCH", "")
    if not torch or not quiet(["docker", "images", "-q", torch]).strip():
        raise SystemExit(
            "no PyTorch image in the test bed (scripts/testbed builds it when torch's CPU wheel is on disk)"
        )
    print(f"building {reference} (once; about 2 minutes)", flush=True)
    ctx = Path(tempfile.mkdtemp(prefix="ngcws-bench-image-"))
    try:
        rootfs = ctx / "base"
        rootfs.mkdir()
        container = quiet(["docker", "create", torch]).strip()
        try:
            export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=export.stdout, check=True)
            export.wait()
        finally:
            quiet(["docker", "rm", "-f", container], check=False)
        site = next((rootfs / "usr/local/lib").glob("python3*/dist-packages"))
        inside = "/" + str(site.relative_to(rootfs))
        (ctx / "torchlib").mkdir()
        (site / "torch" / "lib").rename(ctx / "torchlib" / "lib")
        (site / "torch").rename(ctx / "torch")
        site.rename(ctx / "site")
        extra = ctx / "extra"
        shutil.copytree(ctx / "site", extra / "site-copy", symlinks=True)  # past 1 GB in all
        (ctx / "Dockerfile").write_text(
            "FROM scratch\n"
            "COPY base/ /\n"
            f"COPY site/ {inside}/\n"
            f"COPY torch/ {inside}/torch/\n"
            f"COPY torchlib/ {inside}/torch/\n"
            "COPY extra/ /opt/ngcws-bench/\n"
            'CMD ["python3"]\n'
        )
        built = subprocess.run(["docker", "build", "-q", "-t", reference, str(ctx)], env=_legacy_builder(), **_CAPTURE)
        if built.returncode != 0:
            raise SystemExit(f"docker build of {reference} failed: {built.stderr[-800:]}")
        quiet(["docker", "push", reference])
        quiet(["docker", "rmi", reference])
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return reference


_CAPTURE: dict[str, Any] = {"capture_output": True, "text": True}


def _legacy_builder() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "0"}


def _in_registry(registry: str, path: str, tag: str) -> bool:
    request = urllib.request.Request(f"http://{registry}/v2/{path}/manifests/{tag}", method="HEAD")
    request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return True
    except OSError:
        return False


def image_size_mb(reference: str) -> float:
    return int(quiet(["docker", "image", "inspect", "-f", "{{.Size}}", reference]).strip()) / 1e6


def layer_count(reference: str) -> int:
    return len(json.loads(quiet(["docker", "image", "inspect", "-f", "{{json .RootFS.Layers}}", reference])))
