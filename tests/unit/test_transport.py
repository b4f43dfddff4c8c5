"""The engine transport against a real socket server that misbehaves in each way an engine (or
something else on DOCKER_HOST) can: every one is a clear engine error, never a partial result."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ngcws.engine import Engine
from ngcws.engine.transport import Transport
from ngcws.errors import EngineConnectionLost, EngineError, EngineProtocolError
from ngcws.imageref import image_ref

Script = list["bytes | float"]  # bytes are sent, a float pauses; the connection closes at the end


class Misbehaving:
    """A unix-socket HTTP server that answers every request with one script of bytes and pauses."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.script: Script = []
        self.requests: list[bytes] = []
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def answer(self, *script: bytes | float) -> Misbehaving:
        self.script = list(script)
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data:
                    return
                request += data
            self.requests.append(request)
            for step in self.script:
                if isinstance(step, float):
                    time.sleep(step)
                else:
                    try:
                        conn.sendall(step)
                    except OSError:
                        return

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Misbehaving]:
    s = Misbehaving(tmp_path / "engine.sock")
    yield s
    s.close()


def head(*headers: str, status: str = "200 OK") -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


JSON = "Content-Type: application/json"
CHUNKED = "Transfer-Encoding: chunked"


def engine(server: Misbehaving, timeout: float | None = 5) -> Engine:
    return Engine(Transport(server.host, timeout=timeout))


# --- well-formed answers are read exactly ---------------------------------------------------------


def test_well_formed_bodies_are_read_exactly(server: Misbehaving) -> None:
    server.answer(head(JSON, "Content-Length: 17"), b'{"ApiVersion": 1}')
    assert engine(server).version() == {"ApiVersion": 1}
    body = b'[{"Id": "abc"}]'
    server.answer(head(JSON, CHUNKED), b"4;ext=1\r\n", body[:4], b"\r\n", f"{len(body) - 4:x}\r\n".encode())
    server.script += [body[4:], b"\r\n0\r\nX-Trailer: 1\r\n\r\n"]
    assert engine(server).list_containers({}) == [{"Id": "abc"}]
    server.answer(head(status="204 No Content"))
    engine(server).start("abc")  # no body, no wait for one


def test_a_head_answer_has_no_body_whatever_its_length(server: Misbehaving) -> None:
    """HEAD (stat of a path in a container) announces the length of the body a GET would get."""
    stat = "eyJuYW1lIjoieCJ9"  # base64 of {"name":"x"}
    server.answer(head(f"X-Docker-Container-Path-Stat: {stat}", "Content-Length: 1000"), 2.0)
    assert engine(server, timeout=0.5).stat_path("abc", "/x") == {"name": "x"}


# --- every misbehaviour is an engine error ---------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "error", "words"),
    [
        ((head(JSON, "Content-Length: 100"), b'{"ApiVersion":'), EngineConnectionLost, "cut short after 14 of 100"),
        ((head(JSON, CHUNKED), b"20\r\n", b'{"ApiVersion": "1.4'), EngineConnectionLost, "chunk was cut short"),
        ((head(JSON, CHUNKED), b"2\r\n{}\r\n"), EngineConnectionLost, "closed before the next chunk"),
        ((head(JSON, CHUNKED), b"2\r\n{}\r\n0\r\n"), EngineConnectionLost, "closed before the end of the body"),
        ((head(JSON, CHUNKED), b"zz\r\n{}\r\n0\r\n\r\n"), EngineProtocolError, "malformed chunk size"),
        ((head(JSON, CHUNKED), b"-2\r\n{}\r\n0\r\n\r\n"), EngineProtocolError, "malformed chunk size"),
        ((head(JSON, CHUNKED), b"\r\n{}\r\n0\r\n\r\n"), EngineProtocolError, "malformed chunk size"),
        ((head(JSON, CHUNKED), b"1\r\n{}\r\n0\r\n\r\n"), EngineProtocolError, "chunk longer than its size"),
        ((head(JSON, "Content-Length: 14"), b"<html>oops</ht"), EngineProtocolError, "is not JSON: '<html>oops"),
        ((head(JSON, "Content-Length: ten"), b"{}"), EngineProtocolError, "invalid Content-Length"),
        ((head(JSON, "Transfer-Encoding: gzip"), b"{}"), EngineProtocolError, "unsupported encoding"),
        ((head(JSON, "no colon here"), b"{}"), EngineProtocolError, "malformed header"),
        ((b"SSH-2.0-OpenSSH_9.2\r\n",), EngineProtocolError, "invalid answer"),
        ((b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",), EngineConnectionLost, "closed before the headers"),
        ((), EngineConnectionLost, "closed before the status line"),
    ],
    ids=[
        "content-length-cut",
        "chunk-cut",
        "no-last-chunk",
        "no-final-crlf",
        "chunk-size-not-hex",
        "chunk-size-negative",
        "chunk-size-empty",
        "chunk-overruns-size",
        "not-json",
        "content-length-not-a-number",
        "unknown-encoding",
        "malformed-header",
        "not-http",
        "head-cut",
        "no-answer",
    ],
)
def test_misbehaviour_is_a_clear_engine_error(
    server: Misbehaving, script: tuple[bytes, ...], error: type[EngineError], words: str
) -> None:
    server.answer(*script)
    with pytest.raises(error) as caught:
        engine(server).version()
    assert type(caught.value) is error
    assert words in caught.value.message and "GET /version" in caught.value.message


def test_a_pull_cut_half_way_is_an_error_after_the_progress_it_had(server: Misbehaving) -> None:
    line = b'{"status":"Downloading","id":"a1","progressDetail":{"current":1,"total":9}}\n'
    server.answer(head(JSON, CHUNKED), f"{len(line):x}\r\n".encode() + line + b"\r\n", b"40\r\n" + line[:20])
    seen: list[dict[str, Any]] = []
    with pytest.raises(EngineConnectionLost, match=r"pulling localhost:5000/x:1 was cut off") as caught:
        engine(server).pull(image_ref("localhost:5000/x:1"), None, seen.append)
    assert seen == [{"status": "Downloading", "id": "a1", "progressDetail": {"current": 1, "total": 9}}]
    assert caught.value.hint and "Run the command again" in caught.value.hint


def test_a_stream_line_that_is_not_a_json_object_is_refused(server: Misbehaving) -> None:
    server.answer(head(JSON, CHUNKED), b"6\r\n[1, 2]\r\n0\r\n\r\n")
    with pytest.raises(EngineProtocolError, match="in a stream of JSON objects"):
        list(engine(server).transport.request("GET", "/events").lines())


def test_an_event_stream_waits_for_the_next_line_and_says_when_the_engine_is_gone(server: Misbehaving) -> None:
    first, second = b'{"Action":"start"}\n', b'{"Action":"die"}\n'
    server.answer(
        head(JSON, CHUNKED),
        f"{len(first):x}\r\n".encode() + first + b"\r\n",
        0.6,  # longer than the transport's default timeout below: a stream must wait anyway
        f"{len(second):x}\r\n".encode() + second + b"\r\n",
    )
    events: list[dict[str, Any]] = []
    with pytest.raises(EngineConnectionLost):
        for event in engine(server, timeout=0.3).transport.request("GET", "/events", timeout=None).lines():
            events.append(event)
    assert [e["Action"] for e in events] == ["start", "die"]


def test_no_answer_in_time_is_an_engine_error(server: Misbehaving) -> None:
    server.answer(1.0, head(JSON, "Content-Length: 2"), b"{}")
    with pytest.raises(EngineProtocolError, match=r"did not answer GET /version within 0.2 s"):
        engine(server, timeout=0.2).version()


def test_an_error_answer_to_a_hijack_is_read_by_its_framing(server: Misbehaving) -> None:
    body = b'{"message":"No such exec instance: abc"}'
    server.answer(head(JSON, CHUNKED, status="404 Not Found"), f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    with pytest.raises(EngineError, match="cannot start the command: No such exec instance: abc"):
        engine(server).exec_start("abc", tty=False)


def test_a_hijacked_stream_keeps_the_bytes_read_with_the_head(server: Misbehaving) -> None:
    server.answer(
        head("Connection: Upgrade", "Upgrade: tcp", status="101 UPGRADED") + b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    )
    sock, initial = engine(server).exec_start("abc", tty=False)
    rest = sock.recv(100)
    sock.close()
    assert initial + rest == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ((head(JSON, CHUNKED), b"zz\r\n[]\r\n0\r\n\r\n"), "malformed chunk size"),
        ((head(JSON, "Content-Length: 9"), b"not json!"), "is not JSON"),
        ((head(JSON, "Content-Length: 90"), b"[{"), "dropped during GET /containers/json"),
    ],
    ids=["chunk-size", "not-json", "cut"],
)
def test_the_command_line_reports_it_without_a_traceback(
    server: Misbehaving, tmp_path: Path, script: tuple[bytes, ...], words: str
) -> None:
    server.answer(*script)
    (tmp_path / "ngcws.yaml").write_text("workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n")
    for command in ("ps", "up", "down"):
        result = subprocess.run(
            [sys.executable, "-m", "ngcws", command],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env={**os.environ, "DOCKER_HOST": server.host},
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith("error: ") and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
