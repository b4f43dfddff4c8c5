"""Command bodies shared by the typer CLI and the lean fast path."""

from __future__ import annotations

import sys

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
