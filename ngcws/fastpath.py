"""A lean front door for the two commands users run all day: ``exec`` and ``up``.

Importing typer (with its pydantic adapters) costs ~70 ms, about what ``docker exec`` takes in
all. ``main()`` therefore parses these two commands with argparse when it can, and hands every
other command, ``--help``, and anything it does not recognise to the typer app in
:mod:`ngcws.cli`, which stays the one definition of the command line. ``tests/test_fastpath.py``
checks that both accept the same options.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ngcws.locate import Files


class _Unsupported(Exception):
    """Not for the fast path: let typer handle it (help, errors, other commands)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Unsupported(message)


def _globals(argv: list[str]) -> tuple[list[str] | None, str | None, str | None, list[str]]:
    files: list[str] = []
    project = context = None
    rest = list(argv)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("-f", "--file", "-p", "--project-name", "-c", "--context") and rest:
            value = rest.pop(0)
        elif flag.startswith(("--file=", "--project-name=", "--context=")):
            flag, value = flag.split("=", 1)
        else:
            raise _Unsupported(flag)
        if flag in ("-f", "--file"):
            files.append(value)
        elif flag in ("-c", "--context"):
            context = value
        else:
            project = value
    return files or None, project, context, rest


def _exec_parser() -> _Parser:
    parser = _Parser(prog="ngcws exec", add_help=False)
    parser.add_argument("--workspace", "-W")
    parser.add_argument("-t", "--tty", action="store_true")
    parser.add_argument("-T", "--no-tty", action="store_true")
    parser.add_argument("-u", "--user")
    parser.add_argument("-w", "--workdir")
    parser.add_argument("-e", "--env", action="append", default=[])
    parser.add_argument("--up", dest="bring_up", action="store_true")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def _up_parser() -> _Parser:
    parser = _Parser(prog="ngcws up", add_help=False)
    parser.add_argument("--pull", choices=["always", "missing", "never"])
    parser.add_argument("--force-recreate", action="store_true")
    parser.add_argument("--no-recreate", action="store_true")
    parser.add_argument("--remove-orphans", action="store_true")
    parser.add_argument("--skip-preflight", action="store_true")
    parser.add_argument("--take-over", action="store_true")
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--down-on-exit", action="store_true")
    parser.add_argument("workspaces", nargs="*")
    return parser


def dispatch(argv: list[str]) -> Callable[[], int] | None:
    """A runner for ``argv`` if the fast path handles it, else None."""
    try:
        file, project, context, rest = _globals(argv)
        if not rest or rest[0] not in ("exec", "up"):
            return None
        command, args = rest[0], rest[1:]  # -h/--help before the command: argparse refuses it
        if command == "exec":
            ns = _exec_parser().parse_args(args)
            if not ns.command or ns.command[0].startswith("-") or (ns.tty and ns.no_tty):
                return None
            return lambda: _run_exec(ns, file, project, context)
        ns = _up_parser().parse_args(args)
        if any(w.startswith("-") for w in ns.workspaces) or (ns.force_recreate and ns.no_recreate):
            return None
        if ns.watch or ns.down_on_exit:
            return None  # typer checks the combination; a watcher's start-up time does not matter
        return lambda: _run_up(ns, file, project, context)
    except _Unsupported:
        return None


def _select(context: str | None) -> None:
    """``-c/--context``: the engine every Engine() of this process talks to (engine/endpoint.py)."""
    if context:
        from ngcws.engine import endpoint

        endpoint.selected_context = context


def _run_exec(ns: argparse.Namespace, file: Files, project: str | None, context: str | None = None) -> int:
    _select(context)
    from ngcws.workinside import ExecOptions, exec_in

    tty = True if ns.tty else False if ns.no_tty else None
    options = ExecOptions(ns.command, ns.workspace, tty, ns.user, ns.workdir, ns.env, ns.bring_up)
    return exec_in(options, file, project)


def _run_up(ns: argparse.Namespace, file: Files, project: str | None, context: str | None = None) -> int:
    _select(context)
    from ngcws.commands import run_up

    return run_up(
        file,
        project,
        ns.workspaces or None,
        ns.pull,
        ns.force_recreate,
        ns.no_recreate,
        ns.remove_orphans,
        ns.skip_preflight,
        ns.take_over,
    )
