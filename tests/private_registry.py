"""A registry of a test's own, for tests that stop it, lock it or cut its connections.

:class:`PrivateRegistry` runs ``docker-registry`` (the test bed installs it) on a free
127.0.0.1 port with its own storage, optionally behind htpasswd. Engines treat 127.0.0.0/8 as an
insecure registry, so no TLS is needed. :class:`CuttingProxy` sits in front of it and, while
``cut`` is set, closes every blob download after ``after`` bytes: a connection cut mid-pull.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateRegistry:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ngcws-registry-"))
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, htpasswd: Path | None = None) -> None:
        lines = [
            "version: 0.1",
            "log: {level: error}",
            f"storage: {{filesystem: {{rootdirectory: {self.dir / 'data'}}}, delete: {{enabled: true}}}}",
            f"http: {{addr: {self.address}}}",
        ]
        if htpasswd:
            lines.append(f"auth: {{htpasswd: {{realm: ngcws-test, path: {htpasswd}}}}}")
        config = self.dir / "config.yml"
        config.write_text("\n".join(lines) + "\n")
        with (self.dir / "log").open("ab") as log:
            self.process = subprocess.Popen(
                ["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private registry did not start: {(self.dir / 'log').read_text()[-2000:]}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.address}/v2/", timeout=2).close()
        except urllib.error.HTTPError:
            return True  # 401: up, and locked
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class CuttingProxy:
    """TCP proxy to ``target``; while ``cut`` is set, blob downloads end after ``after`` bytes."""

    def __init__(self, target: str, after: int = 256 * 1024) -> None:
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.after = after
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            try:
                upstream = stack.enter_context(socket.create_connection(self.target))
            except OSError:
                return
            state = {"blob": False}

            def upward() -> None:
                with contextlib.suppress(OSError):
                    while data := client.recv(65536):
                        if b"/blobs/sha256:" in data.split(b"\r\n", 1)[0]:
                            state["blob"] = True
                        upstream.sendall(data)
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)

            threading.Thread(target=upward, daemon=True).start()
            sent = 0
            with contextlib.suppress(OSError):
                while data := upstream.recv(65536):
                    if self.cut and state["blob"] and sent + len(data) > self.after:
                        client.sendall(data[: max(0, self.after - sent)])
                        client.shutdown(socket.SHUT_RDWR)  # the connection dies mid-blob
                        return
                    client.sendall(data)
                    sent += len(data)

    def close(self) -> None:
        self.listener.close()
