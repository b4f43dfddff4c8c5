"""HTTP/1.1 to the Docker engine over its unix socket (or plain tcp://), standard library only."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode, urlsplit

from ngcws.errors import EngineUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"


class Response:
    """One HTTP/1.1 response; the body is read on demand, so pulls and logs can stream.

    (http.client would import ssl and email, a third of ``ngcws exec``'s start-up budget.)
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file: BinaryIO = sock.makefile("rb")
        status_line = self._file.readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            self.close()
            raise EngineUnavailable(f"the engine sent an invalid response: {status_line.strip()!r}")
        self.status = int(parts[1])
        self.headers: dict[str, str] = {}
        while (line := self._file.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            self.headers[key.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "")
        length = self.headers.get("content-length")
        self._remaining = int(length) if length is not None and not self._chunked else None
        if self.status in (101, 204, 304):
            self._remaining = 0

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives."""
        try:
            if self._chunked:
                while True:
                    size = int(self._file.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        break
                    yield self._file.read(size)
                    self._file.readline()
            elif self._remaining is not None:
                if self._remaining:
                    yield self._file.read(self._remaining)
            else:
                while chunk := self._file.read1(65536):  # type: ignore[attr-defined]
                    yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def json(self) -> Any:
        data = self.read()
        return json.loads(data) if data else None

    def lines(self) -> Iterator[dict[str, Any]]:
        """A stream of JSON objects, one a line (pull progress)."""
        buffer = b""
        for chunk in self.chunks():
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                if line.strip():
                    yield json.loads(line)
        if buffer.strip():
            yield json.loads(buffer)

    def error_message(self) -> str:
        body = self.read()
        try:
            return str(json.loads(body).get("message", "")).strip() or body.decode(errors="replace")
        except (ValueError, AttributeError):
            return body.decode(errors="replace").strip()

    def close(self) -> None:
        self._file.close()
        self._sock.close()


class Transport:
    """One engine endpoint: ``DOCKER_HOST`` (unix:// or tcp://) or the default socket."""

    def __init__(self, host: str | None = None, timeout: float | None = 60) -> None:
        host = host or os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
        self.host = host
        self.timeout = timeout
        parts = urlsplit(host)
        if parts.scheme == "unix":
            self._unix: str | None = parts.path
            self._tcp: tuple[str, int] | None = None
        elif parts.scheme in ("tcp", "http"):
            if os.environ.get("DOCKER_TLS_VERIFY"):
                raise EngineUnavailable(f"DOCKER_HOST={host} with TLS is not supported yet; use the unix socket")
            self._unix = None
            self._tcp = (parts.hostname or "localhost", parts.port or 2375)
        else:
            raise EngineUnavailable(f"DOCKER_HOST={host}: only unix:// and tcp:// are supported")

    def _connect(self, timeout: float | None) -> socket.socket:
        try:
            if self._unix is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(self._unix)
                return sock
            assert self._tcp is not None
            return socket.create_connection(self._tcp, timeout=timeout)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError, socket.gaierror) as exc:
            raise self.unavailable(exc) from None

    def _send(
        self, method: str, url: str, payload: bytes, headers: Mapping[str, str], timeout: float | None
    ) -> socket.socket:
        sock = self._connect(timeout)
        head = [f"{method} {url} HTTP/1.1", "Host: docker", f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        return sock

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | str | None = "default",
    ) -> Response:
        url = path + ("?" + urlencode(_clean(params)) if params else "")
        all_headers = {"Connection": "close", **(headers or {})}
        payload = data or b""
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        wait = self.timeout if timeout == "default" else timeout
        sock = self._send(method, url, payload, all_headers, wait)  # type: ignore[arg-type]
        return Response(sock)

    def hijack(
        self, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> tuple[socket.socket, bytes]:
        """POST with ``Upgrade: tcp``; return the raw socket and any stream bytes already read."""
        url = path + ("?" + urlencode(_clean(params)) if params else "")
        payload = json.dumps(body if body is not None else {}).encode()
        headers = {"Content-Type": "application/json", "Connection": "Upgrade", "Upgrade": "tcp"}
        sock = self._send("POST", url, payload, headers, None)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        header, _, rest = buf.partition(b"\r\n\r\n")
        status_line = header.split(b"\r\n", 1)[0].decode(errors="replace")
        status = int(status_line.split(" ")[1]) if " " in status_line else 0
        if status not in (101, 200):
            message = rest.decode(errors="replace")
            with contextlib.suppress(ValueError):
                message = json.loads(message).get("message", message)
            sock.close()
            raise HijackError(status, str(message).strip())
        return sock, rest

    def unavailable(self, exc: BaseException) -> EngineUnavailable:
        """One sentence saying what is wrong, and the fix as the hint."""
        where = self._unix or self.host
        start = "Start it: `sudo systemctl start docker` (or `sudo service docker start`)"
        rootless = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}", "docker.sock")
        use_rootless = f"For rootless Docker: `export DOCKER_HOST=unix://{rootless}`."
        if os.path.exists(rootless) and rootless != where:
            use_rootless = f"Your rootless Docker answers on {rootless}: `export DOCKER_HOST=unix://{rootless}`."
        if isinstance(exc, PermissionError):
            message = f"permission denied on the Docker engine's socket {where}"
            hint = (
                "Add yourself to the docker group: `sudo usermod -aG docker $USER`, then log in again. " + use_rootless
            )
        elif isinstance(exc, FileNotFoundError):
            message = f"the Docker engine is not running: its socket {where} does not exist"
            hint = f"{start}. {use_rootless}"
        elif isinstance(exc, ConnectionRefusedError):
            message = f"the Docker engine is not running: nothing answers on {where}"
            hint = f"{start}. {use_rootless}"
        else:
            reason = getattr(exc, "strerror", None) or exc
            message = f"cannot reach the Docker engine at {self.host}: {reason}"
            hint = "Check DOCKER_HOST, or start Docker: `sudo systemctl start docker`."
        return EngineUnavailable(message, hint=hint)


class HijackError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _clean(params: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        out[key] = str(value)
    return out


def path(template: str, *parts: str) -> str:
    """Quote each id or name into a URL path template."""
    return template.format(*(quote(p, safe="") for p in parts))
