"""Side-by-side timing of commands: interleaved rounds, medians, spread, peak RSS, engine calls.

Each command runs as a child process; wall time is measured around it and its peak RSS comes from
``wait4()``. Rounds interleave the commands of a case in a rotating order so machine noise hits all
of them alike; an untimed ``before`` step (removing an image, bringing a project down) runs ahead of
each timed run. Compare the ratios printed by one run, not absolute times across runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from enginecalls import EngineCallCounter

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


#: This run's own suffix for every name it gives (projects, containers, labels), so that two runs
#: on one engine, or a run and someone else's project, never touch each other's.
RUN = f"{os.getpid():x}"


class CaseFailed(Exception):
    """A command of a case failed: the case is reported as failed and the run goes on."""


def quiet(argv: Sequence[str], cwd: Path | None = None, check: bool = True) -> str:
    """Run a setup step (untimed); its output is kept for the error only."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise CaseFailed(f"{' '.join(argv)} failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    return done.stdout


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Clean-up that a second Ctrl-C must not cut short (it would leave containers behind)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class Command:
    label: str
    argv: list[str]
    cwd: Path
    before: Callable[[], None] | None = None  # untimed, ahead of every run
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment

    def run(self, env: dict[str, str] | None = None) -> tuple[float, int]:
        if self.before:
            self.before()
        env = {**os.environ, **self.env, **(env or {})}
        with tempfile.TemporaryFile() as err:  # a file, not a pipe: nothing blocks on a full pipe
            start = time.perf_counter()
            proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = code = os.waitstatus_to_exitcode(status)
            if code != 0:
                err.seek(0)
                raise CaseFailed(f"{' '.join(self.argv)} failed ({code}): {err.read().decode(errors='replace')[-800:]}")
        return wall, usage.ru_maxrss * 1024


@dataclass
class Measured:
    label: str
    walls: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # bytes
    calls: list[str] = field(default_factory=list)
    connections: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak_rss_mb(self) -> float:
        """Megabytes of 10**6 bytes (a little more than MiB: the conservative reading of "60 MB")."""
        return max(self.rss) / 1e6


def measure(commands: Sequence[Command], rounds: int, counter: EngineCallCounter | None) -> dict[str, Measured]:
    """One warm-up run of each, one untimed run through the call counter, then ``rounds`` rounds."""
    results = {c.label: Measured(c.label) for c in commands}
    for command in commands:  # warm-up: page cache, pyc files, the engine's own caches
        command.run()
    if counter is not None:
        for command in commands:
            counter.take()
            command.run({"DOCKER_HOST": counter.docker_host})
            results[command.label].calls, results[command.label].connections = counter.take()
    for i in range(rounds):
        shift = i % len(commands)
        for command in [*commands[shift:], *commands[:shift]]:
            wall, rss = command.run()
            results[command.label].walls.append(wall)
            results[command.label].rss.append(rss)
    return results
