"""Command bodies shared by the typer CLI and the lean fast path."""

from __future__ import annotations

import sys

from ngcws.errors import UsageError


def run_up(
    file: str | None,
    project_name: str | None,
    workspaces: list[str] | None,
    pull: str | None,
    force_recreate: bool,
    no_recreate: bool,
    remove_orphans: bool,
) -> int:
    """``ngcws up``: print the plan as it is applied."""
    from ngcws.controller import Controller
    from ngcws.engine import Engine
    from ngcws.plan import UpOptions
    from ngcws.present import Console
    from ngcws.state import load_state

    if force_recreate and no_recreate:
        raise UsageError("--force-recreate and --no-recreate cannot be combined")
    controller = Controller(load_state(file, project_name), Engine(), Console())
    plan = controller.up(workspaces, UpOptions(pull, force_recreate, no_recreate, remove_orphans))
    if not plan.changes:
        print("up to date", file=sys.stderr)
    return 0
