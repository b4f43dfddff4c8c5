"""ps/plan/doctor output: a rich table and colour on a terminal, plain text in a pipe, NO_COLOR honoured."""

from __future__ import annotations

import io

import pytest

from ngcws.controller import Status
from ngcws.present import Console

ROWS = [Status("train", "p-train", "abc123", "running", "img:1", "none", "Up 2 minutes", "shm_size 1g → 2g")]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_pipe_gets_plain_aligned_text() -> None:
    out = io.StringIO()
    Console(out=out, err=io.StringIO()).table(ROWS, "table")
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["WORKSPACE", "CONTAINER", "ID", "STATE", "IMAGE", "GPUS", "STATUS", "DRIFT", "HEALTH"]
    assert "\x1b[" not in out.getvalue() and lines[1].startswith("train      p-train")


def test_a_terminal_gets_a_coloured_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    out = Terminal()
    Console(out=out, err=io.StringIO()).table(ROWS, "table")
    text = out.getvalue()
    assert "\x1b[32mrunning" in text and "\x1b[33mshm_size 1g → 2g" in text and "WORKSPACE" in text


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    out = Terminal()
    Console(out=out, err=io.StringIO()).table(ROWS, "table")
    text = out.getvalue()
    assert "\x1b[3" not in text and "running" in text  # no colour (bold headers are not colour)
