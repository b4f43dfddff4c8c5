"""The lean front door for exec/up/ps accepts exactly the options of the typer commands."""

from __future__ import annotations

import pytest
import typer.main

from ngcws import fastpath
from ngcws.cli import app


def typer_options(name: str) -> set[str]:
    command = typer.main.get_command(app)
    sub = command.commands[name]  # type: ignore[attr-defined]
    options = [p for p in sub.params if p.param_type_name == "option"]
    return {opt for p in options for opt in p.opts + p.secondary_opts} - {"--help", "-h"}


@pytest.mark.parametrize(
    ("name", "options"),
    [("exec", fastpath.EXEC_OPTIONS), ("up", fastpath.UP_OPTIONS), ("ps", fastpath.PS_OPTIONS)],
)
def test_same_options(name: str, options: dict[str, fastpath.Option]) -> None:
    assert set(options) == typer_options(name)


def test_the_choices_are_the_ones_typer_accepts() -> None:
    assert fastpath.dispatch(["up", "--pull", "sometimes"]) is None  # typer says what is wrong
    assert fastpath.dispatch(["ps", "--format", "yaml"]) is None
    for choice in ("always", "missing", "never"):
        assert fastpath.dispatch(["up", "--pull", choice]) is not None
    for choice in ("table", "json"):
        assert fastpath.dispatch(["ps", "--format", choice]) is not None
        assert fastpath.dispatch(["ps", f"--format={choice}"]) is not None


def test_dispatch_takes_exec_up_and_ps_and_leaves_the_rest() -> None:
    assert fastpath.dispatch(["exec", "python", "-c", "print(1)"]) is not None
    assert fastpath.dispatch(["-f", "x.yaml", "-p", "p", "exec", "-W", "train", "-e", "A=1", "ls", "-la"]) is not None
    assert fastpath.dispatch(["up", "--pull", "always", "train"]) is not None
    assert fastpath.dispatch(["exec", "ls", "-h"]) is not None  # -h belongs to ls
    assert fastpath.dispatch(["ps"]) is not None
    for argv in (
        ["exec"],
        ["exec", "--help"],
        ["exec", "-h", "ls"],
        ["exec", "--", "ls"],
        ["exec", "-tT", "ls"],  # combined short flags: typer's reading
        ["exec", "-W"],
        ["exec", "-W", "--up", "ls"],  # a value that looks like an option
        ["exec", "--tty=yes", "ls"],
        ["exec", "-t", "-T", "ls"],
        ["exec", "-"],
        ["up", "--help"],
        ["up", "--bogus"],
        ["up", "--watch"],
        ["up", "--force-recreate", "--no-recreate"],
        ["ps", "--help"],
        ["ps", "extra"],
        ["ps", "--format"],
        ["pull"],
        ["--version"],
    ):
        assert fastpath.dispatch(argv) is None, argv


def test_exec_arguments_after_the_command_belong_to_the_command() -> None:
    ns, command = fastpath.parse(
        ["-u", "0", "python", "-u", "train.py", "--lr", "3"], fastpath.EXEC_OPTIONS, command=True
    )
    assert ns["user"] == "0" and command == ["python", "-u", "train.py", "--lr", "3"]


def test_values_as_click_reads_them() -> None:
    ns, command = fastpath.parse(
        ["-u0", "--workdir=/w", "-eA=1", "--env", "B", "-e", "C=3", "-W", "x", "--workspace", "y", "-t", "ls"],
        fastpath.EXEC_OPTIONS,
        command=True,
    )
    assert ns == {
        "workspace": "y",  # the last one wins
        "tty": True,
        "no_tty": False,
        "user": "0",
        "workdir": "/w",
        "env": ["A=1", "B", "C=3"],
        "bring_up": False,
    }
    assert command == ["ls"]


def test_up_options_and_workspaces_mix() -> None:
    ns, words = fastpath.parse(["a", "--pull", "never", "b", "--take-over"], fastpath.UP_OPTIONS, command=False)
    assert words == ["a", "b"] and ns["pull"] == "never" and ns["take_over"] and not ns["watch"]


def test_f_repeats_on_the_fast_path_too() -> None:
    assert fastpath._globals(["-f", "a.yaml", "--file", "b.yaml", "--file=c.yaml", "up"]) == (
        ["a.yaml", "b.yaml", "c.yaml"],
        None,
        None,
        ["up"],
    )
    assert fastpath._globals(["up"]) == (None, None, None, ["up"])


def test_the_context_flag_on_the_fast_path() -> None:
    for argv in (["-c", "gpu-box", "exec", "ls"], ["--context", "gpu-box", "exec", "ls"], ["--context=gpu-box", "up"]):
        assert fastpath._globals(argv)[2] == "gpu-box", argv
        assert fastpath.dispatch(argv) is not None, argv
