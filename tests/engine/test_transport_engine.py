"""The transport against the real engine, through a proxy that cuts the engine's answer short."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ngcws.engine import Engine
from ngcws.engine.transport import Transport
from ngcws.errors import EngineConnectionLost
from tests.conftest import NGCWS, Workspace
from tests.engine.test_reconcile import ngc, unpulled_image
from tests.private_engine import PrivateEngine


class CuttingProxy:
    """Forwards a unix socket to the engine's; answers to ``cut_path`` requests stop after ``cut_after`` bytes."""

    def __init__(self, path: Path, engine_socket: str, cut_path: str, cut_after: int | None) -> None:
        self.path, self.engine_socket = path, engine_socket
        self.cut_path, self.cut_after = cut_path.encode(), cut_after
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(self.engine_socket)
        first = client.recv(65536)
        upstream.sendall(first)
        limit = self.cut_after if self.cut_path in first.split(b"\r\n", 1)[0] else None

        def forward_requests() -> None:
            try:
                while data := client.recv(65536):
                    upstream.sendall(data)
            except OSError:
                pass

        threading.Thread(target=forward_requests, daemon=True).start()
        sent = 0
        try:
            while data := upstream.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    client.sendall(data[: limit - sent])
                    break
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):  # shutdown first: another thread is blocked reading it
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def layered_image(project: Workspace, testbed: dict[str, str]) -> Iterator[str]:
    """An image in the registry with two fresh layers, not on the engine."""
    with unpulled_image(project, testbed, "cut", (4_000_000, 4_000_000)) as image:
        yield image


def engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip("the cutting proxy speaks to a unix-socket engine")
    return host.removeprefix("unix://")


def test_a_pull_cut_half_way_is_an_error_and_creates_nothing(
    project: Workspace, testbed: dict[str, str], layered_image: str, tmp_path: Path
) -> None:
    project.write(ngc(testbed, image=layered_image))
    cutting = CuttingProxy(tmp_path / "cut.sock", engine_socket(), "/images/create", 1500)
    try:
        result = project.ngcws("up", env={"DOCKER_HOST": f"unix://{cutting.path}"})
    finally:
        cutting.close()
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert f"error: train: pulling {layered_image} was cut off: the connection to the Docker engine dropped" in err
    assert "Traceback" not in err
    assert project.containers() == []
    passing = CuttingProxy(tmp_path / "whole.sock", engine_socket(), "/images/create", None)
    try:  # the same proxy without the cut is transparent: the cut was the only difference
        result = project.ngcws("up", env={"DOCKER_HOST": f"unix://{passing.path}"})
    finally:
        passing.close()
    assert result.returncode == 0, result.stderr
    assert [c["State"] for c in project.containers()] == ["running"]


def test_an_inspect_cut_short_is_an_error_not_a_partial_answer(
    project: Workspace, testbed: dict[str, str], tmp_path: Path
) -> None:
    project.write(ngc(testbed, image=testbed["NGCWS_TB_TINY"]))
    project.ok("up")
    cutting = CuttingProxy(tmp_path / "cut.sock", engine_socket(), "/containers/json", 300)
    try:
        result = subprocess.run(
            [*NGCWS, "ps"],
            cwd=project.dir,
            capture_output=True,
            env={**os.environ, "DOCKER_HOST": f"unix://{cutting.path}"},
            timeout=60,
        )
    finally:
        cutting.close()
    err = result.stderr.decode()
    assert result.returncode == 1 and "dropped during GET /containers/json" in err and "Traceback" not in err
    assert result.stdout == b""


def test_an_engine_that_dies_mid_stream_is_a_lost_connection(
    project: Workspace, testbed: dict[str, str], private_engine: PrivateEngine
) -> None:
    """`logs -f` (a stream that waits indefinitely, like the event stream) while the engine is killed."""
    env = {**os.environ, "DOCKER_HOST": private_engine.host}
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        "    command: [sh, -c, 'echo started; sleep 1000']\n"
    )
    project.ok("up", env={"DOCKER_HOST": private_engine.host})
    with subprocess.Popen(
        [*NGCWS, "logs", "-f"], cwd=project.dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as follower:
        assert follower.stdout is not None and follower.stdout.readline() == b"started\n"
        events = Engine(Transport(private_engine.host)).transport.request("GET", "/events", timeout=None)
        private_engine.kill()
        _, err = follower.communicate(timeout=60)
    assert follower.returncode == 1, err
    assert b"error: the connection to the Docker engine dropped during GET /containers/" in err
    assert b"Traceback" not in err
    with pytest.raises(EngineConnectionLost):
        list(events.lines())
