"""A lean front door for the commands users run all day: ``exec``, ``up`` and ``ps``.

Importing typer (with its pydantic adapters) costs ~70 ms, more than ``docker exec`` takes in
all, and argparse with the modules it pulls in (gettext, locale, shutil) a few more. ``main()``
therefore parses these commands here, with a small table of their options, when it can, and hands
every other command, ``--help``, and anything it does not recognise (combined short flags, ``--``,
a value that looks like an option, a choice it does not know) to the typer app in
:mod:`ngcws.cli`, which stays the one definition of the command line and says what is wrong.
``tests/unit/test_fastpath.py`` checks that both accept the same options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ngcws.locate import Files


class _Unsupported(Exception):
    """Not for the fast path: let typer handle it (help, errors, other commands)."""


class Option:
    """One option: where its value goes; ``value``: it takes one; ``repeat``: each use adds one;
    ``choices``: the values it accepts (any other goes to typer, which says what is wrong)."""

    def __init__(
        self, dest: str, value: bool = False, repeat: bool = False, choices: Sequence[str] | None = None
    ) -> None:
        self.dest, self.value, self.repeat, self.choices = dest, value, repeat, choices


def _options(*entries: tuple[tuple[str, ...], Option]) -> dict[str, Option]:
    return {flag: option for flags, option in entries for flag in flags}


EXEC_OPTIONS = _options(
    (("--workspace", "-W"), Option("workspace", value=True)),
    (("-t", "--tty"), Option("tty")),
    (("-T", "--no-tty"), Option("no_tty")),
    (("-u", "--user"), Option("user", value=True)),
    (("-w", "--workdir"), Option("workdir", value=True)),
    (("-e", "--env"), Option("env", value=True, repeat=True)),
    (("--up",), Option("bring_up")),
)
UP_OPTIONS = _options(
    (("--pull",), Option("pull", value=True, choices=("always", "missing", "never"))),
    (("--force-recreate",), Option("force_recreate")),
    (("--no-recreate",), Option("no_recreate")),
    (("--remove-orphans",), Option("remove_orphans")),
    (("--skip-preflight",), Option("skip_preflight")),
    (("--take-over",), Option("take_over")),
    (("--watch",), Option("watch")),
    (("--down-on-exit",), Option("down_on_exit")),
)
PS_OPTIONS = _options((("--format",), Option("format", value=True, choices=("table", "json"))))


def parse(args: list[str], options: dict[str, Option], *, command: bool) -> tuple[dict[str, Any], list[str]]:
    """The options' values (flags False, values None, repeated ones a list) and the positional
    arguments. ``command``: the first positional argument starts a command whose arguments are
    its own (``exec -u 0 python -u x.py``); else options and positionals may mix (``up a --pull never b``)."""
    values: dict[str, Any] = {o.dest: [] if o.repeat else False if not o.value else None for o in options.values()}
    positional: list[str] = []
    rest = list(args)
    while rest:
        token = rest.pop(0)
        if token == "-" or not token.startswith("-"):
            positional.append(token)
            if command:
                return values, positional + rest
            continue
        flag, value = token, None
        if token.startswith("--") and "=" in token:
            flag, value = token.split("=", 1)
        elif not token.startswith("--") and len(token) > 2 and token[:2] in options:
            flag, value = token[:2], token[2:]  # -u0, -eKEY=VALUE: as click reads them
        option = options.get(flag)
        if option is None or token == "--":
            raise _Unsupported(token)
        if not option.value:
            if value is not None:
                raise _Unsupported(token)
            values[option.dest] = True
            continue
        if value is None:
            if not rest or rest[0].startswith("-"):
                raise _Unsupported(token)  # typer says a value is missing (or takes "-x" as one)
            value = rest.pop(0)
        if option.choices is not None and value not in option.choices:
            raise _Unsupported(token)
        if option.repeat:
            values[option.dest].append(value)
        else:
            values[option.dest] = value
    return values, positional


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


def dispatch(argv: list[str]) -> Callable[[], int] | None:
    """A runner for ``argv`` if the fast path handles it, else None."""
    try:
        file, project, context, rest = _globals(argv)
        if not rest or rest[0] not in ("exec", "up", "ps"):
            return None
        command, args = rest[0], rest[1:]  # -h/--help before the command: typer handles it
        if command == "exec":
            ns, words = parse(args, EXEC_OPTIONS, command=True)
            if not words or words[0] == "-" or (ns["tty"] and ns["no_tty"]):
                return None
            return lambda: _run_exec(ns, words, file, project, context)
        if command == "ps":
            ns, words = parse(args, PS_OPTIONS, command=False)
            if words:
                return None
            return lambda: _run_ps(ns, file, project, context)
        ns, words = parse(args, UP_OPTIONS, command=False)
        if "-" in words or (ns["force_recreate"] and ns["no_recreate"]):
            return None
        if ns["watch"] or ns["down_on_exit"]:
            return None  # typer checks the combination; a watcher's start-up time does not matter
        return lambda: _run_up(ns, words, file, project, context)
    except _Unsupported:
        return None


def _select(context: str | None) -> None:
    """``-c/--context``: the engine every Engine() of this process talks to (engine/endpoint.py)."""
    if context:
        from ngcws.engine import endpoint

        endpoint.selected_context = context


def _run_exec(ns: dict[str, Any], command: list[str], file: Files, project: str | None, context: str | None) -> int:
    _select(context)
    from ngcws.workinside import ExecOptions, exec_in

    tty = True if ns["tty"] else False if ns["no_tty"] else None
    options = ExecOptions(command, ns["workspace"], tty, ns["user"], ns["workdir"], ns["env"], ns["bring_up"])
    return exec_in(options, file, project)


def _run_ps(ns: dict[str, Any], file: Files, project: str | None, context: str | None) -> int:
    _select(context)
    from ngcws.commands import run_ps

    return run_ps(file, project, ns["format"] or "table")


def _run_up(ns: dict[str, Any], workspaces: list[str], file: Files, project: str | None, context: str | None) -> int:
    _select(context)
    from ngcws.commands import run_up

    return run_up(
        file,
        project,
        workspaces or None,
        ns["pull"],
        ns["force_recreate"],
        ns["no_recreate"],
        ns["remove_orphans"],
        ns["skip_preflight"],
        ns["take_over"],
    )
