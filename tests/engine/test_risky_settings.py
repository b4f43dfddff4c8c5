"""Risky settings are allowed, and named once in plan and up output, with why."""

from __future__ import annotations

import json

from tests.conftest import Workspace


def test_risky_settings_are_named_in_plan_and_up(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    ipc: host\n"
        "    user: '0:0'\n    mounts: ['.:/workspace', '/etc:/host-etc:ro']\n"
        "  calm:\n"
        f"    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    mounts: ['.:/workspace:ro']\n"
    )
    plan = project.ok("plan")
    assert "risky: train: ipc: host shares the host's IPC namespace" in plan
    assert "risky: train: mounts the host's /etc (read-only)" in plan
    assert f"risky: train: user: 0:0 with {project.dir} mounted read-write: files written there become root's" in plan
    assert "calm:" not in plan.split("risky", 1)[1]
    warnings = json.loads(project.ok("plan", "--format", "json"))["warnings"]
    assert sum("risky: train" in w for w in warnings) == 3
    up = project.ngcws("up")
    err = up.stderr.decode()
    assert up.returncode == 0 and err.count("risky: ") == 3 and err.count("ipc: host shares") == 1, err
    again = project.ngcws("up").stderr.decode()
    assert "risky" not in again and "up to date" in again  # named when applied, not on every no-op
