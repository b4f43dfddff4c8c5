"""HTTP/1.1 to the Docker engine over its socket (unix://, tcp://; TLS and ssh:// through connect.py)."""

from __future__ import annotations

import _socket  # the C socket type (see Transport._connect)
import json
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ngcws.engine.endpoint import resolve
from ngcws.errors import EngineConnectionLost, EngineError, EngineProtocolError, EngineUnavailable

DEFAULT_SOCKET = "/var/run/docker.sock"


_STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n$")
_HEX = re.compile(rb"^[0-9a-fA-F]{1,16}$")
_MAX_LINE = 65536
_MAX_HEADERS = 100
_PIECE = 65536


class _Reader:
    """A buffered reader over the engine socket that never returns less than the protocol promised.

    Every way the socket can fail is one of two errors: :class:`EngineConnectionLost` (closed or
    reset before the answer was complete) or :class:`EngineProtocolError` (no answer in time). The
    bytes read past the HTTP head stay available to a hijacked stream (:meth:`take`).
    """

    def __init__(self, sock: _socket.socket, what: str) -> None:
        self.sock = sock
        self.what = what
        self.buffer = b""

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(_PIECE)
        except TimeoutError:
            raise EngineProtocolError(
                f"the Docker engine did not answer {self.what} within {self.sock.gettimeout():g} s"
            ) from None
        except OSError as exc:
            raise self.lost(exc.strerror or str(exc)) from None
        if not data:
            return False
        self.buffer += data
        return True

    def lost(self, detail: str) -> EngineConnectionLost:
        return EngineConnectionLost(f"the connection to the Docker engine dropped during {self.what}: {detail}")

    def line(self, part: str) -> bytes:
        """One line (with its end); the connection closing first is an error."""
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > _MAX_LINE:
                raise EngineProtocolError(f"the Docker engine sent an over-long {part} in its answer to {self.what}")
            if not self._fill():
                raise self.lost(f"closed before the {part}" + (f" (after {self.buffer[:40]!r})" if self.buffer else ""))
        line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
        return line

    def some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes as soon as any are there; b"" when the connection has closed."""
        if not self.buffer and not self._fill():
            return b""
        piece, self.buffer = self.buffer[:limit], self.buffer[limit:]
        return piece

    def take(self) -> bytes:
        data, self.buffer = self.buffer, b""
        return data


class Response:
    """One HTTP/1.1 response, read strictly; the body is read on demand, so pulls, logs and events stream.

    (http.client would import ssl and email, a third of ``ngcws exec``'s start-up budget; h11
    costs ~55 ms to import.) A body is never returned short: a cut Content-Length or chunked
    body, a malformed chunk size or a connection closed mid-stream raises, and so does a body
    that should be JSON and is not. With no timeout a stream waits as long as the engine does.
    """

    def __init__(self, sock: _socket.socket, what: str = "a request", method: str = "GET") -> None:
        self._sock = sock
        self.what = what
        self._method = method
        self._reader = _Reader(sock, what)
        try:
            self._read_head()
        except EngineError:
            self.close()
            raise

    def _read_head(self) -> None:
        status_line = self._reader.line("status line")
        match = _STATUS_LINE.match(status_line)
        if not match:
            raise EngineProtocolError(
                f"the Docker engine sent an invalid answer to {self.what}: {status_line[:80]!r}"
                " (is DOCKER_HOST an engine?)"
            )
        self.status = int(match.group(1))
        self.headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self._reader.line("headers")
            if line in (b"\r\n", b"\n"):
                break
            key, sep, value = line.decode("latin-1").partition(":")
            if not sep or not key.strip() or key != key.strip():
                raise EngineProtocolError(f"the Docker engine sent a malformed header to {self.what}: {line[:80]!r}")
            self.headers[key.lower()] = value.strip()
        else:
            raise EngineProtocolError(f"the Docker engine sent too many headers in its answer to {self.what}")
        coding = self.headers.get("transfer-encoding", "").lower()
        if coding not in ("", "chunked"):
            raise EngineProtocolError(f"the Docker engine answered {self.what} with an unsupported encoding {coding!r}")
        self._chunked = coding == "chunked"
        self._remaining: int | None = None
        length = self.headers.get("content-length")
        if not self._chunked and length is not None:
            if not length.isdigit():
                raise EngineProtocolError(f"the Docker engine sent an invalid Content-Length {length!r} to {self.what}")
            self._remaining = int(length)
        if self._method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._chunked, self._remaining = False, 0  # no body, whatever the headers say

    def chunks(self) -> Iterator[bytes]:
        """The body as it arrives; raises if it ends before the framing says it is complete."""
        try:
            if self._chunked:
                yield from self._chunked_body()
            elif self._remaining is not None:
                yield from self._sized_body(self._remaining)
            else:  # no length: the body ends when the engine closes the connection
                while piece := self._reader.some(_PIECE):
                    yield piece
        finally:
            self.close()

    def _chunked_body(self) -> Iterator[bytes]:
        reader = self._reader
        while True:
            line = reader.line("next chunk")
            size_text = line.split(b";", 1)[0].strip()
            if not _HEX.match(size_text):
                raise EngineProtocolError(f"the Docker engine sent a malformed chunk size {line[:40]!r} to {self.what}")
            size = int(size_text, 16)
            if size == 0:
                break
            while size:
                piece = reader.some(min(size, _PIECE))
                if not piece:
                    raise reader.lost(f"a chunk was cut short ({size} bytes missing)")
                size -= len(piece)
                yield piece
            if reader.line("end of a chunk") not in (b"\r\n", b"\n"):
                raise EngineProtocolError(f"the Docker engine sent a chunk longer than its size to {self.what}")
        while reader.line("end of the body") not in (b"\r\n", b"\n"):
            pass  # trailer fields: none are used

    def _sized_body(self, length: int) -> Iterator[bytes]:
        remaining = length
        while remaining:
            piece = self._reader.some(min(remaining, _PIECE))
            if not piece:
                raise self._reader.lost(f"the body was cut short after {length - remaining} of {length} bytes")
            remaining -= len(piece)
            yield piece

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def json(self) -> Any:
        data = self.read()
        return self._decode(data) if data.strip() else None

    def _decode(self, data: bytes) -> Any:
        try:
            return json.loads(data)
        except ValueError:
            snippet = data[:80].decode("utf-8", errors="replace")
            raise EngineProtocolError(f"the Docker engine's answer to {self.what} is not JSON: {snippet!r}") from None

    def lines(self) -> Iterator[dict[str, Any]]:
        """A stream of JSON objects, one a line (pull progress, events); waits for each as long as needed."""
        buffer = b""
        for chunk in self.chunks():
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                if line.strip():
                    yield self._object(line)
        if buffer.strip():
            yield self._object(buffer)

    def _object(self, line: bytes) -> dict[str, Any]:
        value = self._decode(line)
        if not isinstance(value, dict):
            raise EngineProtocolError(f"the Docker engine sent {line[:80]!r} in a stream of JSON objects ({self.what})")
        return value

    def error_message(self) -> str:
        body = self.read()
        try:
            return str(json.loads(body).get("message", "")).strip() or body.decode(errors="replace")
        except (ValueError, AttributeError):
            return body.decode(errors="replace").strip()

    def take_stream(self) -> bytes:
        """After a 101 (hijack): the stream bytes already read past the head."""
        return self._reader.take()

    def close(self) -> None:
        self._sock.close()


class Transport:
    """One engine endpoint, chosen as the docker CLI chooses it (endpoint.py), or ``host`` if given."""

    def __init__(self, host: str | None = None, timeout: float | None = 60) -> None:
        self.endpoint = resolve(host=host)  # --context, DOCKER_HOST, DOCKER_CONTEXT, currentContext
        host = self.endpoint.host
        self.host = host
        self.timeout = timeout
        parts = urlsplit(host)
        self._unix: str | None = None
        self._tcp: tuple[str, int] | None = None
        if parts.scheme == "unix":
            self._unix = parts.path
        elif parts.scheme == "tcp":
            self._tcp = (parts.hostname or "localhost", parts.port or 2375)
        elif parts.scheme != "ssh":
            raise EngineUnavailable(f"{host} ({self.endpoint.reason}): only unix://, tcp:// and ssh:// are supported")

    def _connect(self, timeout: float | None) -> _socket.socket:
        try:
            if self._unix is not None:
                # _socket, not socket: the module adds enum conversions and selectors, ~1.5 ms of
                # `ngcws exec`'s start-up, for nothing that a client of the engine's socket uses.
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(self._unix)
                return sock
            if self._tcp is None or self.endpoint.tls is not None:
                from ngcws.engine.connect import connect  # ssl or ssh: only for such endpoints

                return connect(self.endpoint, timeout)
            import socket

            return socket.create_connection(self._tcp, timeout=timeout)
        except OSError as exc:  # missing socket, refused, no permission, unknown host, timed out
            raise self.unavailable(exc) from None

    def _send(
        self, method: str, url: str, payload: bytes, headers: Mapping[str, str], timeout: float | None
    ) -> _socket.socket:
        sock = self._connect(timeout)
        head = [f"{method} {url} HTTP/1.1", "Host: docker", f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
        except OSError as exc:  # closed or reset while we were still sending
            failure = getattr(sock, "failure", None)  # ssh ended before the request was sent
            if failure is not None:
                raise failure("") from None
            sock.close()
            what = f"{method} {url.split('?', 1)[0]}"
            raise EngineConnectionLost(
                f"the connection to the Docker engine dropped during {what}: {exc.strerror or exc}"
            ) from None
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
        try:
            return Response(sock, f"{method} {path}", method)
        except EngineError as exc:
            failure = getattr(sock, "failure", None)  # ssh: what ssh said
            if failure is not None:
                raise failure(exc.message) from None
            raise

    def hijack(
        self, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> tuple[_socket.socket, bytes]:
        """POST with ``Upgrade: tcp``; return the raw socket and any stream bytes already read."""
        url = path + ("?" + urlencode(_clean(params)) if params else "")
        payload = json.dumps(body if body is not None else {}).encode()
        headers = {"Content-Type": "application/json", "Connection": "Upgrade", "Upgrade": "tcp"}
        sock = self._send("POST", url, payload, headers, None)
        response = Response(sock, f"POST {path}", "POST")
        if response.status not in (101, 200):
            raise HijackError(response.status, response.error_message())
        return sock, response.take_stream()

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
        if not self.endpoint.reason.startswith("the built-in default"):
            hint = f"{hint} (The engine was chosen by {self.endpoint.reason}.)"
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
