"""Watch mode's loop: keep the engine matching ngcws.yaml, level-triggered. No I/O of its own.

Everything it knows arrives in one inbox, from the sources in :mod:`ngcws.watchsources`: batches
of changed files, the engine's events for the project's containers, the engine going away and
coming back. Whatever arrives, the loop re-plans from a fresh observation (an event is a reason
to look, never the truth), and decides what of the plan may be applied now:

* the guard's holds (:mod:`ngcws.guard`): a recreate that would kill running work waits;
* ``ngcws stop``'s intent (:mod:`ngcws.intent`): a workspace the user stopped stays stopped, and
  its deaths so far and the stop's own never count toward a crash loop;
* a workspace whose own command finished (exit 0) under ``restart: no`` / ``on-failure`` is
  left exited, as ``docker run`` leaves it;
* a container that keeps dying is started again with capped exponential backoff and reported
  as a crash loop with its last log lines.

The engine side (observe, apply, inspect) is a :class:`World`, so the decisions are unit-tested
with a fake one; :mod:`ngcws.watchworld` is the real one.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ngcws.errors import ConfigError, EngineUnavailable, NgcwsError
from ngcws.leftover import left_behind_note
from ngcws.plan import Action, Kind, Plan
from ngcws.spec import DesiredState, Identity

if TYPE_CHECKING:
    from ngcws.guard import Hold
    from ngcws.observed import ObservedContainer

CRASH_LOOP = 3  # consecutive quick deaths that make a crash loop
HEALTHY_AFTER = 30.0  # a container that ran this long before dying starts a fresh count
MAX_BACKOFF = 60.0
SETTLE = 1.0  # after container events, look once more: an event can precede the state it announces
HOLD_RECHECK = 30.0  # a held recreate is re-checked on every exec_die event, and at least this often


@dataclass(frozen=True)
class WatchFlags:
    """What `up --watch` and `watch` accept (cli.py), applied to every reconcile."""

    remove_orphans: bool = False
    down_on_exit: bool = False
    skip_preflight: bool = False
    take_over: bool = False


# --- what arrives in the inbox ----------------------------------------------------------------


@dataclass(frozen=True)
class FilesChanged:
    paths: frozenset[str]  # absolute


@dataclass(frozen=True)
class EngineEvent:
    event: dict[str, Any]  # one item of GET /events


@dataclass(frozen=True)
class EngineLost:
    reason: str


@dataclass(frozen=True)
class EngineBack:
    pass


@dataclass(frozen=True)
class Stop:
    pass


Input = FilesChanged | EngineEvent | EngineLost | EngineBack | Stop


# --- what the loop needs from the world -------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    """One valid reading of the project."""

    state: DesiredState
    files: frozenset[str]  # what it was read from: ngcws.yaml, .env, every env_file (absolute)

    @property
    def restart_on(self) -> dict[str, tuple[str, ...]]:
        """Workspace → its restart_on patterns."""
        return {name: c.restart_on for name, c in self.state.containers.items() if c.restart_on}

    def folders(self) -> frozenset[str]:
        return frozenset(str(Path(f).parent) for f in self.files)

    def roots(self) -> frozenset[str]:
        """The folders to watch (recursively) for the restart_on patterns."""
        base = Path(self.state.identity.directory)
        return frozenset(str(base / glob_root(p)) for patterns in self.restart_on.values() for p in patterns)


@dataclass(frozen=True)
class Exit:
    """How a container ended."""

    code: int
    oom: bool
    ran_for: float  # seconds from start to end
    finished_at: str  # the engine's FinishedAt: identifies this death


Admit = Callable[[Plan], Plan]


class World(Protocol):
    def load(self) -> Loaded: ...  # raises ConfigError
    def follow_files(self, files: frozenset[str], roots: frozenset[str], loose: bool) -> None: ...
    def converge(self, state: DesiredState, admit: Admit) -> None: ...
    def holds(self, state: DesiredState, doomed: list[ObservedContainer]) -> list[Hold]: ...
    def exit_of(self, container: ObservedContainer) -> Exit | None: ...
    def stopped(self, state: DesiredState) -> set[str]: ...
    def last_logs(self, container: ObservedContainer) -> str: ...
    def restart(self, state: DesiredState, workspace: str) -> list[Hold]: ...  # holds, if any
    def left_behind(self, identity: Identity) -> dict[str, list[str]]: ...  # other name → containers


# --- pure helpers ----------------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A restart_on glob → a regex on paths relative to the project folder (``**`` spans folders)."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "(?:/.*)?")  # a folder's pattern covers what is inside it


def glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: ``src/**/*.py`` → ``src``."""
    parts = pattern.split("/")
    fixed = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    else:
        if not any(c in parts[-1] for c in "*?["):
            fixed = parts[:-1]
    return "/".join(fixed) or "."


def matches(path: str, directory: str, patterns: Iterable[str]) -> bool:
    try:
        relative = Path(path).relative_to(directory).as_posix()
    except ValueError:
        return False
    return any(glob_regex(p).fullmatch(relative) for p in patterns)


def backoff(deaths: int) -> float:
    """Seconds before starting a container again after its n-th consecutive quick death."""
    return 0.0 if deaths <= 1 else min(2.0 ** (deaths - 2), MAX_BACKOFF)


def finished(exit: Exit, restart: str, own_command: bool) -> bool:
    """The workspace's own command ended by itself with success, under a policy that keeps it so."""
    return own_command and restart in ("no", "on-failure") and exit.code == 0 and not exit.oom


def without_pull_always(state: DesiredState) -> DesiredState:
    """The state to reconcile on an engine event: ``pull: always`` pulls on a new reading of the
    file (as ``up`` does), not again at every event."""
    containers = {n: c._replace(pull="missing") if c.pull == "always" else c for n, c in state.containers.items()}
    return state._replace(containers=containers)


@dataclass
class Crash:
    deaths: int = 0
    last_death: str = ""
    not_before: float = 0.0


# --- the loop ---------------------------------------------------------------------------------


class Watch:
    """The watcher's decisions. ``run`` until a :class:`Stop` arrives or ``stop`` is set."""

    def __init__(self, world: World, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic) -> None:
        self.world = world
        self.say = say
        self.clock = clock
        self.loaded: Loaded | None = None
        self.engine_up = True
        self.restarts: set[str] = set()
        self.crashes: dict[str, Crash] = {}
        self.told: dict[str, str] = {}  # topic → what was said, so each thing is said once
        self.wake_at: float | None = None
        self.busy = False  # applying: a signal waits for the end of the step
        self.broken = False  # the last reading failed: any file in the folders may be the fix
        self.admitted = Plan()  # what the last reconcile applied
        self.waiting: set[str] = set()  # workspaces whose changes are held back
        self.fresh = True  # a new reading of the file: `pull: always` pulls (once, not at every event)
        self.refused = False  # the last edit was not taken (invalid, or another project): said already
        self.deferred: dict[str, str] = {}  # workspace → why its planned change was not applied now
        #: What the watcher's own recreates, removes and restarts disturb: a container id, or
        #: ``workspace:NAME`` for a restart, until the event that ends the action (start, restart,
        #: destroy). Their kill/die/destroy events are the echo of an action said already, not news.
        self.own: set[str] = set()
        self.stopped_seen: set[str] = set()  # stopped with `ngcws stop`, and its crash count reset

    @property
    def state(self) -> DesiredState:
        assert self.loaded is not None
        return self.loaded.state

    def start(self) -> None:
        """The first reading (an invalid file is an error here: there is no last good state)."""
        self.loaded = self.world.load()
        self.world.follow_files(self.loaded.files, self.loaded.roots(), False)
        self.reconcile()

    def run(self, inbox: queue.Queue[Input], stop: threading.Event) -> None:
        self.start()
        while not stop.is_set():
            timeout = None if self.wake_at is None else max(0.0, self.wake_at - self.clock())
            batch: list[Input] = []
            try:
                batch.append(inbox.get(timeout=timeout))
                while True:
                    batch.append(inbox.get_nowait())
            except queue.Empty:
                pass
            if any(isinstance(item, Stop) for item in batch):
                return
            self.handle(batch)

    def handle(self, batch: list[Input]) -> None:
        self.wake_at = None
        changed = frozenset(p for item in batch if isinstance(item, FilesChanged) for p in item.paths)
        if changed:
            self.files_changed(changed)
        for item in batch:
            if isinstance(item, EngineLost) and self.engine_up:
                self.engine_up = False
                self.say(f"engine unavailable: {item.reason}; reconnecting")
            elif isinstance(item, EngineBack):
                if not self.engine_up:
                    self.say("engine answers again: reconciling")
                self.engine_up = True
            elif isinstance(item, EngineEvent):
                self.event(item.event)
        if self.engine_up:
            self.reconcile()
            if changed and not self.admitted.changes and not self.waiting and not self.refused:
                if self.deferred:
                    left = "; ".join(f"{ws} ({why})" for ws, why in sorted(self.deferred.items()))
                    self.say(f"not applied now: {left}")
                else:
                    self.say("nothing to apply: the engine already matches")
            if any(isinstance(item, EngineEvent) for item in batch):
                self.wake(self.clock() + SETTLE)

    # --- files ----------------------------------------------------------------------------------

    def files_changed(self, paths: frozenset[str]) -> None:
        assert self.loaded is not None
        directory = self.state.identity.directory
        # While the file is invalid, any file in its folders may be the fix (an env_file named
        # before it was created): every change there is worth a reload.
        folders = self.loaded.folders()
        inputs = {p for p in paths if p in self.loaded.files or (self.broken and str(Path(p).parent) in folders)}
        for path in sorted(inputs):
            self.say(f"{_short(path, directory)} changed")
        for workspace, patterns in self.loaded.restart_on.items():
            hits = sorted(p for p in paths if matches(p, directory, patterns))
            if hits:
                more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
                self.say(f"{_short(hits[0], directory)}{more} changed: restart_on of {workspace}")
                self.restarts.add(workspace)
        if inputs:
            self.reload()

    def reload(self) -> None:
        assert self.loaded is not None
        try:
            loaded = self.world.load()
        except ConfigError as error:
            self.refused = True
            self.say(f"error: {error.message}")
            self.say("nothing applied; the last valid state stays in force (fix the file and save again)")
            if not self.broken:
                self.broken = True
                self.world.follow_files(self.loaded.files, self.loaded.roots(), True)
            return
        if self.broken or (loaded.files, loaded.roots()) != (self.loaded.files, self.loaded.roots()):
            self.world.follow_files(loaded.files, loaded.roots(), False)
        self.broken = False
        if loaded.state.identity != self.state.identity:
            self.refused = True
            old, new = self.state.identity.project, loaded.state.identity.project
            if old == new:
                self.say("the project's file changed: follow it with a new `ngcws up --watch`")
                return
            kept = self.world.left_behind(loaded.state.identity).get(old, [])
            self.say(
                f"the project's name changed ({old} → {new}): not followed; this watcher keeps {old} in force"
                + (f" ({', '.join(kept)})" if kept else "")
                + f".\n  To follow it: stop this watcher (Ctrl-C), remove {old}'s containers with"
                f" `ngcws -p {old} down`, then `ngcws up --watch`"
            )
            return
        self.refused = False
        self.loaded = loaded
        self.fresh = True

    # --- engine ---------------------------------------------------------------------------------

    def event(self, event: dict[str, Any]) -> None:
        action = str(event.get("Action") or event.get("status") or "")
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        workspace = attributes.get("ngcws.workspace", "?")
        cause = {str(actor.get("ID") or event.get("id") or ""), f"workspace:{workspace}"} & self.own
        if cause:
            if action in ("start", "restart", "destroy"):  # the watcher's action is over
                self.own -= cause
            return
        if action == "die":
            self.say(f"engine: {workspace} died (exit {attributes.get('exitCode', '?')})")
        elif action in ("oom", "destroy", "kill"):
            signal = f" ({attributes['signal']})" if action == "kill" and "signal" in attributes else ""
            self.say(f"engine: {action} {workspace}{signal}")

    # --- reconciling ----------------------------------------------------------------------------

    def reconcile(self) -> None:
        self.busy = True
        self.admitted = Plan()
        try:
            self.world.converge(self.state if self.fresh else without_pull_always(self.state), self.admit)
            self.fresh = False
            self.told.pop("apply", None)
            if any(a.kind is Kind.CREATE for a in self.admitted.changes):
                self.say_left_behind()
            self.restart_pending()
        except EngineUnavailable as error:
            if self.engine_up:
                self.engine_up = False
                self.say(f"engine unavailable: {error.message}; reconnecting")
        except NgcwsError as error:
            self.tell("apply", f"error: {error.message}" + (f"\n  hint: {error.hint}" if error.hint else ""))
        finally:
            self.busy = False

    def say_left_behind(self) -> None:
        """Containers this file made under another project name (a `name:` changed): said once each."""
        for project, names in self.world.left_behind(self.state.identity).items():
            self.tell(f"left:{project}", f"note: {left_behind_note(project, names)}")

    def admit(self, plan: Plan) -> Plan:
        """What of ``plan`` may be applied now; says once why the rest waits."""
        stopped = self.world.stopped(self.state)
        held: dict[str, Hold] = {}
        doomed = [
            a.container
            for a in plan.actions
            if a.kind in (Kind.RECREATE, Kind.REMOVE)
            and a.container is not None
            and a.container.state != "dead"  # its layer is given up already: nothing to hold
            and a.workspace not in stopped
        ]
        if doomed:
            held = {h.workspace: h for h in self.world.holds(self.state, doomed)}
        admitted: list[Action] = []
        self.waiting = waiting = set()
        self.deferred = {}
        for action in plan.actions:
            ws = action.workspace
            if action.kind is Kind.NOOP:
                continue
            if action.kind is Kind.PULL:
                admitted.append(action)
            elif ws in stopped:
                self.user_stopped(ws, action.container)
                self.deferred[ws] = "stopped with `ngcws stop`: `ngcws start` or `up` applies it"
                self.tell(f"stopped:{ws}", f"{ws} was stopped with `ngcws stop`: left alone until `ngcws start`/`up`")
            elif ws in held and action.kind in (Kind.RECREATE, Kind.REMOVE):
                hold = held[ws]
                waiting.add(ws)
                text = (
                    f"waiting: {action} — held back by {hold.reason}\n"
                    f"  {hold.remedy}; applied as soon as nothing holds it back"
                )
                self.tell(f"held:{ws}", text, same=re.sub(r" \(since [^)]*\)", "", text))
            elif action.kind is Kind.START and action.container is not None:
                if self.may_start(action.container):
                    admitted.append(action)
            else:
                if action.kind in (Kind.RECREATE, Kind.REMOVE) and action.container is not None:
                    self.own.add(action.container.id)
                admitted.append(action)
        for ws in {a.workspace for a in plan.actions} - stopped:
            self.told.pop(f"stopped:{ws}", None)
        self.stopped_seen &= stopped
        for ws in {a.workspace for a in plan.actions} - waiting:
            if self.told.pop(f"held:{ws}", None):
                self.say(f"{ws}: nothing holds it back any more")
        if waiting:
            self.wake(self.clock() + HOLD_RECHECK)
        for warning in plan.warnings:
            self.tell(f"warning:{warning}", f"warning: {warning}")
        self.admitted = Plan(tuple(admitted))
        return self.admitted

    def user_stopped(self, ws: str, container: ObservedContainer | None) -> None:
        """The user stopped ``ws`` (``ngcws stop``): its deaths so far, and the stop's own, are no
        crash. Once per stop: the count starts afresh at the user's next start."""
        if ws in self.stopped_seen:
            return
        self.stopped_seen.add(ws)
        exit = self.world.exit_of(container) if container is not None and container.state != "running" else None
        self.crashes[ws] = Crash(last_death=exit.finished_at if exit else "")

    def may_start(self, container: ObservedContainer) -> bool:
        """An existing container is down: start it now, later (backoff), or never (finished)?"""
        ws = container.workspace
        exit = self.world.exit_of(container)
        if exit is None:
            return True
        want = self.state.containers.get(ws)
        essence = want.essence if want else {}
        if finished(exit, str(essence.get("restart", "no")), essence.get("command") is not None):
            self.tell(f"finished:{ws}", f"{ws}: its command finished (exit 0); left exited (restart: no)")
            return False
        self.told.pop(f"finished:{ws}", None)
        crash = self.crashes.setdefault(ws, Crash())
        now = self.clock()
        if exit.finished_at != crash.last_death:
            crash.deaths = crash.deaths + 1 if exit.ran_for < HEALTHY_AFTER else 1
            crash.last_death = exit.finished_at
            crash.not_before = now + backoff(crash.deaths)
            why = "out of memory" if exit.oom else f"exit {exit.code}"
            if crash.deaths > CRASH_LOOP:
                self.say(f"crash loop: {ws} died {crash.deaths} times in a row ({why}); next start in "
                         f"{backoff(crash.deaths):.0f} s")  # fmt: skip
            elif crash.deaths == CRASH_LOOP:
                logs = self.world.last_logs(container).rstrip()
                shown = "".join(f"\n  | {line}" for line in logs.splitlines()) or "\n  | (no output)"
                self.say(
                    f"crash loop: {ws} died {crash.deaths} times in a row ({why}, after {exit.ran_for:.0f} s); "
                    f"next start in {backoff(crash.deaths):.0f} s. Its last log lines:{shown}"
                )
            elif crash.not_before > now:
                self.say(f"{ws} died again ({why}): starting it in {crash.not_before - now:.0f} s")
        if now < crash.not_before:
            self.wake(crash.not_before)
            return False
        return True

    def restart_pending(self) -> None:
        stopped = self.world.stopped(self.state)
        # A workspace this reconcile created, recreated or started runs fresh code already.
        fresh = {a.workspace for a in self.admitted.changes if a.kind in (Kind.CREATE, Kind.RECREATE, Kind.START)}
        for ws in sorted(self.restarts):
            if ws in stopped or ws not in self.state.containers or ws in fresh:
                self.told.pop(f"held:restart:{ws}", None)
                self.restarts.discard(ws)
                continue
            self.own.add(f"workspace:{ws}")  # before: its events may arrive before restart() returns
            holds = self.world.restart(self.state, ws)
            if holds:
                self.own.discard(f"workspace:{ws}")
                text = f"waiting: restart {ws} — held back by {holds[0].reason}\n  {holds[0].remedy}"
                self.tell(f"held:restart:{ws}", text, same=re.sub(r" \(since [^)]*\)", "", text))
                self.wake(self.clock() + HOLD_RECHECK)
            else:
                self.told.pop(f"held:restart:{ws}", None)
                self.restarts.discard(ws)

    # --- helpers --------------------------------------------------------------------------------

    def wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def tell(self, topic: str, text: str, same: str | None = None) -> None:
        """Say ``text`` unless the last thing said on ``topic`` was the same (``same``: what counts)."""
        key = text if same is None else same
        if self.told.get(topic) != key:
            self.told[topic] = key
            self.say(text)


def _short(path: str, directory: str) -> str:
    try:
        return Path(path).relative_to(directory).as_posix()
    except ValueError:
        return path
