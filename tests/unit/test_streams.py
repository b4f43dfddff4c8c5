"""The local terminal: raw mode survives a signal during its set-up, and fails as a message."""

from __future__ import annotations

import errno
import os
import pty
import termios
from collections.abc import Iterator
from typing import Any

import pytest

from ngcws.streams import _RawTerminal, in_foreground


@pytest.fixture
def terminal_on_stdin() -> Iterator[int]:
    """fd 0 is a pty for the test (restored after)."""
    master, slave = pty.openpty()
    saved = os.dup(0)
    os.dup2(slave, 0)
    try:
        yield master
    finally:
        os.dup2(saved, 0)
        for fd in (saved, slave, master):
            os.close(fd)


def interrupted_once(real: Any, error: int) -> Any:
    calls = {"n": 0}

    def call(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise termios.error(error, os.strerror(error))
        return real(*args)

    return call


def test_a_signal_during_raw_mode_set_up_is_retried(terminal_on_stdin: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGHUP arriving while the terminal is set up: `termios.error: Interrupted system call`."""
    before = termios.tcgetattr(0)
    monkeypatch.setattr(termios, "tcgetattr", interrupted_once(termios.tcgetattr, errno.EINTR))
    with _RawTerminal():
        assert not termios.tcgetattr(0)[3] & termios.ECHO  # raw: no echo
    assert termios.tcgetattr(0) == before  # restored


def test_a_terminal_that_cannot_be_set_up_is_an_os_error(
    terminal_on_stdin: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(termios, "tcgetattr", interrupted_once(termios.tcgetattr, errno.EIO))
    with pytest.raises(OSError, match="cannot set up the terminal: Input/output error"), _RawTerminal():
        pass


def test_a_terminal_that_is_not_the_controlling_one_can_be_read(terminal_on_stdin: int) -> None:
    """No job control on it, so no SIGTTIN: stdin is forwarded (the background case: test_inside.py)."""
    assert in_foreground(0) is True
