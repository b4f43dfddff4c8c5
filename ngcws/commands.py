"""Command bodies shared by the typer CLI and the lean fast path."""

from __future__ import annotations

import sys
from typing import Any

from ngcws.errors import UsageError
from ngcws.locate import Files


def run_up(
    file: Files,
    project_name: str | None,
    workspaces: list[str] | None,
    pull: str | None,
    force_recreate: bool,
    no_recreate: bool,
    remove_orphans: bool,
    skip_preflight: bool = False,
    take_over: bool = False,
) -> int:
    """``ngcws up``: print the plan as it is applied."""
    from ngcws.controller import Controller
    from ngcws.engine import Engine
    from ngcws.plan import Kind, UpOptions
    from ngcws.present import Console
    from ngcws.state import load_state

    if force_recreate and no_recreate:
        raise UsageError("--force-recreate and --no-recreate cannot be combined")
    controller = Controller(load_state(file, project_name), Engine(), Console())
    plan = controller.up(
        workspaces,
        UpOptions(pull, force_recreate, no_recreate, remove_orphans, take_over=take_over),
        preflight=not skip_preflight,
    )
    from ngcws.intent import clear_stopped

    identity = controller.identity
    started = [n for n in workspaces or controller.every if n in controller.state.containers]  # orphans aside
    clear_stopped(identity.project, identity.directory, started)
    if any(a.kind is Kind.CREATE for a in plan.changes):  # a first up, or one after `name:` changed
        from ngcws import labels as L
        from ngcws.leftover import left_behind, left_behind_note

        listed = controller.engine.list_containers({L.PROJECT_DIR: identity.directory})
        for project, names in left_behind(listed, identity.project, identity.config_file).items():
            controller.reporter.note(left_behind_note(project, names))
    if not plan.changes:
        print("up to date", file=sys.stderr)
    return 0


def run_doctor(file: Files, project_name: str | None, fmt: str) -> int:
    """``ngcws doctor``: every check, for the host and, inside a project, its workspaces."""
    from ngcws.doctor import failed
    from ngcws.engine import Engine
    from ngcws.errors import ConfigNotFound
    from ngcws.preflight import HostFacts, doctor_checks
    from ngcws.present import Console
    from ngcws.state import load_state

    try:
        state = load_state(file, project_name)
    except ConfigNotFound:
        if file:
            raise
        state = None  # outside a project: the host only
    facts = HostFacts(Engine())
    checks = doctor_checks(facts, state)
    Console().doctor(checks, facts.host_info(), fmt)
    return 1 if failed(checks) else 0


def labels_controller(file: Files, project_name: str | None) -> Any:
    """A controller for down, stop, start, restart and ps: these need only the project's identity
    and its containers' labels, so they work when ngcws.yaml's variables cannot be resolved (a note
    says so) and, with -p NAME, without a file."""
    from ngcws.controller import Controller
    from ngcws.engine import Engine
    from ngcws.present import Console
    from ngcws.state import identity_state

    state, note = identity_state(file, project_name)
    console = Console()
    controller = Controller(state, Engine(), console)
    if note is not None:
        console.note(note)
        if not state.workspaces:
            controller.from_labels()
    return controller


def run_ps(file: Files, project_name: str | None, fmt: str) -> int:
    """``ngcws ps``: each workspace's container, state, GPUs and drift; the watcher, if one runs."""
    from ngcws.present import Console

    if fmt not in ("table", "json"):
        raise UsageError(f"--format {fmt}: expected table or json")
    controller = labels_controller(file, project_name)
    rows = controller.status()
    Console().table(rows, fmt)
    if not rows:  # as docker ps: the headers alone, and why
        Console().note(f"no containers of project {controller.identity.project!r}")
    if fmt == "table":
        from ngcws.lock import running_watcher

        watcher = running_watcher(controller.identity.project, controller.identity.directory)
        if watcher:
            import time

            since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(watcher["since"]))
            print(f"watcher: pid {watcher['pid']:.0f}, since {since}")
    return 0
