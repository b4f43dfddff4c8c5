"""Connections to engines that are more than a socket away: ``tcp://`` with TLS, and ``ssh://``.

Both hand the transport an ordinary connected socket (one end of a socket pair), so requests,
hijacked exec streams, ``select()`` and half-close behave exactly as on the local unix socket:

* TLS: a thread relays between the pair and the TLS connection. ``ssl`` is imported here, and
  only when a TLS endpoint is used (the local socket never pays for it).
* ssh: the user's own ``ssh`` runs ``docker system dial-stdio`` on the remote host, as the docker
  CLI does, with the pair's other end as its stdin and stdout; so the user's keys, agent and
  ``~/.ssh/config`` (ports, jump hosts, ControlMaster) apply. The remote host needs the docker CLI.
"""

from __future__ import annotations

import contextlib
import select
import socket
import subprocess
import threading
from urllib.parse import urlsplit

from ngcws.engine.endpoint import TLS, Endpoint
from ngcws.errors import EngineUnavailable


def connect(endpoint: Endpoint, timeout: float | None) -> socket.socket:
    if endpoint.scheme == "ssh":
        return _ssh(endpoint, timeout)
    assert endpoint.tls is not None
    return _tls(endpoint, endpoint.tls, timeout)


class SshSocket(socket.socket):
    """Our end of the pair whose other end is an ``ssh`` process's stdin and stdout."""

    process: subprocess.Popen[bytes] | None = None

    def failure(self, first: str) -> EngineUnavailable:
        """What ssh (or the remote shell) said when the engine's answer never came; ``first`` is
        what came instead."""
        said = ""
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            if self.process.stderr is not None and self.process.poll() is not None:
                with contextlib.suppress(OSError, ValueError):
                    said = self.process.stderr.read().decode(errors="replace").strip()
        return EngineUnavailable(
            "cannot reach the Docker engine over ssh: "
            + ("; ".join(part for part in (said, first) if part) or "ssh closed the connection"),
            hint="Check that `ssh HOST docker system dial-stdio` works for you (keys, ~/.ssh/config), "
            "and that the remote host has the docker CLI and may use its engine.",
        )


def ssh_command(host: str) -> list[str]:
    """The ssh command line the docker CLI uses for ``ssh://[user@]host[:port]``."""
    parts = urlsplit(host)
    if not parts.hostname:
        raise EngineUnavailable(f"{host}: no host name in the ssh:// address")
    if parts.path not in ("", "/"):
        raise EngineUnavailable(f"{host}: an ssh:// address takes no path (the remote's engine is its default)")
    args = ["ssh", "-o", "ConnectTimeout=30", "-T"]
    if parts.username:
        args += ["-l", parts.username]
    if parts.port:
        args += ["-p", str(parts.port)]
    return [*args, "--", parts.hostname, "docker", "system", "dial-stdio"]


def _ssh(endpoint: Endpoint, timeout: float | None) -> socket.socket:
    ours, theirs = socket.socketpair()
    sock = SshSocket(fileno=ours.detach())
    try:
        sock.process = subprocess.Popen(
            ssh_command(endpoint.host),
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        sock.close()
        raise EngineUnavailable(
            f"{endpoint.host} needs the ssh client, and `ssh` is not on PATH",
            hint="Install OpenSSH's client (`sudo apt-get install openssh-client`).",
        ) from None
    finally:
        theirs.close()
    sock.settimeout(timeout)
    return sock


def _tls(endpoint: Endpoint, tls: TLS, timeout: float | None) -> socket.socket:
    import ssl

    parts = urlsplit(endpoint.host)
    hostname = parts.hostname or "localhost"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        if tls.verify:
            if tls.ca:
                context.load_verify_locations(tls.ca)
            else:
                context.load_default_certs()
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if tls.cert and tls.key:
            context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise EngineUnavailable(
            f"cannot use the TLS files for {endpoint.host}: {exc}",
            hint="Check DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) or the context's TLS material.",
        ) from None
    raw = socket.create_connection((hostname, parts.port or 2375), timeout=timeout)
    try:
        secure = context.wrap_socket(raw, server_hostname=hostname)
    except ssl.SSLCertVerificationError as exc:
        raw.close()
        raise EngineUnavailable(
            f"the engine at {endpoint.host} has a certificate that cannot be verified: {exc.verify_message}",
            hint="Use the CA that signed the engine's certificate (ca.pem in DOCKER_CERT_PATH or the context).",
        ) from None
    except (ssl.SSLError, OSError) as exc:
        raw.close()
        raise EngineUnavailable(
            f"the TLS handshake with the engine at {endpoint.host} failed: {exc}",
            hint="Does the engine expect a client certificate (cert.pem, key.pem), or no TLS at all?",
        ) from None
    secure.setblocking(False)  # a TLS record that is not data (a session ticket) must not block the relay
    ours, theirs = socket.socketpair()
    threading.Thread(target=_relay, args=(theirs, secure), daemon=True, name="ngcws-tls").start()
    ours.settimeout(timeout)
    return ours


def _relay(plain: socket.socket, secure: socket.socket) -> None:
    """Copy both ways until both sides have finished; an end of input is passed on as half-close."""
    import ssl

    reading = {plain, secure}
    try:
        while reading:
            pending = secure in reading and secure.pending()  # type: ignore[attr-defined]
            ready = [secure] if pending else select.select(list(reading), [], [])[0]
            for source in ready:
                try:
                    data = source.recv(65536)
                except ssl.SSLWantReadError:
                    continue
                except (OSError, ssl.SSLError):
                    data = b""
                sink = secure if source is plain else plain
                if data:
                    try:
                        _send_all(sink, data)
                    except OSError:
                        return
                    continue
                reading.discard(source)
                # Half-close the other way, as the docker CLI does: TLS's close_notify (the session
                # stays readable: only the first half of the TLS shutdown is done), or a plain
                # shutdown of the pair.
                with contextlib.suppress(OSError):
                    if sink is secure:
                        _close_notify(secure)
                    else:
                        sink.shutdown(socket.SHUT_WR)
    finally:
        plain.close()
        secure.close()


def _send_all(sink: socket.socket, data: bytes) -> None:
    """sendall() that also works on the non-blocking TLS socket."""
    import ssl

    view = memoryview(data)
    while view:
        try:
            view = view[sink.send(view) :]
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            select.select([], [sink], [], 1)


def _close_notify(secure: socket.socket) -> None:
    """Send TLS's close_notify without giving up the reading side (SSL_shutdown's first half)."""
    import ssl

    # Raises "want read" once close_notify is sent: the peer's own comes at the end of its data.
    with contextlib.suppress(ssl.SSLWantReadError, ssl.SSLWantWriteError):
        secure.unwrap()  # type: ignore[attr-defined]
