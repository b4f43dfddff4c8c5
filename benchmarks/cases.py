"""The cases of ``benchmarks/run``: each sets up what it needs, measures, and removes what it made.

A case returns one :class:`Result`: the measurements of every command it ran and the figure
that is judged (a ratio of medians against a reference measured in the same rounds, or a peak RSS).
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from enginecalls import EngineCallCounter
from harness import Command, Measured, measure, quiet, testbed
from projects import Skipped, foreign_containers, image_size_mb, layer_count, projects, pull_image, write_ngcws

FOREIGN = 300
MANY = 20


@dataclass
class Result:
    key: str
    title: str
    measured: dict[str, Measured]
    subject: str
    references: list[str]
    target: float
    stretch: float | None = None
    unit: str = "×"  # "×": ratio of medians; "MB": the subject's peak RSS
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        """The fastest of the references (the issue's "fastest of docker-compose / devcontainer")."""
        present = [r for r in self.references if r in self.measured]
        return min(present, key=lambda r: self.measured[r].median) if present else ""

    @property
    def value(self) -> float | None:
        if self.unit == "MB":
            return self.measured[self.subject].peak_rss_mb
        if not self.reference:
            return None
        return self.measured[self.subject].median / self.measured[self.reference].median

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value <= self.target


Case = Callable[[int, EngineCallCounter | None], Result]


def exec_true(rounds: int, counter: EngineCallCounter | None) -> Result:
    with projects(1, devcontainer=True) as p:
        commands = [
            Command("docker exec C true", ["docker", "exec", p.first_container, "true"], p.root),
            Command("ngcws exec true", [*p.ngcws, "exec", "true"], p.ngcws_dir),
        ]
        if p.compose_dir:
            argv = [*p.compose, "exec", "-T", "train", "true"]
            commands.append(Command("docker-compose exec -T train true", argv, p.compose_dir))
        if p.devcontainer and p.devcontainer_dir:
            argv = [*p.devcontainer, "exec", "--workspace-folder", str(p.devcontainer_dir), "true"]
            commands.append(Command("devcontainer exec true", argv, p.root))
        measured = measure(commands, rounds, counter)
    return Result(
        "exec", "`ngcws exec true`, running workspace", measured, "ngcws exec true", ["docker exec C true"], 1.5, 1.3
    )


def up_noop(rounds: int, counter: EngineCallCounter | None) -> Result:
    with projects(1, devcontainer=True) as p:
        commands = [
            Command("docker start C (running)", ["docker", "start", p.first_container], p.root),
            Command("ngcws up (1, no-op)", [*p.ngcws, "up"], p.ngcws_dir),
        ]
        if p.compose_dir:
            commands.append(Command("docker-compose up -d (1, no-op)", [*p.compose, "up", "-d"], p.compose_dir))
        if p.devcontainer and p.devcontainer_dir:
            argv = [*p.devcontainer, "up", "--workspace-folder", str(p.devcontainer_dir)]
            commands.append(Command("devcontainer up (no-op)", argv, p.root))
        measured = measure(commands, rounds, counter)
    return Result(
        "up-noop",
        "`ngcws up`, nothing to do, 1 workspace",
        measured,
        "ngcws up (1, no-op)",
        ["docker-compose up -d (1, no-op)", "devcontainer up (no-op)"],
        0.3,
    )


def up_noop_busy(rounds: int, counter: EngineCallCounter | None) -> Result:
    """The same no-op on an empty engine, with FOREIGN unrelated running containers, and on the
    empty engine again; the reference pools both empty phases, so a drift of the machine's load
    over the case counts on both sides."""
    with projects(1) as p:

        def phase(suffix: str) -> list[Command]:
            found = [Command(f"ngcws up ({suffix})", [*p.ngcws, "up"], p.ngcws_dir)]
            if p.compose_dir:
                found.append(Command(f"docker-compose up -d ({suffix})", [*p.compose, "up", "-d"], p.compose_dir))
            # A control that never talks to the engine: how much the machine itself slows down
            # with that many running containers (their shims), apart from any engine call.
            found.append(Command(f"python3 -c pass ({suffix})", [sys.executable, "-c", "pass"], p.root))
            return found

        def running() -> int:
            return len(quiet(["docker", "ps", "-q"]).split())

        empty = running()
        before = measure(phase("empty engine"), (rounds + 1) // 2, counter)
        with foreign_containers(FOREIGN):
            busy = running()
            measured = measure(phase(f"{FOREIGN} foreign"), rounds, counter)
        after = measure(phase("empty engine"), rounds // 2, None)
        for label, first in before.items():
            first.walls += after[label].walls
            first.rss += after[label].rss
        measured |= before
    busy_control, empty_control = (measured[f"python3 -c pass ({k})"] for k in (f"{FOREIGN} foreign", "empty engine"))
    control = busy_control.median / empty_control.median
    return Result(
        "up-busy",
        f"`ngcws up`, nothing to do, {FOREIGN} unrelated containers on the engine",
        measured,
        f"ngcws up ({FOREIGN} foreign)",
        ["ngcws up (empty engine)"],
        1.1,
        notes=[
            f"containers running on the engine: {empty} in the empty phases, {busy} in the busy one; "
            "the empty rounds are taken before and after the busy ones",
            f"the control that never calls the engine (python3 -c pass) took {control:.2f}× as long in the "
            "busy phase as in the empty ones: the machine's own slow-down with that many containers running",
        ],
    )


def up_noop_many(rounds: int, counter: EngineCallCounter | None) -> Result:
    with projects(MANY) as p:
        commands = [Command(f"ngcws up ({MANY}, no-op)", [*p.ngcws, "up"], p.ngcws_dir)]
        if p.compose_dir:
            argv = [*p.compose, "up", "-d"]
            commands.append(Command(f"docker-compose up -d ({MANY}, no-op)", argv, p.compose_dir))
        measured = measure(commands, rounds, counter)
    return Result(
        "up-noop-20",
        f"`ngcws up`, nothing to do, {MANY} workspaces",
        measured,
        f"ngcws up ({MANY}, no-op)",
        [f"docker-compose up -d ({MANY}, no-op)"],
        0.3,
    )


def up_create_many(rounds: int, counter: EngineCallCounter | None) -> Result:
    with projects(MANY, up=False) as p:
        cold_cache = p.root / "cold-cache"

        def down_and_forget() -> None:
            p.ngcws_down()
            shutil.rmtree(cold_cache, ignore_errors=True)

        commands = [
            Command(f"ngcws up (create {MANY})", [*p.ngcws, "up"], p.ngcws_dir, before=p.ngcws_down),
            Command(
                f"ngcws up (create {MANY}, cold cache)",
                [*p.ngcws, "up"],
                p.ngcws_dir,
                before=down_and_forget,
                env={"XDG_CACHE_HOME": str(cold_cache)},
            ),
        ]
        if p.compose_dir:
            argv = [*p.compose, "up", "-d"]
            commands.append(
                Command(f"docker-compose up -d (create {MANY})", argv, p.compose_dir, before=p.compose_down)
            )
        measured = measure(commands, rounds, counter)
    return Result(
        "up-create-20",
        f"`ngcws up` creating {MANY} workspaces (images present)",
        measured,
        f"ngcws up (create {MANY})",
        [f"docker-compose up -d (create {MANY})"],
        1.0,
    )


def down_many(rounds: int, counter: EngineCallCounter | None) -> Result:
    with projects(MANY, up=False) as p:
        commands = [Command(f"ngcws down ({MANY})", [*p.ngcws, "down"], p.ngcws_dir, before=p.ngcws_up)]
        if p.compose_dir:
            argv = [*p.compose, "down"]
            commands.append(Command(f"docker-compose down ({MANY})", argv, p.compose_dir, before=p.compose_up))
        measured = measure(commands, rounds, counter)
    return Result(
        "down-20",
        f"`ngcws down`, {MANY} workspaces",
        measured,
        f"ngcws down ({MANY})",
        [f"docker-compose down ({MANY})"],
        1.0,
    )


def ps_many(rounds: int, counter: EngineCallCounter | None) -> Result:
    with projects(MANY) as p:
        label = f"label=ngcws.project={p.project}"
        commands = [
            Command(f"docker ps --filter {label}", ["docker", "ps", "--filter", label], p.root),
            Command(f"ngcws ps ({MANY})", [*p.ngcws, "ps"], p.ngcws_dir),
        ]
        if p.compose_dir:
            commands.append(Command(f"docker-compose ps ({MANY})", [*p.compose, "ps"], p.compose_dir))
        measured = measure(commands, rounds, counter)
    return Result(
        "ps-20", f"`ngcws ps`, {MANY} workspaces", measured, f"ngcws ps ({MANY})", [f"docker ps --filter {label}"], 2.0
    )


def pull(rounds: int, counter: EngineCallCounter | None) -> Result:
    image = pull_image()
    with projects(1, up=False) as p:
        write_ngcws(p.ngcws_dir, p.project, image, 1)

        def absent() -> None:
            """Remove the image and check it is gone: a pull after a removal the engine refused (a
            container uses the image) fetches nothing and would be timed as if it had."""
            ids = quiet(["docker", "images", "-q", "--no-trunc", image]).split()
            quiet(["docker", "rmi", image], check=False)
            if ids and subprocess.run(["docker", "image", "inspect", ids[0]], capture_output=True).returncode == 0:
                raise Skipped(f"{image} cannot be removed before a pull (a container uses it?): nothing to measure")

        commands = [
            Command("docker pull IMAGE", ["docker", "pull", image], p.root, before=absent),
            Command("ngcws pull", [*p.ngcws, "pull"], p.ngcws_dir, before=absent),
        ]
        try:
            measured = measure(commands, rounds, counter)
            size, layers = image_size_mb(image), layer_count(image)
        finally:
            quiet(["docker", "rmi", image], check=False)  # the image store as it was; the registry keeps it
    return Result(
        "pull",
        "`ngcws pull` of a multi-layer image from the local registry",
        measured,
        "ngcws pull",
        ["docker pull IMAGE"],
        1.05,
        notes=[f"IMAGE = {image}: {size:.0f} MB, {layers} layers, removed (`docker rmi`) before every pull"],
    )


def rss_of_create(create: Result) -> Result:
    """The peak RSS of ``ngcws up`` creating MANY workspaces, from that case's rounds: the higher of
    the runs with the desired-state cache and those without (a first ``up`` after an edit loads
    the file with pydantic)."""
    ours = [m for label, m in create.measured.items() if label.startswith("ngcws")]
    peak = max(ours, key=lambda m: m.peak_rss_mb)
    return Result(
        "rss", f"peak RSS of `ngcws up` creating {MANY} workspaces", {peak.label: peak}, peak.label, [], 60.0, unit="MB"
    )


#: key → (case, rounds in a full run, rounds with --quick)
CASES: dict[str, tuple[Case, int, int]] = {
    "exec": (exec_true, 20, 5),
    "up-noop": (up_noop, 15, 5),
    "up-busy": (up_noop_busy, 15, 5),
    "up-noop-20": (up_noop_many, 10, 3),
    "up-create-20": (up_create_many, 6, 2),
    "down-20": (down_many, 6, 2),
    "ps-20": (ps_many, 15, 5),
    "pull": (pull, 3, 1),
}


def spread(measured: Measured) -> str:
    return f"{min(measured.walls):.3f}–{max(measured.walls):.3f}"


def stdev(measured: Measured) -> float:
    return statistics.stdev(measured.walls) if len(measured.walls) > 1 else 0.0


def engine_facts() -> dict[str, str]:
    version = quiet(["docker", "version", "-f", "{{.Server.Version}} (API {{.Server.APIVersion}})"]).strip()
    return {"engine": f"dockerd {version}", "registry": testbed()["NGCWS_TB_REGISTRY"]}
