"""The cluster commands of the command line: ``submit``, ``jobs``, ``export``. Registered by cli.py."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from ngcws.errors import UsageError

jobs_app = typer.Typer(
    help="This project's Slurm jobs: list (default), logs, cancel.",
    invoke_without_command=True,
    no_args_is_help=False,
)
export_app = typer.Typer(help="Write the project for another engine: Kubernetes, Docker Compose.", no_args_is_help=True)

WorkspaceArg = Annotated[
    str | None, typer.Argument(help="Workspace (default: the first in ngcws.yaml)", show_default=False)
]


def _project(ctx: typer.Context) -> Any:
    from ngcws.load import load

    g = ctx.find_root().obj
    return load(g.file, g.project_name)


def _job(ctx: typer.Context, workspace: str | None, nodes: int | None = None) -> Any:
    from ngcws.clusters.job import resolve
    from ngcws.state import current_invoker

    project = _project(ctx)
    name = workspace or next(iter(project.workspaces))
    return resolve(project, name, current_invoker(), nodes)


def _notes(notes: list[str]) -> None:
    from ngcws.present import Console

    console = Console()
    for note in notes:
        console.warning(note)


def submit(
    ctx: typer.Context,
    workspace: WorkspaceArg = None,
    nodes: Annotated[int | None, typer.Option("--nodes", "-N", help="Nodes (overrides distributed.nodes)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the batch script; submit nothing")] = False,
    runtime: Annotated[
        str | None, typer.Option("--runtime", help="auto | pyxis | docker (overrides distributed.slurm.runtime)")
    ] = None,
) -> None:
    """Run a workspace as a multi-node Slurm job (pyxis where installed, else docker on each node)."""
    import ngcws.clusters.slurmctl as slurmctl

    if runtime is not None and runtime not in ("auto", "pyxis", "docker"):
        raise UsageError(f"--runtime {runtime}: expected auto, pyxis or docker")
    job = _job(ctx, workspace, nodes)
    chosen = slurmctl.detect_runtime(runtime or job.slurm.runtime)
    script = slurmctl.render(job, chosen)
    _notes(script.notes)
    if dry_run:
        print(script.text, end="")
        return
    record = slurmctl.submit(job, script)
    print(
        f"submitted job {record.job_id}: {job.workspace} on {job.nodes} node(s), {chosen} runtime;"
        f" output {record.output}",
        file=sys.stderr,
    )
    print(record.job_id)


@jobs_app.callback()
def jobs(ctx: typer.Context, format: Annotated[str, typer.Option("--format", help="table | json")] = "table") -> None:
    """List this project's jobs with their state (squeue, or sacct once Slurm has forgotten them)."""
    if ctx.invoked_subcommand is not None:
        return
    import json
    from dataclasses import asdict

    import ngcws.clusters.slurmctl as slurmctl

    if format not in ("table", "json"):
        raise UsageError(f"--format {format}: expected table or json")
    rows = slurmctl.statuses(str(_project(ctx).directory))
    if format == "json":
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return
    if not rows:
        print("no jobs submitted from this project", file=sys.stderr)
        return
    print(f"{'JOB':<10} {'WORKSPACE':<14} {'STATE':<12} {'ELAPSED':<10} {'NODES':<6} WHERE")
    for r in rows:
        print(f"{r.job_id:<10} {r.workspace:<14} {r.state:<12} {r.elapsed:<10} {r.nodes:<6} {r.where}")


@jobs_app.command("logs")
def jobs_logs(
    ctx: typer.Context,
    job: Annotated[str, typer.Argument(help="Job id")],
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Follow until the job ends")] = False,
) -> None:
    """The job's output (both nodes' tasks, as Slurm collects it)."""
    import ngcws.clusters.slurmctl as slurmctl

    record = slurmctl.record_of(str(_project(ctx).directory), job)
    raise typer.Exit(slurmctl.follow_output(record, follow))


@jobs_app.command("cancel")
def jobs_cancel(ctx: typer.Context, job: Annotated[str, typer.Argument(help="Job id")]) -> None:
    """Cancel a job and wait until its tasks (and their containers) are gone from every node."""
    import ngcws.clusters.slurmctl as slurmctl

    record = slurmctl.record_of(str(_project(ctx).directory), job)
    state = slurmctl.cancel(record)
    print(f"job {record.job_id}: {state}", file=sys.stderr)


@export_app.command("k8s")
def export_k8s(
    ctx: typer.Context,
    workspace: WorkspaceArg = None,
    output: Annotated[str | None, typer.Option("-o", "--output", help="File to write (default: stdout)")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="indexed-job | jobset (overrides distributed.kubernetes.kind)")
    ] = None,
    nodes: Annotated[int | None, typer.Option("--nodes", "-N", help="Nodes (overrides distributed.nodes)")] = None,
) -> None:
    """Kubernetes manifests: an Indexed Job + headless Service, or a JobSet."""
    import ngcws.clusters.k8s as k8s

    if kind is not None and kind not in ("indexed-job", "jobset"):
        raise UsageError(f"--kind {kind}: expected indexed-job or jobset")
    job = _job(ctx, workspace, nodes)
    manifest = k8s.render(job, kind or job.kubernetes.kind)
    _notes(manifest.notes)
    _write(manifest.text, output)


@export_app.command("compose")
def export_compose(
    ctx: typer.Context,
    output: Annotated[str | None, typer.Option("-o", "--output", help="File to write (default: stdout)")] = None,
) -> None:
    """A docker-compose.yml whose `docker compose up` creates what `ngcws up` creates."""
    import ngcws.clusters.compose as compose
    from ngcws.spec import Identity, Secrets, desired_state
    from ngcws.state import current_invoker, user_key

    project = _project(ctx)
    identity = Identity(project.name, str(project.directory), str(project.config_file))
    # Not concealed: the secret values outside env are found in it and written as ${NAME}.
    secrets = Secrets(user_key(), project.secret_env, {})
    desired = desired_state(identity, project.workspaces, current_invoker(), secrets)
    result = compose.render(desired, project.secret_values)
    _notes(result.notes)
    _write(result.text, output)


def _write(text: str, output: str | None) -> None:
    if output is None or output == "-":
        print(text, end="")
        return
    from pathlib import Path

    Path(output).write_text(text)
    print(f"wrote {output}", file=sys.stderr)
