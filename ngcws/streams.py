"""Moving bytes between this terminal and a process in a container (exec, run).

Without a TTY the engine multiplexes stdout and stderr into frames (an 8-byte header: stream
number, three zero bytes, big-endian length); with a TTY the stream is raw. stdin is forwarded by
a thread; end of input half-closes the connection, which closes the process's stdin.
"""

from __future__ import annotations

import _socket  # the C socket type, as in engine/transport.py
import contextlib
import errno
import os
import select
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

SignalHandler = Callable[[int], None]


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class Demux:
    """Splits the engine's multiplexed stream into (stream number, payload) pieces."""

    def __init__(self) -> None:
        self.buffer = b""

    def route(self, data: bytes, tty: bool, write: Callable[[int, bytes], None] = write_all) -> None:
        """Send engine output to ``write(fd, data)``: raw to fd 1 with a TTY, else per stream (1 or 2)."""
        if tty:
            write(1, data)
            return
        for stream, payload in self.feed(data):
            write(2 if stream == 2 else 1, payload)

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self.buffer += data
        while len(self.buffer) >= 8:
            stream, length = self.buffer[0], struct.unpack(">I", self.buffer[4:8])[0]
            if len(self.buffer) < 8 + length:
                return
            payload, self.buffer = self.buffer[8 : 8 + length], self.buffer[8 + length :]
            yield stream, payload


def in_foreground(fd: int) -> bool:
    """Whether this process may read terminal ``fd`` now: it is the terminal's foreground process
    group, or the terminal is not its controlling one (no job control: reading cannot stop it)."""
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return True


def _forward_stdin(sock: _socket.socket, fd: int, half_close: bool) -> None:
    """Copy stdin to the process. A terminal is read only while we are its foreground job
    (``ngcws exec train.py > log &`` reads nothing and is never stopped by SIGTTIN; after ``fg``
    it reads again)."""
    terminal = os.isatty(fd)
    try:
        while True:
            if terminal and not in_foreground(fd):
                time.sleep(0.2)
                continue
            try:
                data = os.read(fd, 65536)
            except OSError as exc:  # EIO: sent to the background between the check and the read
                if terminal and exc.errno == errno.EIO and not in_foreground(fd):
                    continue
                return
            if not data:
                break
            sock.sendall(data)
    except OSError:
        return
    if half_close:  # the process sees end of input; with a TTY the engine would end the session
        with contextlib.suppress(OSError):
            sock.shutdown(_socket.SHUT_WR)


def pump(
    sock: _socket.socket,
    initial: bytes,
    *,
    tty: bool,
    forward_stdin: bool,
    on_signal: SignalHandler,
    on_resize: Callable[[], None] | None = None,
    write: Callable[[int, bytes], None] | None = None,
) -> None:
    """Copy the streams until the process ends. SIGINT/SIGTERM/SIGHUP go to ``on_signal``.

    ``write(fd, data)`` receives the output (fd 1 or 2); by default it goes to this process's.
    """
    out = write or write_all
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    old_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    watched = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP] + ([signal.SIGWINCH] if tty else [])
    previous = {s: signal.signal(s, lambda *_: None) for s in watched}
    # A background job that reads the terminal gets EIO instead of being stopped.
    previous[signal.SIGTTIN] = signal.signal(signal.SIGTTIN, signal.SIG_IGN)
    demux = Demux()
    raw = tty and forward_stdin and os.isatty(0) and in_foreground(0)
    terminal = _RawTerminal() if raw else contextlib.nullcontext()
    try:
        with terminal:
            if forward_stdin:
                threading.Thread(target=_forward_stdin, args=(sock, 0, not tty), daemon=True).start()
            pending = initial
            while True:
                if pending:
                    data, pending = pending, b""
                else:
                    ready, _, _ = select.select([sock.fileno(), wake_r], [], [])
                    if wake_r in ready:
                        for signum in os.read(wake_r, 64):
                            if signum == signal.SIGWINCH:
                                if on_resize:
                                    on_resize()
                            else:
                                on_signal(signum)
                    if sock.fileno() not in ready:
                        continue
                    try:
                        data = sock.recv(65536)
                    except ConnectionResetError:
                        data = b""
                if not data:
                    break
                demux.route(data, tty, out)
    finally:
        signal.set_wakeup_fd(old_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(wake_r)
        os.close(wake_w)
        sock.close()


class _RawTerminal:
    """Put the local terminal in raw mode for the session (keys go to the container's TTY).

    A signal arriving during the set-up (SIGHUP from a closing terminal) interrupts the call
    with EINTR, which termios does not retry: we do. Any other failure is an OSError (a message
    at the error boundary), never a ``termios.error`` traceback.
    """

    def __enter__(self) -> None:
        import termios
        import tty

        self.saved: Any = _terminal_call(termios.tcgetattr, 0)
        # TCSANOW, as the docker CLI: what the user typed ahead of the session reaches the
        # container instead of being flushed (setraw's default, TCSAFLUSH, discards it).
        _terminal_call(tty.setraw, 0, termios.TCSANOW)

    def __exit__(self, *exc: object) -> None:
        import termios

        with contextlib.suppress(OSError):  # the terminal may be gone (hang-up): nothing to restore
            _terminal_call(termios.tcsetattr, 0, termios.TCSADRAIN, self.saved)


def _terminal_call(call: Callable[..., Any], *args: Any) -> Any:
    import termios

    while True:
        try:
            return call(*args)
        except termios.error as exc:
            number = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            if number == errno.EINTR:
                continue
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise OSError(number, f"cannot set up the terminal: {reason}") from None


def terminal_size() -> tuple[int, int]:
    """(rows, columns) of the controlling terminal."""
    size = os.get_terminal_size(sys.stdout.fileno() if sys.stdout.isatty() else 0)
    return size.lines, size.columns
