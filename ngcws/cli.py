"""Present: the ``ngcws`` command line (typer). Thin commands; the error boundary is in main.py.

Each command parses its options, calls the controller (or the lean exec path) and renders the
result. Heavy modules (pydantic models, rich) are imported inside the commands that need them, so
``ngcws exec`` starts fast.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ngcws import __version__
from ngcws.errors import RUN_FAILED, NgcwsError, PreflightError, UsageError

app = typer.Typer(
    name="ngcws",
    help="Declarative project workspaces for NVIDIA NGC deep-learning containers.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Globals:
    file: list[str] | None
    project_name: str | None


def _globals(ctx: typer.Context) -> Globals:
    obj = ctx.find_root().obj
    assert isinstance(obj, Globals)
    return obj


def _version(value: bool) -> None:
    if value:
        print(f"ngcws {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    file: Annotated[
        list[str] | None,
        typer.Option(
            "-f",
            "--file",
            help="ngcws.yaml to use; repeat to merge overrides, later files win (default: ngcws.yaml found here"
            " or in a parent, plus ngcws.override.yaml beside it; env NGCWS_FILE, a :-separated list)",
        ),
    ] = None,
    project_name: Annotated[
        str | None, typer.Option("-p", "--project-name", help="Project name (overrides name: in the file)")
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "-c",
            "--context",
            help="docker context to use (as `docker --context`; overrides DOCKER_HOST, DOCKER_CONTEXT and "
            "`docker context use`)",
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
) -> None:
    if context:
        from ngcws.engine import endpoint

        endpoint.selected_context = context
    ctx.obj = Globals(file, project_name)


def _load(ctx: typer.Context) -> Any:
    from ngcws.load import load

    g = _globals(ctx)
    return load(g.file, g.project_name)


def _controller(ctx: typer.Context) -> Any:
    from ngcws.controller import Controller
    from ngcws.engine import Engine
    from ngcws.present import Console
    from ngcws.state import load_state

    g = _globals(ctx)
    return Controller(load_state(g.file, g.project_name), Engine(), Console())


def _labels_controller(ctx: typer.Context) -> Any:
    from ngcws.commands import labels_controller

    g = _globals(ctx)
    return labels_controller(g.file, g.project_name)


def _pull_option(value: str | None) -> str | None:
    if value is not None and value not in ("always", "missing", "never"):
        raise typer.BadParameter("expected always, missing or never")
    return value


Workspaces = Annotated[list[str] | None, typer.Argument(help="Workspaces (default: all)", show_default=False)]
SkipPreflight = Annotated[
    bool,
    typer.Option(
        "--skip-preflight", help="Do not check first that the host can run what is created (GPU support, memlock)"
    ),
]
PullOpt = Annotated[
    str | None,
    typer.Option("--pull", callback=_pull_option, help="always | missing | never (overrides pull: in the file)"),
]
TakeOverOpt = Annotated[
    bool,
    typer.Option(
        "--take-over",
        help="Adopt this project's containers left by a folder it was moved or renamed out of",
    ),
]


# --- configuration ------------------------------------------------------------------------------


@app.command()
def config(
    ctx: typer.Context,
    format: Annotated[str, typer.Option("--format", help="yaml | json")] = "yaml",
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Show secret env values instead of <redacted>")
    ] = False,
    sources: Annotated[
        bool, typer.Option("--sources", help="Print each value as written, with the file:line it came from")
    ] = False,
    files: Annotated[bool, typer.Option("--files", help="Print the files taking part, one a line")] = False,
) -> None:
    """Validate ngcws.yaml (merged with its overrides) and print it fully resolved, as a valid ngcws.yaml."""
    import json

    from ngcws.resolved import dump_yaml, resolved_file

    project = _load(ctx)
    if files:
        from ngcws.state import input_files

        g = _globals(ctx)
        for path in input_files(g.file, g.project_name):
            print(path)
        return
    if sources:
        _print_sources(project, show_secrets)
        return
    data = resolved_file(project, show_secrets)
    if project.file.distributed is not None and "distributed" not in data:
        data["distributed"] = project.file.distributed.model_dump(mode="json", exclude_unset=True)
    if format == "json":
        print(json.dumps(data, indent=2))
    elif format == "yaml":
        print(dump_yaml(data), end="")
    else:
        raise UsageError(f"--format {format}: expected yaml or json")


def _print_sources(project: Any, show_secrets: bool) -> None:
    """Each value as written, with the file:line:col it came from; secret env values redacted."""
    import json

    from ngcws.merge import sources
    from ngcws.redact import masked

    rows = []
    for path, value, where in sources(project.document):
        parts = path.split(".")
        if not show_secrets and len(parts) >= 3 and parts[2].startswith("env"):
            secret = project.secret_env.get(parts[1], ())
            name = parts[3] if len(parts) > 3 else str(value).partition("=")[0]
            if name in secret:
                value = "<redacted>" if len(parts) > 3 else f"{name}=<redacted>"
        elif not show_secrets and len(parts) >= 3 and parts[0] == "workspaces":
            value = masked(value, project.secret_values.get(parts[1], ()))
        rows.append((f"{path}: {json.dumps(value)}", where))
    width = max(len(text) for text, _ in rows)
    for text, where in rows:
        print(text.ljust(width) + f"  # {where}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of ngcws.yaml."""
    from ngcws.schema import render

    print(render(), end="")


@app.command()
def init(
    image: Annotated[
        str | None, typer.Option("--image", help="Image (default nvcr.io/nvidia/pytorch:23.08-py3)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file")] = False,
    override: Annotated[
        bool,
        typer.Option("--override", help="Write ngcws.override.yaml with this machine's GPUs and InfiniBand instead"),
    ] = False,
    from_docker_run: Annotated[
        str | None,
        typer.Option("--from-docker-run", help="Translate a pasted 'docker run ... IMAGE CMD' line into ngcws.yaml"),
    ] = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="With --from-docker-run: print the file instead of writing it")
    ] = False,
    dest: Annotated[
        str | None, typer.Argument(help="With --from-docker-run: - prints the file instead of writing it")
    ] = None,
) -> None:
    """Write a commented ngcws.yaml (or, with --override, this machine's ngcws.override.yaml)."""
    from pathlib import Path

    from ngcws.init import machine_gpus, write_init, write_override

    if override:
        path = write_override(Path.cwd(), force, machine_gpus(), Path("/dev/infiniband").exists())
        print(f"wrote {path} (keep it out of git); check it with: ngcws config --sources", file=sys.stderr)
        return
    if from_docker_run is not None:
        from ngcws.init import write_from_run

        if dest not in (None, "-"):
            raise UsageError(f"init: unexpected argument {dest!r} (only - to print the file)")
        line = sys.stdin.read() if from_docker_run == "-" else from_docker_run
        text, problems, written = write_from_run(Path.cwd(), line, force, print_only or dest == "-")
        for line in problems:
            print(line, file=sys.stderr)
        if written is None:
            print(text, end="")
        else:
            print(f"wrote {written}; check it with: ngcws config, then: ngcws up", file=sys.stderr)
        return
    path = write_init(Path.cwd(), image, force)
    print(f"wrote {path}; next: ngcws up", file=sys.stderr)


# --- reconciling ----------------------------------------------------------------------------------

RemoveOrphansOpt = Annotated[
    bool, typer.Option("--remove-orphans", help="Remove containers of workspaces no longer in the file")
]
DownOnExitOpt = Annotated[
    bool, typer.Option("--down-on-exit", help="With --watch: remove the workspaces when watching stops")
]


@app.command()
def up(
    ctx: typer.Context,
    workspaces: Workspaces = None,
    pull: PullOpt = None,
    force_recreate: Annotated[bool, typer.Option("--force-recreate", help="Recreate even if nothing changed")] = False,
    no_recreate: Annotated[bool, typer.Option("--no-recreate", help="Never recreate existing containers")] = False,
    remove_orphans: RemoveOrphansOpt = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep reconciling: follow ngcws.yaml, its env files and the engine")
    ] = False,
    skip_preflight: SkipPreflight = False,
    take_over: TakeOverOpt = False,
    down_on_exit: DownOnExitOpt = False,
) -> None:
    """Create, start or recreate workspace containers so they match ngcws.yaml."""
    g = _globals(ctx)
    if watch or down_on_exit:
        from ngcws.watch import WatchFlags
        from ngcws.watchcli import run_watch

        if not watch:
            raise UsageError("--down-on-exit needs --watch")
        refused = {
            "WORKSPACES": workspaces,
            "--pull": pull,
            "--force-recreate": force_recreate,
            "--no-recreate": no_recreate,
        }
        if any(refused.values()):
            dropped = ", ".join(k for k, v in refused.items() if v)
            raise UsageError(f"--watch follows every workspace with the file's pull policy: drop {dropped}")
        raise typer.Exit(
            run_watch(g.file, g.project_name, WatchFlags(remove_orphans, down_on_exit, skip_preflight, take_over))
        )
    from ngcws.commands import run_up

    raise typer.Exit(
        run_up(
            g.file,
            g.project_name,
            workspaces,
            pull,
            force_recreate,
            no_recreate,
            remove_orphans,
            skip_preflight,
            take_over,
        )
    )


#: What `up` accepts but `up --watch` refuses (tests/unit/test_cli.py checks that `watch` takes the rest).
NOT_WITH_WATCH = ("--pull", "--force-recreate", "--no-recreate", "--watch")


@app.command("watch")
def watch_(
    ctx: typer.Context,
    remove_orphans: RemoveOrphansOpt = False,
    skip_preflight: SkipPreflight = False,
    take_over: TakeOverOpt = False,
    down_on_exit: DownOnExitOpt = False,
) -> None:
    """`ngcws up --watch`: reconcile, then keep the engine matching ngcws.yaml until Ctrl-C."""
    from ngcws.watch import WatchFlags
    from ngcws.watchcli import run_watch

    g = _globals(ctx)
    raise typer.Exit(
        run_watch(g.file, g.project_name, WatchFlags(remove_orphans, down_on_exit, skip_preflight, take_over))
    )


@app.command()
def plan(
    ctx: typer.Context,
    workspaces: Workspaces = None,
    format: Annotated[str, typer.Option("--format", help="text | json")] = "text",
    check: Annotated[bool, typer.Option("--check", help="Exit 3 when changes are pending, 0 when up to date")] = False,
    pull: PullOpt = None,
    remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
) -> None:
    """Show what `ngcws up` would do, and why, without changing anything."""
    from ngcws.plan import UpOptions
    from ngcws.present import Console

    if format not in ("text", "json"):
        raise UsageError(f"--format {format}: expected text or json")
    result = _controller(ctx).plan(workspaces, UpOptions(pull=pull, remove_orphans=remove_orphans))
    Console().plan(result, format)
    if result.errors:  # `up` would refuse at preflight
        raise typer.Exit(PreflightError.exit_code)
    if check and result.changes:
        raise typer.Exit(3)


@app.command()
def down(
    ctx: typer.Context,
    volumes: Annotated[bool, typer.Option("-v", "--volumes", help="Also remove the project's named volumes")] = False,
    remove_orphans: Annotated[bool, typer.Option("--remove-orphans")] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Remove even containers holding unsaved work or running exec sessions"),
    ] = False,
    take_over: TakeOverOpt = False,
) -> None:
    """Stop and remove the project's containers. Bind-mounted host folders are never touched."""
    result = _labels_controller(ctx).down(remove_orphans, volumes, force, take_over)
    if not result.actions:
        print("nothing to remove", file=sys.stderr)


@app.command()
def diff(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Argument(help="Workspace (default: the first)", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every change the engine lists, ignored ones too")] = False,
) -> None:
    """What changed in the workspace container's filesystem outside its mounts (what a recreate loses)."""
    from ngcws.unsaved import KINDS, summary

    container, changes, raw = _controller(ctx).diff(workspace)
    if all_:
        for entry in sorted(raw, key=lambda e: str(e.get("Path"))):
            print(f"{'CAD'[int(entry.get('Kind', 0))]} {entry.get('Path')}")
        return
    for change in changes:
        print(f"{'CAD'[change.kind]} {change.path}")
    if not changes:
        print(f"{container.name}: no unsaved work (ignored paths: `ngcws diff --all`)", file=sys.stderr)
        return
    counts = ", ".join(f"{n} {KINDS[k]}" for k in (1, 0) if (n := sum(1 for c in changes if c.kind == k)))
    print(f"{container.name}: {counts} outside the mounts:", file=sys.stderr)
    for line in summary(changes):
        print(f"  {line}", file=sys.stderr)


@app.command()
def snapshot(
    ctx: typer.Context,
    workspace: Annotated[str | None, typer.Argument(help="Workspace (default: the first)", show_default=False)] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="TAG, or a whole REPOSITORY:TAG (default: ngcws-snapshot/NAME:TIME)")
    ] = None,
) -> None:
    """Save a workspace container's filesystem as a local image, so a recreate loses nothing."""
    reference = _controller(ctx).snapshot(workspace, tag)
    print(f"saved as {reference}; to use it, put this line in the workspace in ngcws.yaml:", file=sys.stderr)
    print(f"image: {reference}")


@app.command()
def ps(ctx: typer.Context, format: Annotated[str, typer.Option("--format", help="table | json")] = "table") -> None:
    """Each workspace's container, state, GPUs and drift from ngcws.yaml."""
    from ngcws.commands import run_ps

    g = _globals(ctx)
    raise typer.Exit(run_ps(g.file, g.project_name, format))


@app.command()
def pull(ctx: typer.Context, workspaces: Workspaces = None) -> None:
    """Pull the workspaces' images."""
    _controller(ctx).pull(workspaces)


def _lifecycle(ctx: typer.Context, verb: str, workspaces: list[str] | None) -> None:
    """``stop`` records its workspaces (controller.lifecycle, before stopping: a watcher must not
    take the stop for a crash); ``start``/``restart`` clear the record, even when one fails."""
    from ngcws.intent import clear_stopped

    controller = _labels_controller(ctx)
    selected = controller.state.select(workspaces)
    identity = controller.identity
    try:
        controller.lifecycle(verb, workspaces)
    finally:
        if verb != "stop":
            clear_stopped(identity.project, identity.directory, selected)


@app.command()
def stop(ctx: typer.Context, workspaces: Workspaces = None) -> None:
    """Stop workspace containers (kept for `ngcws start`)."""
    _lifecycle(ctx, "stop", workspaces)


@app.command()
def start(ctx: typer.Context, workspaces: Workspaces = None) -> None:
    """Start stopped workspace containers as they are (use `up` to apply ngcws.yaml changes)."""
    _lifecycle(ctx, "start", workspaces)


@app.command()
def restart(ctx: typer.Context, workspaces: Workspaces = None) -> None:
    """Restart workspace containers (use `up` to apply ngcws.yaml changes)."""
    _lifecycle(ctx, "restart", workspaces)


# --- working inside ---------------------------------------------------------------------------------

WorkspaceOpt = Annotated[
    str | None, typer.Option("--workspace", "-W", help="Workspace (default: the first in ngcws.yaml)")
]
_PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}


@app.command("exec", context_settings=_PASSTHROUGH)
def exec_(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(help="Command and arguments", show_default=False)],
    workspace: WorkspaceOpt = None,
    tty: Annotated[bool, typer.Option("-t", "--tty", help="Allocate a TTY")] = False,
    no_tty: Annotated[bool, typer.Option("-T", "--no-tty", help="Never allocate a TTY")] = False,
    user: Annotated[str | None, typer.Option("-u", "--user", help="USER or UID[:GID]")] = None,
    workdir: Annotated[
        str | None, typer.Option("-w", "--workdir", help="Working directory inside the container")
    ] = None,
    env: Annotated[
        list[str] | None, typer.Option("-e", "--env", help="KEY=VALUE (or KEY, from your environment)")
    ] = None,
    bring_up: Annotated[bool, typer.Option("--up", help="Run `ngcws up` for the workspace first")] = False,
) -> None:
    """Run a command in a running workspace, exactly as if it ran here."""
    from ngcws.workinside import ExecOptions, exec_in

    g = _globals(ctx)
    requested = True if tty else False if no_tty else None
    options = ExecOptions(command, workspace, requested, user, workdir, env or [], bring_up)
    raise typer.Exit(exec_in(options, g.file, g.project_name))


@app.command()
def shell(ctx: typer.Context, workspace: WorkspaceOpt = None) -> None:
    """An interactive login shell (bash if the image has it) in a running workspace."""
    from ngcws.workinside import shell as open_shell

    g = _globals(ctx)
    raise typer.Exit(open_shell(workspace, g.file, g.project_name))


@app.command(context_settings=_PASSTHROUGH)
def run(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None, typer.Argument(help="Command (default: the workspace's)", show_default=False)
    ] = None,
    workspace: WorkspaceOpt = None,
    rm: Annotated[bool, typer.Option("--rm/--no-rm", help="Remove the container afterwards")] = True,
    tty: Annotated[bool, typer.Option("-t", "--tty")] = False,
    no_tty: Annotated[bool, typer.Option("-T", "--no-tty")] = False,
    skip_preflight: SkipPreflight = False,
) -> None:
    """Run a one-off container with the workspace's full spec (GPUs, mounts, shm, env)."""
    from ngcws.workinside import run_oneoff

    g = _globals(ctx)
    requested = True if tty else False if no_tty else None
    try:
        status = run_oneoff(workspace, command or [], rm, requested, g.file, g.project_name, not skip_preflight)
    except NgcwsError as error:  # as `docker run`: 125 is ngcws's or the engine's failure, not the command's
        if not isinstance(error, UsageError):  # a mistake on the command line stays 2
            error.exit_code = RUN_FAILED
        raise
    raise typer.Exit(status)


@app.command()
def doctor(ctx: typer.Context, format: Annotated[str, typer.Option("--format", help="text | json")] = "text") -> None:
    """Check that this host can run the workspaces: engine, driver, GPUs, NVIDIA support, shm, memlock, logins."""
    from ngcws.commands import run_doctor

    if format not in ("text", "json"):
        raise UsageError(f"--format {format}: expected text or json")
    g = _globals(ctx)
    raise typer.Exit(run_doctor(g.file, g.project_name, format))


@app.command()
def logs(
    ctx: typer.Context,
    workspace: WorkspaceOpt = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow until Ctrl-C")] = False,
    tail: Annotated[str, typer.Option("--tail", help="Lines from the end, or all")] = "all",
    timestamps: Annotated[bool, typer.Option("--timestamps")] = False,
) -> None:
    """The workspace container's output."""
    from ngcws.workinside import logs as show_logs

    g = _globals(ctx)
    raise typer.Exit(show_logs(workspace, follow, tail, timestamps, g.file, g.project_name))


# --- beyond one machine ----------------------------------------------------------------------------

from ngcws.clusters.commands import export_app, jobs_app, submit  # noqa: E402  (registered last)

app.command()(submit)
app.add_typer(jobs_app, name="jobs")
app.add_typer(export_app, name="export")
