"""The registry down, locked, without the tag, or cut mid-pull; the disk full during a pull.

Each time: a clear error, the existing container untouched and running, and the next `up`
retries. A private registry (tests/private_registry.py) is stopped, locked and cut by the test;
a private engine pulls from it (one download attempt, so a cut fails at once), and for the full
disk a private engine keeps its data on a small filesystem of its own.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace, running
from tests.engine.test_reconcile import _build_layered
from tests.private_engine import PrivateEngine
from tests.private_registry import CuttingProxy, PrivateRegistry


def yaml(image: str) -> str:
    return f"workspaces:\n  train:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n"


@pytest.fixture
def registry(testbed: dict[str, str]) -> Iterator[PrivateRegistry]:
    """A private registry holding ``app:1``: the tiny image plus 5 MB of fresh random layers."""
    found = PrivateRegistry()
    try:
        found.start()
        image = f"{found.address}/app/app:1"
        _build_layered(testbed["NGCWS_TB_TINY"], image)
        try:
            subprocess.run(["docker", "push", "-q", image], check=True, capture_output=True, timeout=300)
        finally:
            subprocess.run(["docker", "rmi", "-f", image], check=False, capture_output=True)
        yield found
    finally:
        found.destroy()


@pytest.fixture
def one_try_engine(testbed: dict[str, str]) -> Iterator[PrivateEngine]:
    with running(PrivateEngine(args=("--max-download-attempts=1",)), testbed) as engine:
        yield engine


def _running(engine: PrivateEngine, project: Workspace) -> str:
    [container] = engine.engine().list_containers({"ngcws.project": project.name})
    assert container["State"] == "running"
    return str(container["Id"])


def test_registry_down_locked_unknown_tag_and_cut(
    project: Workspace, testbed: dict[str, str], registry: PrivateRegistry, one_try_engine: PrivateEngine
) -> None:
    env = {"DOCKER_HOST": one_try_engine.host}
    project.write(yaml(testbed["NGCWS_TB_TINY"]))
    project.ok("up", env=env)
    before = _running(one_try_engine, project)
    proxy = CuttingProxy(registry.address)
    try:
        wanted = f"{proxy.address}/app/app:1"

        def fails(*words: str) -> None:
            result = project.ngcws("up", env=env)
            err = result.stderr.decode()
            assert result.returncode == 1 and "Traceback" not in err, err
            assert all(word in err for word in words), err
            assert _running(one_try_engine, project) == before  # untouched, still running

        direct = f"{registry.address}/app/app:1"
        project.write(yaml(direct))
        registry.stop()
        fails(f"pulling {direct} failed", "connection refused", "did not answer", "the next `ngcws up` tries again")
        project.write(yaml(wanted))
        fails(f"pulling {wanted} failed", "did not answer")  # through the proxy: a reset, not a refusal

        htpasswd = registry.dir / "htpasswd"
        subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "$oauthtoken", "secret"], check=True, capture_output=True)
        registry.start(htpasswd)
        fails(f"the registry refused to let us pull {wanted}", "docker login")  # 401

        registry.stop()
        registry.start()
        project.write(yaml(f"{proxy.address}/app/app:404"))
        fails(f"image {proxy.address}/app/app:404 was not found")

        project.write(yaml(wanted))
        proxy.cut = True
        fails(f"pulling {wanted} failed", "connection to the registry broke")

        proxy.cut = False
        result = project.ngcws("up", env=env)
        assert result.returncode == 0, result.stderr
        assert _running(one_try_engine, project) != before
    finally:
        proxy.close()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 400 MB ext4 filesystem on a loop device, mounted for this test only."""
    image, mountpoint = tmp_path / "disk.img", tmp_path / "fs"
    subprocess.run(["truncate", "-s", "400M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    mountpoint.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_disk_full_during_a_pull(project: Workspace, testbed: dict[str, str], small_disk: Path) -> None:
    with running(PrivateEngine(data_root=small_disk / f"docker-{uuid.uuid4().hex[:6]}"), testbed) as engine:
        env = {"DOCKER_HOST": engine.host}
        project.write(yaml(testbed["NGCWS_TB_TINY"]))
        project.ok("up", env=env)
        before = _running(engine, project)
        ballast = small_disk / "ballast"
        free = _free(small_disk)
        subprocess.run(["fallocate", "-l", str(free - 40_000_000), str(ballast)], check=True)  # leave 40 MB
        project.write(yaml(testbed["NGCWS_TB_NGC"]))  # 163 MB once unpacked
        result = project.ngcws("up", env=env)
        err = result.stderr.decode()
        assert result.returncode == 1 and "Traceback" not in err, err
        assert "no space left on device" in err and "free some space" in err, err
        assert _running(engine, project) == before
        ballast.unlink()  # space again: the next up retries and succeeds
        result = project.ngcws("up", env=env)
        assert result.returncode == 0, result.stderr
        assert _running(engine, project) != before


def _free(path: Path) -> int:
    import os

    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize
