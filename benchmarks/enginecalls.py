"""Count the Engine API calls a command makes: a pass-through proxy in front of the engine's socket.

Point a client at it with ``DOCKER_HOST=unix://<proxy socket>`` (ngcws, the docker CLI,
docker-compose and the Dev Containers CLI all honour it). Each HTTP request head is parsed and
recorded (method and path, the ``/v1.xx`` prefix and the query dropped) before it is passed on;
bodies are passed on by Content-Length or chunked framing; after a request asking for an upgrade
(``exec`` and ``attach`` streams) the connection is a plain byte pipe both ways, half-closes
included. Used by ``benchmarks/run``, untimed: the proxy adds its own latency.

    python benchmarks/enginecalls.py -- ngcws up      # prints the calls of one command
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

_VERSION = re.compile(r"^/v\d+\.\d+")
_IDS = re.compile(r"^/(containers|exec|images|networks|volumes|plugins|distribution)/(.+?)(/[a-z]+)?$")


def shape(path: str) -> str:
    """``/v1.41/containers/abc123/start?x=1`` → ``/containers/{}/start``: calls of a kind count together."""
    path = _VERSION.sub("", path.split("?", 1)[0])
    found = _IDS.match(path)
    if found and found.group(2) not in ("json", "create", "prune", "load", "search"):
        return f"/{found.group(1)}/{{}}{found.group(3) or ''}"
    return path


class _Stream:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def until(self, marker: bytes) -> bytes | None:
        while (end := self.buffer.find(marker)) < 0:
            if not self.fill():
                return None
        found, self.buffer = self.buffer[: end + len(marker)], self.buffer[end + len(marker) :]
        return found

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self.fill():
                break
        found, self.buffer = self.buffer[:count], self.buffer[count:]
        return found


class EngineCallCounter:
    """A proxy on a unix socket of its own; ``calls`` lists ``"METHOD /shape"`` in order."""

    def __init__(self, upstream: str = "/var/run/docker.sock") -> None:
        self.upstream = upstream
        self.folder = tempfile.mkdtemp(prefix="ngcws-calls-")
        self.path = os.path.join(self.folder, "engine.sock")
        self.calls: list[str] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def __enter__(self) -> EngineCallCounter:
        self._server.bind(self.path)
        self._server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        try:
            os.unlink(self.path)
            os.rmdir(self.folder)
        except OSError:
            pass

    def take(self) -> tuple[list[str], int]:
        """The calls and connections since the last ``take``."""
        with self._lock:
            calls, self.calls = self.calls, []
            connections, self.connections = self.connections, 0
        return calls, connections

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as engine:
            try:
                engine.connect(self.upstream)
            except OSError:
                return
            answers = threading.Thread(target=_pipe, args=(engine, client), daemon=True)
            answers.start()
            with contextlib.suppress(OSError):
                self._requests(_Stream(client), engine)
            with contextlib.suppress(OSError):
                engine.shutdown(socket.SHUT_WR)
            answers.join()

    def _requests(self, stream: _Stream, engine: socket.socket) -> None:
        while (head := stream.until(b"\r\n\r\n")) is not None:
            lines = head.decode("latin-1").split("\r\n")
            method, path = [*lines[0].split(" "), "", ""][:2]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            with self._lock:
                self.calls.append(f"{method} {shape(path)}")
            engine.sendall(head)
            if "upgrade" in headers or headers.get("connection", "").lower() == "upgrade":
                _forward_rest(stream, engine)
                return
            if headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size_line = stream.until(b"\r\n") or b"0\r\n"
                    engine.sendall(size_line)
                    size = int(size_line.split(b";")[0].strip() or b"0", 16)
                    engine.sendall(stream.exactly(size + 2))
                    if size == 0:
                        break
            elif length := int(headers.get("content-length", "0") or 0):
                engine.sendall(stream.exactly(length))


def _forward_rest(stream: _Stream, engine: socket.socket) -> None:
    if stream.buffer:
        engine.sendall(stream.buffer)
    while data := stream.sock.recv(65536):
        engine.sendall(data)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
            with contextlib.suppress(OSError):
                sock.shutdown(how)


def summary(calls: list[str]) -> str:
    """``12: 3 GET /containers/json, 2 POST /containers/{}/start, …``"""
    counts = Counter(calls)
    return f"{len(calls)}: " + ", ".join(f"{n} {call}" for call, n in counts.most_common())


def main() -> None:
    argv = sys.argv[1:]
    if not argv or argv[0] in ("-h", "--help") or "--" not in argv:
        sys.exit(__doc__)
    command = argv[argv.index("--") + 1 :]
    with EngineCallCounter() as counter:
        env = {**os.environ, "DOCKER_HOST": counter.docker_host}
        code = subprocess.run(command, env=env, cwd=Path.cwd()).returncode
        calls, connections = counter.take()
    print(f"{' '.join(command)}: exit {code}, {connections} connection(s), calls {summary(calls)}", file=sys.stderr)
    for call in calls:
        print(call)


if __name__ == "__main__":
    main()
