"""Side-by-side timing of CLIs: interleaved rounds, medians, ratios. Used by the benchmark scripts.

Each command runs as a child process; wall time is measured around it and its peak RSS comes
from wait4(). Rounds interleave the commands (in a rotating order) so machine noise hits all of
them alike; compare the ratios printed by one run, not absolute times across runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

TESTBED_ENV = Path(os.environ.get("NGCWS_TESTBED_ENV", "/var/lib/ngcws-testbed/env"))


def testbed() -> dict[str, str]:
    if not TESTBED_ENV.is_file():
        sys.exit(f"no {TESTBED_ENV}: run scripts/testbed first")
    pairs = (line.split("=", 1) for line in TESTBED_ENV.read_text().splitlines() if "=" in line)
    return {key: value.strip("'") for key, value in pairs}


def ngcws_command() -> list[str]:
    """The installed console script itself (not a pyenv shim, which adds its own start-up)."""
    script = Path(sys.executable).parent / "ngcws"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ngcws"]


def devcontainer_command() -> list[str] | None:
    for candidate in (shutil.which("devcontainer"), "/opt/devcontainers/node_modules/.bin/devcontainer"):
        if candidate and Path(candidate).exists():
            return [candidate]
    return None


def run_once(argv: Sequence[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read() if proc.stderr else b""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode(errors='replace')[-500:]}")
    return wall, usage.ru_maxrss


def compare(commands: dict[str, tuple[Sequence[str], Path]], rounds: int, baseline: str, subject: str) -> None:
    names = list(commands)
    for name in names:  # warm-up: caches, page cache, pyc files
        run_once(*commands[name])
    walls: dict[str, list[float]] = {n: [] for n in names}
    rss: dict[str, list[int]] = {n: [] for n in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            wall, peak = run_once(*commands[name])
            walls[name].append(wall)
            rss[name].append(peak)
    print(f"{'command':<34} {'median s':>9} {'min s':>7} {'peak RSS MB':>12}  {subject} ÷ this")
    ours = statistics.median(walls[subject])
    for name in names:
        med = statistics.median(walls[name])
        peak_mb = statistics.median(rss[name]) / 1024
        print(f"{name:<34} {med:9.3f} {min(walls[name]):7.3f} {peak_mb:12.1f}  {ours / med:6.2f}")
    base = statistics.median(walls[baseline])
    print(f"\n{subject} / {baseline}: {ours / base:.2f} (median of {rounds} interleaved rounds)")
