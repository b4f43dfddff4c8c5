"""The lean front door for exec/up accepts exactly the options of the typer commands."""

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


def argparse_options(parser: object) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings}  # type: ignore[attr-defined]


@pytest.mark.parametrize(("name", "parser"), [("exec", fastpath._exec_parser()), ("up", fastpath._up_parser())])
def test_same_options(name: str, parser: object) -> None:
    assert argparse_options(parser) == typer_options(name)


def test_dispatch_takes_exec_and_up_and_leaves_the_rest() -> None:
    assert fastpath.dispatch(["exec", "python", "-c", "print(1)"]) is not None
    assert fastpath.dispatch(["-f", "x.yaml", "-p", "p", "exec", "-W", "train", "-e", "A=1", "ls", "-la"]) is not None
    assert fastpath.dispatch(["up", "--pull", "always", "train"]) is not None
    assert fastpath.dispatch(["exec", "ls", "-h"]) is not None  # -h belongs to ls
    for argv in (
        ["exec"],
        ["exec", "--help"],
        ["exec", "-h", "ls"],
        ["up", "--help"],
        ["up", "--bogus"],
        ["ps"],
        ["--version"],
        ["up", "--pull", "sometimes"],
    ):
        assert fastpath.dispatch(argv) is None, argv


def test_exec_arguments_after_the_command_belong_to_the_command() -> None:
    ns = fastpath._exec_parser().parse_args(["-u", "0", "python", "-u", "train.py", "--lr", "3"])
    assert ns.user == "0" and ns.command == ["python", "-u", "train.py", "--lr", "3"]


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
