"""Controller: observe → plan → apply. The only place that sequences engine writes; no printing.

What happens is reported through a :class:`Reporter`, which the CLI renders.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from ngcws import intent
from ngcws import labels as L
from ngcws.chains import Chain, down_chains, lifecycle_chains, up_chains
from ngcws.engine import Engine
from ngcws.errors import EngineError, HeldBack, NgcwsError, UsageError
from ngcws.imageref import image_ref
from ngcws.lock import project_lock
from ngcws.observed import Observed, ObservedContainer
from ngcws.parallel import Stopped, failed, parallel_limit, run_chains
from ngcws.plan import (
    Action,
    Kind,
    Plan,
    UpOptions,
    moved,
    oneoffs,
    owned,
    plan_down,
    plan_up,
    pull_actions,
    recreate_reason,
)
from ngcws.spec import DesiredContainer, DesiredState, Invoker, container_name

if TYPE_CHECKING:  # the guard is imported only when something would be destroyed: no-op up stays lean
    from ngcws.guard import Hold
    from ngcws.unsaved import Change


class Reporter(Protocol):
    def action(self, action: Action) -> None: ...
    def progress(self, workspace: str, message: dict[str, Any]) -> None: ...
    def note(self, text: str) -> None: ...
    def warning(self, text: str) -> None: ...
    def confirm(self, holds: list[Hold], question: str) -> bool: ...


@dataclass(frozen=True)
class Status:
    """One row of ``ngcws ps``."""

    workspace: str
    name: str
    container_id: str
    state: str
    image: str
    gpus: Any
    status: str
    drift: str
    gpu_use: tuple[dict[str, Any], ...] = ()  # the GPUs it holds, with memory, utilisation, processes
    health: str = ""
    error: str = ""  # the engine's message when the container's last start failed
    stopped_by_user: bool = False  # down since `ngcws stop` (intent.py): a watcher leaves it so


def with_stop_intent(rows: list[Status], stopped: set[str], ours: list[ObservedContainer]) -> list[Status]:
    """Say which workspaces are down because the user ran `ngcws stop` (not a crash: nothing restarts them)."""
    theirs = {c.id[:12] for c in ours if c.workspace in stopped and c.state != "running"}
    note = "stopped by `ngcws stop`; `ngcws start` or `up` brings it back"
    return [
        replace(r, stopped_by_user=True, status=f"{r.status}; {note}" if r.status else note)
        if r.container_id in theirs
        else r
        for r in rows
    ]


def _gone(path: str) -> bool:
    """Whether ``path`` certainly no longer exists (a folder we may not read is not "gone")."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def short_error(message: str) -> str:
    """The runtime's own reason at the end of a chain of wrappers.

    ``failed to create shim task: OCI runtime create failed: ...: error setting rlimit type 8:
    operation not permitted: unknown`` → ``error setting rlimit type 8: operation not permitted``.
    """
    parts = message.removesuffix(": unknown").split(": ")
    return ": ".join(parts[-2:])


#: Sees the final plan before anything but pulls is applied; returns what may be applied.
Admit = Callable[[Plan], Plan]


class Controller:
    """Makes the engine match a :class:`DesiredState`."""

    def __init__(self, state: DesiredState, engine: Engine, reporter: Reporter) -> None:
        self.state = state
        self.engine = engine
        self.reporter = reporter
        self.identity = state.identity
        self.every = list(state.workspaces)
        self._facts: Any = None

    @property
    def facts(self) -> Any:
        """The engine's and host's facts (:class:`ngcws.preflight.HostFacts`), gathered on demand."""
        if self._facts is None:
            from ngcws.preflight import HostFacts

            self._facts = HostFacts(self.engine)
        return self._facts

    # --- desired and observed -----------------------------------------------------------------

    def desired(self, names: Iterable[str]) -> list[DesiredContainer]:
        return [self.state.containers[n] for n in names]

    def observe(self, desired: list[DesiredContainer]) -> Observed:
        """One label-filtered list of the project's containers, and the local id of each image."""
        entries = self.engine.list_containers({L.PROJECT: self.identity.project})
        images: dict[str, str | None] = {}
        for image in {d.image for d in desired}:
            found = self.engine.inspect_image(image)
            images[image] = str(found["Id"]) if found else None
        containers = tuple(self._true_state(ObservedContainer.from_list_entry(e)) for e in entries)
        runtime = None  # the engine's default runtime, asked only when a runtime is named (equivalence)
        if any("runtime" in d.essence for d in desired) or any("runtime" in (c.essence or {}) for c in containers):
            runtime = str(self.engine.info().get("DefaultRuntime") or "") or None
        return Observed(containers, images, self._moved_from(containers), runtime)

    def _true_state(self, container: ObservedContainer) -> ObservedContainer:
        """The list keeps saying ``removing`` for a container whose removal failed (it is dead):
        ask the container itself, or ``up`` would wait for a removal that never ends."""
        if container.state != "removing":
            return container
        found = self.engine.inspect_container(container.id)
        if found is None:
            return replace(container, state="removing")  # gone meanwhile: waiting returns at once
        return replace(container, state=str((found.get("State") or {}).get("Status") or container.state))

    def _moved_from(self, containers: tuple[ObservedContainer, ...]) -> frozenset[str]:
        """Other folders of this project's containers whose ngcws.yaml is gone (moved or renamed here?)."""
        folders = set()
        for container in containers:
            folder, config = container.labels.get(L.PROJECT_DIR), container.labels.get(L.CONFIG_FILE)
            if folder and config and folder != self.identity.directory and _gone(config):
                folders.add(folder)
        return frozenset(folders)

    def plan(self, names: list[str] | None, options: UpOptions) -> Plan:
        from ngcws.preflight import gpu_notes

        desired = self.desired(self.state.select(names))
        plan = plan_up(desired, self.every, self.observe(desired), self.identity.directory, options)
        every = self.desired(self.every)
        notes = gpu_notes(self.facts, desired, self.identity.directory, every)
        forced = self._forced(names or [], plan, options)
        held = self._holds(plan, forced)
        holds = [f"held back: {h.workspace}: {h.reason}\n  {h.remedy}" for h in held]
        from ngcws.preflight import plan_failures

        errors = tuple(plan_failures(self.facts, plan, every))
        return Plan(plan.actions, (*plan.warnings, *notes, *self.risks(desired), *holds), errors)

    def preflight(self, desired: Iterable[DesiredContainer], plan: Plan | None = None) -> None:
        """Refuse, before anything is stopped or removed, what creation or start would refuse.

        With the ``plan`` of ``up``, host ports too (those of the containers it creates or starts)."""
        from ngcws.preflight import port_scope, preflight

        preflight(self.facts, desired, *port_scope(plan, self.desired(self.every)))

    def risks(self, desired: Iterable[DesiredContainer]) -> list[str]:
        """Risky settings of these workspaces, one line each (risky.py)."""
        from ngcws.risky import findings

        home = os.path.expanduser("~")
        found = []
        for want in desired:
            texts = findings(want.essence, self.identity.directory, home)
            found += [f"risky: {want.workspace}: {text}" for text in texts]
            if want.exposed:
                found.append(
                    f"risky: {want.workspace}: {' and '.join(want.exposed)} hold a secret variable's value as it is "
                    "(the engine needs it there): plans and the container's labels show it"
                )
        return found

    # --- commands -----------------------------------------------------------------------------

    def up(
        self, names: list[str] | None, options: UpOptions, preflight: bool = True, admit: Admit | None = None
    ) -> Plan:
        """Apply the plan. The guard holds back what would lose work, or ``admit`` (the watcher's,
        which reports what is held back and waits) decides what of the plan to apply now."""
        names, orphans = self._orphans_named(names, options)
        desired = [] if orphans and not names else self.desired(self.state.select(names))
        every = self.every
        self._check_networks(desired)
        with self._locked():
            plan = plan_up(desired, every, self.observe(desired), self.identity.directory, options)
            pulls = [a for a in plan.actions if a.kind is Kind.PULL]
            if pulls:
                for action in pulls:
                    try:
                        self._apply(action)
                    except NgcwsError as exc:  # pulls come first: no container was touched
                        said = (exc.hint or "").rstrip()
                        said += "" if not said or said.endswith((".", "!", "?")) else "."
                        exc.hint = " ".join(filter(None, [said, "No container was created or changed."]))
                        raise
                # The pulls may have moved tags to new images: plan the containers again.
                plan = plan_up(
                    desired, every, self.observe(desired), self.identity.directory, replace(options, pulls_done=True)
                )
                plan = Plan((*pulls, *plan.actions), plan.warnings)
            if admit is not None:
                plan = admit(plan)
            making = [a.desired for a in plan.actions if a.kind in (Kind.CREATE, Kind.RECREATE) and a.desired]
            if preflight and any(a.kind in (Kind.CREATE, Kind.RECREATE, Kind.START) for a in plan.actions):
                self.preflight(making, plan)
            for warning in (*plan.warnings, *self.risks(making)):
                self.reporter.warning(warning)
            if making:
                from ngcws.preflight import gpu_notes, remote_mount_notes

                for note in remote_mount_notes(self.facts, making):
                    self.reporter.warning(note)
                for note in gpu_notes(self.facts, making, self.identity.directory, self.desired(self.every)):
                    self.reporter.warning(note)
            held: dict[str, Hold] = {}
            if admit is None:
                forced = self._forced([*(names or []), *orphans], plan, options)
                held = self._guard(plan, "recreate", forced)
            chains = up_chains(a for a in plan.actions if a.kind is not Kind.PULL and a.workspace not in held)
            failures = self._apply_chains(chains)
            if held:
                orphans_held = held.keys() - set(self.every)
                retry = "ngcws up" + (" --remove-orphans" if orphans_held else "") + " --force-recreate"
                holdback = HeldBack(list(held.values()), force=f"{retry} {' '.join(sorted(held))}", applied=True)
                if not failures:
                    raise holdback
                failures.append(("", holdback))
            if failures:
                raise failed(failures, len(chains) + len(held))
        return plan

    def down(self, remove_orphans: bool, volumes: bool, force: bool = False, take_over: bool = False) -> Plan:
        with self._locked():
            observed = self.observe([])
            plan = plan_down(observed, self.identity.directory, remove_orphans, self.every, take_over)
            for warning in plan.warnings:
                self.reporter.warning(warning)
            held = {} if force else self._guard(plan, "remove", set())
            order = {name: i for i, name in enumerate(self.every)}  # the file's order, then the name
            doomed = sorted(
                (a for a in plan.actions if a.workspace not in held),
                key=lambda a: (order.get(a.workspace, len(order)), a.container.name if a.container else ""),
            )
            chains = down_chains(doomed)
            failures = self._apply_chains(chains, volumes=volumes, again="ngcws down")
            if held:
                holdback = HeldBack(list(held.values()), force="ngcws down --force", applied=True)
                if not failures:
                    raise holdback
                failures.append(("", holdback))
            if failures:
                raise failed(failures, len(chains) + len(held))
            if volumes:
                for volume in self.engine.list_volumes(
                    L.project_filter(self.identity.project, self.identity.directory)
                ):
                    self.engine.remove_volume(volume["Name"])
                    self.reporter.note(f"removed volume {volume['Name']}")
        return plan

    def ensure_image(self, want: DesiredContainer) -> None:
        """Pull ``want``'s image if its pull policy says so (``ngcws run``)."""
        found = self.engine.inspect_image(want.image)
        observed = Observed(images={want.image: str(found["Id"]) if found else None})
        for action in pull_actions(want, observed, UpOptions()):
            self._apply(action)

    def pull(self, names: list[str] | None) -> None:
        for want in self.desired(self.state.select(names)):
            self._apply(Action(Kind.PULL, want.workspace, want.image, desired=want))

    def lifecycle(self, verb: str, names: list[str] | None, reason: str = "") -> list[str]:
        """``stop`` / ``start`` / ``restart`` existing containers, each workspace on its own (in parallel,
        output in the file's order, as ``up``); return the workspaces touched.

        Every workspace is tried: failures are raised together, each named after its workspace.
        ``stop`` records (intent.py) every selected workspace that has a container, before stopping
        anything: one already down (exited, created, or between two crashes) is left as it is, as
        Compose's ``stop`` does, but stays down under a watcher. A workspace without a container is
        not recorded (a watcher would otherwise never create it). ``reason``
        (the watcher's ``restart_on``) follows each line."""
        selected = self.state.select(names)
        with self._locked():
            order = {name: i for i, name in reversed(list(enumerate([*self.every, *selected])))}  # the file's
            found = self._containers(selected)
            containers = sorted(found, key=lambda c: order[c.workspace])
            if verb == "stop":  # recorded first, those already down too: a watcher must leave them down
                intent.mark_stopped(self.identity.project, self.identity.directory, [c.workspace for c in containers])
                for c in containers:
                    if c.state not in ("running", "restarting", "paused"):
                        self.reporter.note(f"{c.workspace} is not running ({c.state}): nothing to stop; it stays down")
                containers = [c for c in containers if c.state in ("running", "restarting", "paused")]
            elif verb == "start":
                containers = [c for c in containers if c.state not in ("running", "restarting")]
            by_workspace = {c.workspace: c for c in containers}
            chains = [
                (key, self._lifecycle_steps(verb, by_workspace[key], f": {reason}" if reason else ""), after)
                for key, after in lifecycle_chains(containers, joined_first=verb != "stop")
            ]
            missing = set(selected) - {c.workspace for c in found}
            for name in sorted(missing, key=lambda n: order[n]):
                self.reporter.note(f"workspace {name!r} has no container; run `ngcws up {name}`")
            limit = parallel_limit() if len(chains) > 1 else 1
            failures = run_chains(
                chains, lambda step: step.execute(), lambda step: step.announce(), limit, self._told(f"ngcws {verb}")
            )
            if failures:
                if verb == "stop":  # not stopped after all: a watcher must not leave it down
                    intent.clear_stopped(self.identity.project, self.identity.directory, [k for k, _ in failures])
                raise failed(failures, len(chains))
        return [key for key, _, _ in chains]

    def _lifecycle_steps(self, verb: str, container: ObservedContainer, why: str) -> list[_Step]:
        """What ``verb`` does to ``container``, step by step, each announced with its workspace."""
        ws = container.workspace

        def said(do: Callable[[], None]) -> list[_Step]:
            return [_Step(lambda: self.reporter.note(f"{verb} {ws}{why}"), do)]

        if verb == "stop":
            return said(lambda: self.engine.stop(container.id))
        if verb == "restart":
            return said(lambda: self.engine.restart(container.id, container.name))
        want = self.state.containers.get(ws)  # none when acting on the containers' labels only
        if container.state == "paused":
            return [self._action_step(Action(Kind.UNPAUSE, ws, f"{container.name} is paused", container, want))]
        if container.state not in ("dead", "removing"):
            return said(lambda: self.engine.start(container.id, container.name))
        if want is None:
            refused = f"{container.name} is {container.state}: no valid ngcws.yaml says how to make it again"
            return said(lambda: _refuse(refused))
        if container.state == "dead":
            reason = f"{container.name} is dead (it cannot be started)"
            return [self._action_step(Action(Kind.RECREATE, ws, reason, container, want))]
        return [
            self._action_step(Action(Kind.CREATE, ws, f"{container.name} is being removed", container, want)),
            self._action_step(Action(Kind.START, ws, "new container", desired=want)),
        ]

    def _action_step(self, action: Action) -> _Step:
        return _Step(lambda: self.reporter.action(action), lambda: self._execute(action))

    def _told(self, again: str) -> Callable[[Stopped], None]:
        """What to say when applying stopped early (Ctrl-C, engine gone): what was left, and what
        ``again`` (the command run once more) does about it. Every action that began is printed first."""

        def tell(left: Stopped) -> None:
            for key, error in left.failed:
                self.reporter.warning(f"{key} failed: {error.message}")
            if left.part_way:
                self.reporter.warning(
                    f"left part-way: {', '.join(left.part_way)} (`{again}` finishes them from where they are)"
                )
            if left.not_begun:
                self.reporter.warning(f"not begun: {', '.join(left.not_begun)} (`{again}` applies them)")

        return tell

    def from_labels(self) -> None:
        """Without an ngcws.yaml, the project's workspaces are those its containers' labels name."""
        names = sorted({c.workspace for c in owned(self.observe([]), self.identity.directory)})
        self.state = self.state._replace(workspaces=tuple(names))
        self.every = names

    def status(self) -> list[Status]:
        names = self.every
        desired = self.desired(n for n in names if n in self.state.containers)
        observed = self.observe(desired)
        ours = owned(observed, self.identity.directory)
        rows = self._status_rows(names, desired, observed, ours)
        rows = with_stop_intent(rows, intent.stopped(self.identity.project, self.identity.directory), ours)
        if any(r.state == "running" and r.gpus not in ("none", "", "?") for r in rows) and self.facts.local:
            from ngcws.gpuset import held
            from ngcws.present import gpu_use

            host = self.facts.host_info()
            ids = {c.workspace: c.id for c in ours}
            rows = [
                replace(r, gpu_use=gpu_use(host, held(r.gpus, self.facts.index_of()), ids.get(r.workspace, "")))
                if r.state == "running"
                else r
                for r in rows
            ]
        return rows

    def _status_rows(
        self, names: list[str], desired: list[DesiredContainer], observed: Observed, ours: list[ObservedContainer]
    ) -> list[Status]:
        rows: list[Status] = []
        for name in (n for n in names if n not in self.state.containers):  # ngcws.yaml not resolved
            found = [c for c in ours if c.workspace == name]
            rows.extend(
                Status(name, c.name, c.id[:12], c.state, "", (c.essence or {}).get("gpus", "?"), c.status, "unknown")
                for c in found
            )
            if not found:
                rows.append(Status(name, container_name(self.identity.project, name), "", "missing", "", "", "", ""))
        for want in desired:
            found = [c for c in ours if c.workspace == want.workspace]
            current = next((c for c in found if c.name == want.name), found[0] if found else None)
            if current is None:
                rows.append(
                    Status(
                        want.workspace, want.name, "", "missing", want.image, want.essence["gpus"], "", "not created"
                    )
                )
                continue
            reason = recreate_reason(want, current, observed, UpOptions())
            error = self._start_error(current)
            rows.append(
                Status(
                    want.workspace,
                    current.name,
                    current.id[:12],
                    current.state,
                    want.image,
                    (current.essence or {}).get("gpus", "?"),
                    f"{'removal' if current.state == 'dead' else 'start'} failed: {short_error(error)}"
                    if error
                    else current.status,
                    reason or "up to date",
                    health=current.health,
                    error=error,
                )
            )
        for orphan in (c for c in ours if c.workspace not in names):
            rows.append(
                Status(orphan.workspace, orphan.name, orphan.id[:12], orphan.state, "", "", orphan.status, "orphan")
            )
        for left in moved(observed):
            drift = f"left in {left.labels.get(L.PROJECT_DIR)}, moved? (ngcws up --take-over)"
            rows.append(Status(left.workspace, left.name, left.id[:12], left.state, "", "", left.status, drift))
        for run in oneoffs(observed, self.identity.directory):
            gpus = self.state.containers[run.workspace].essence["gpus"] if run.workspace in names else ""
            rows.append(Status(run.workspace, run.name, run.id[:12], run.state, "", gpus, run.status, "one-off (run)"))
        return rows

    def _check_networks(self, desired: list[DesiredContainer]) -> None:
        """``networks`` names existing networks: a missing one is refused before anything is touched
        (the engine would create the container and fail only at start)."""
        for want in desired:
            for network in want.essence.get("networks", []):
                if self.engine.inspect_network(network) is None:
                    raise EngineError(
                        f"workspace {want.workspace!r}: network {network!r} does not exist",
                        hint=f"ngcws joins existing networks only; create it (`docker network create {network}`)"
                        " or remove it from networks:",
                    )

    def _start_error(self, container: ObservedContainer) -> str:
        """Why the engine could not start (or, dead, remove) ``container`` the last time, or ""."""
        if container.state not in ("created", "exited", "dead"):
            return ""
        found = self.engine.inspect_container(container.id) or {}
        return str((found.get("State") or {}).get("Error") or "")

    # --- keeping work -------------------------------------------------------------------------

    def find(self, workspace: str | None) -> ObservedContainer:
        """This folder's container of ``workspace`` (default: the first), orphans included."""
        name = workspace or self.every[0]
        ours = [c for c in owned(self.observe([]), self.identity.directory) if c.workspace == name]
        if not ours:
            if name not in self.state.containers:
                self.state.select([name])  # raises: no such workspace
            raise UsageError(f"workspace {name!r} has no container; nothing to show or save")
        wanted = self.state.containers[name].name if name in self.state.containers else ""
        return sorted(ours, key=lambda c: (c.name != wanted, -c.created))[0]

    def diff(self, workspace: str | None) -> tuple[ObservedContainer, list[Change], list[dict[str, Any]]]:
        """The unsaved work of a workspace's container, and the engine's full change list."""
        from ngcws.unsaved import measure

        container = self._with_desired_ignores(self.find(workspace))
        return container, measure(self.engine, container), self.engine.changes(container.id)

    def snapshot(self, workspace: str | None, tag: str | None) -> str:
        """Commit the workspace's container to a local image; return its reference."""
        import time

        from ngcws.unsaved import digest, measure

        container = self._with_desired_ignores(self.find(workspace))
        if tag and ("/" in tag or ":" in tag):
            ref = image_ref(tag)  # a whole reference
            repository, tag = ref.name, ref.tag or "latest"
        else:
            repository = f"ngcws-snapshot/{container.name.lower()}"
            tag = tag or time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        state = digest(measure(self.engine, container))
        # The image's own config, never the workspace's: no env ngcws set (secrets, NVIDIA_*), no
        # ngcws labels (a container made from it is never taken for ngcws's own).
        base = self.engine.inspect_image(container.image_id) if container.image_id else None
        config = dict((base or {}).get("Config") or {})
        labels = {k: "" if k.startswith("ngcws.") else v for k, v in (config.get("Labels") or {}).items()}
        labels.update({key: "" for key in container.labels if key.startswith("ngcws.")})
        labels.update({L.SNAPSHOT_OF: container.id, L.SNAPSHOT_DIGEST: state})
        self.engine.commit(container.id, repository, tag, f"ngcws snapshot of {container.name}", config, labels)
        return f"{repository}:{tag}"

    def _with_desired_ignores(self, container: ObservedContainer) -> ObservedContainer:
        """The container, with the ``ignore_changes`` the file says now (not those at its creation)."""
        want = self.state.containers.get(container.workspace)
        if want is None:
            return container
        import json

        return replace(container, labels={**container.labels, L.IGNORE_CHANGES: json.dumps(list(want.ignore_changes))})

    def _holds(self, plan: Plan, forced: frozenset[str] | set[str] = frozenset()) -> list[Hold]:
        """What holds back the recreates and removals of ``plan`` (guard.py), ``forced`` workspaces aside.

        A dead container is one whose removal the engine already began (and could not finish):
        its layer was given up then, and the engine can no longer read it, so it holds nothing.
        """
        return self.holds(
            [
                a.container
                for a in plan.actions
                if a.kind in (Kind.RECREATE, Kind.REMOVE)
                and a.container
                and a.container.state != "dead"
                and a.workspace not in forced
            ]
        )

    def holds(self, doomed: list[ObservedContainer]) -> list[Hold]:
        """What holds back destroying ``doomed`` (guard.py)."""
        if not doomed:
            return []
        from ngcws.guard import holds

        return holds(self.engine, [self._with_desired_ignores(c) for c in doomed], parallel_limit())

    def _forced(self, names: list[str], plan: Plan, options: UpOptions) -> set[str]:
        """The workspaces whose unsaved work ``--force-recreate`` may destroy: those named on the
        command line, or (none named) those recreated anyway because the file or the image changed.
        A workspace recreated only because of ``--force-recreate`` (or an orphan not named) is still
        guarded: following a hint never destroys work it did not name."""
        if not options.force_recreate:
            return set()
        if names:
            return set(names)
        recreates = [(a.desired, a.container) for a in plan.actions if a.kind is Kind.RECREATE]
        observed = self.observe([want for want, _ in recreates if want])
        plain = replace(options, force_recreate=False)
        return {
            want.workspace
            for want, current in recreates
            if want and current and recreate_reason(want, current, observed, plain)
        }

    def _orphans_named(self, names: list[str] | None, options: UpOptions) -> tuple[list[str] | None, list[str]]:
        """Split ``up``'s names into the file's workspaces and, with ``--remove-orphans``, orphans of
        this folder's project (so that a held orphan can be named, as its hint does)."""
        unknown = [n for n in names or [] if n not in self.state.containers]
        if not unknown or not options.remove_orphans:
            return names, []
        orphans = {c.workspace for c in owned(self.observe([]), self.identity.directory)} - set(self.every)
        if any(n not in orphans for n in unknown):
            self.state.select(names)  # raises: no such workspace
        return [n for n in names or [] if n not in unknown] or None, unknown

    def _guard(self, plan: Plan, verb: str, forced: set[str]) -> dict[str, Hold]:
        """The held workspaces (none: go ahead with everything); asks first on a terminal."""
        found = self._holds(plan, forced)
        if found and not self.reporter.confirm(found, f"{verb} anyway and lose this work?"):
            return {h.workspace: h for h in found}
        return {}

    # --- applying -----------------------------------------------------------------------------

    def _containers(self, names: list[str]) -> list[ObservedContainer]:
        observed = self.observe([])
        wanted = {n: container_name(self.identity.project, n) for n in names}
        return [c for c in owned(observed, self.identity.directory) if wanted.get(c.workspace) == c.name]

    def _locked(self) -> Any:
        def waiting(holder: str) -> None:
            self.reporter.note(f"waiting for {holder}, which is working on project {self.identity.project!r}...")

        return project_lock(self.identity.project, self.identity.directory, waiting)

    def _apply_chains(
        self, chains: list[Chain], volumes: bool = False, again: str = "ngcws up"
    ) -> list[tuple[str, NgcwsError]]:
        """Apply independent chains at the same time (parallel.py), each in order; return the failures.

        The engine transport opens one connection per request, so workers share nothing but
        :attr:`facts`, which are gathered here first, in this thread."""
        limit = parallel_limit() if any(a.writes for c in chains for a in c.actions) else 1
        if limit > 1 and any(
            a.desired and "gpu_request" not in a.desired.essence and a.desired.essence["gpus"] != "none"
            for c in chains
            for a in c.actions
        ):
            self.facts.api_version()  # what _create asks, asked once
        return run_chains(
            [(c.key, c.actions, c.after) for c in chains],
            lambda action: self._execute(action, volumes),
            self.reporter.action,
            limit,
            self._told(again),
        )

    def _apply(self, action: Action, volumes: bool = False) -> None:
        """Report one action and apply it."""
        self.reporter.action(action)
        self._execute(action, volumes)

    def _execute(self, action: Action, volumes: bool = False) -> None:
        """One action; every engine write is a step (see :func:`_step`)."""
        kind, want, current = action.kind, action.desired, action.container
        if kind is Kind.PULL:
            assert want is not None
            self._pull(want)
            _step()
        elif kind is Kind.CREATE:
            assert want is not None
            if current is not None:  # the engine is removing the old one: its name is free after
                self.engine.wait_removed(current.id)
            self._create(want, want.name)
            _step()
        elif kind is Kind.START:
            ref = current.id if current else want.name if want else ""
            self.engine.start(ref, want.name if want else ref)
            _step()
        elif kind is Kind.UNPAUSE:
            assert current is not None
            self.engine.unpause(current.id)
            _step()
        elif kind is Kind.RECREATE:
            # Each step leaves a state the next `up` repairs: the new container is created under
            # a temporary name and only started once it carries the workspace's name.
            assert want is not None and current is not None
            new_id = self._create(want, f"{current.id[:12]}_{want.name}")
            _step()
            dead = current.state == "dead"  # no process to stop, and it cannot be renamed: it goes first
            if dead:
                self.engine.remove(current.id, force=True)
            else:
                self.engine.stop(current.id)
                _step()
                # The old container steps aside and goes only after the new one runs: its removal
                # (unmounting its layers) is off the path to a running workspace.
                self.engine.rename(current.id, f"{current.id[:12]}_old_{want.name}")
            _step()
            self.engine.rename(new_id, want.name)
            _step()
            try:
                self.engine.start(new_id, want.name)
            except NgcwsError as exc:
                if dead:
                    raise
                self._roll_back(current, new_id, want.name, exc)
                raise
            _step()
            if not dead:
                self.engine.remove(current.id, force=True)
                _step()
        elif kind is Kind.REMOVE:
            assert current is not None
            if current.state == "removing":
                self.engine.wait_removed(current.id)
                return
            if current.state != "dead":
                self.engine.stop(current.id)
                _step()
            self.engine.remove(current.id, force=True, volumes=volumes)
            _step()

    def _roll_back(self, old: ObservedContainer, new_id: str, name: str, failure: NgcwsError) -> None:
        """The new container of a recreate did not start: put the old one back as it was.

        A recreate must never leave a workspace worse than it found it: the new container (created,
        never started) is removed, the old one takes its name back and, if it was running, runs
        again. ``failure`` learns what was kept, for the message.
        """
        try:
            self.engine.remove(new_id, force=True)
            self.engine.rename(old.id, name)
            if old.state in ("running", "restarting", "paused"):
                self.engine.start(old.id, name)
        except NgcwsError as again:
            failure.hint = _join(failure.hint, f"Putting the old container back failed too ({again.message}).")
            return
        kept = "running as before" if old.state in ("running", "restarting", "paused") else f"as it was ({old.state})"
        failure.hint = _join(failure.hint, f"Nothing was lost: the old container {name} is back, {kept}.")

    def _pull(self, want: DesiredContainer) -> None:
        from ngcws.engine.auth import pull_auth

        ref = image_ref(want.image)
        header, sent = pull_auth(ref)
        try:
            self.engine.pull(ref, header, lambda m: self.reporter.progress(want.workspace, m), sent)
        except NgcwsError as exc:  # several workspaces may pull: name the one that failed
            exc.message = f"{want.workspace}: {exc.message}"
            raise

    def create_oneoff(self, want: DesiredContainer, name: str, request: dict[str, Any]) -> str:
        """Create an ``ngcws run`` container (not started)."""
        return self._create(want, name, request)

    def _create(self, want: DesiredContainer, name: str, request: dict[str, Any] | None = None) -> str:
        for mount in want.essence["mounts"]:
            if mount["type"] == "bind" and not os.path.exists(mount["source"]):
                os.makedirs(mount["source"], exist_ok=True)  # create_host_path: owned by the invoker
        for volume in want.volumes:
            self.engine.create_volume(volume, L.project_filter(self.identity.project, self.identity.directory))
        request = request or want.request
        if "gpu_request" not in want.essence and want.essence["gpus"] != "none":
            from ngcws.preflight import effective_gpu_request
            from ngcws.spec import cdi_requests, runtime_request

            mode = effective_gpu_request(want.essence, self.facts.api_version(), self.facts.podman)
            if mode == "runtime":
                if want.essence.get("runtime", "nvidia") != "nvidia":
                    raise EngineError(
                        f"workspace {want.workspace!r}: this engine takes GPUs only through the nvidia runtime,"
                        f" but runtime: {want.essence['runtime']} is set",
                        hint="Drop runtime:, or set gpus: none.",
                    )
                request = runtime_request(request, want.essence["gpus"], want.essence["capabilities"])
            elif mode == "cdi":  # Podman
                request = {**request, "HostConfig": {**request["HostConfig"]}}
                request["HostConfig"]["DeviceRequests"] = cdi_requests(want.essence["gpus"])
        container_id = self.engine.create_container(name, request)
        try:
            for network in want.essence.get("networks", [])[1:]:  # the first was joined at create
                self.engine.connect_network(network, container_id)
            if want.host_user is not None:
                self._add_host_user(container_id, want.host_user)
        except NgcwsError:
            self.engine.remove(container_id, force=True)
            raise
        return container_id

    def _add_host_user(self, container_id: str, user: Invoker) -> None:
        """``user: host``: a passwd and group entry and a HOME owned by the user, in the container."""
        files: dict[str, tuple[bytes | None, int, int, int]] = {}
        entries = {
            "/etc/passwd": (user.uid, f"{user.name}:x:{user.uid}:{user.gid}:{user.name}:{user.home}:/bin/sh"),
            "/etc/group": (user.gid, f"{user.group or user.name}:x:{user.gid}:"),
        }
        for path, (number, entry) in entries.items():
            text = (self.engine.read_file(container_id, path) or b"").decode()
            if not any(line.split(":")[2:3] == [str(number)] for line in text.splitlines()):
                text = text + ("\n" if text and not text.endswith("\n") else "") + entry + "\n"
                files[path.lstrip("/")] = (text.encode(), 0, 0, 0o644)
        files["home"] = (None, 0, 0, 0o755)
        files[user.home.lstrip("/")] = (None, user.uid, user.gid, 0o755)
        self.engine.put_files(container_id, files)


@dataclass(frozen=True)
class _Step:
    """One step of ``start``/``stop``/``restart`` for a workspace: how it is told, what it does."""

    announce: Callable[[], None]
    execute: Callable[[], None]


_STEPS = {"done": 0}


def _step() -> None:
    """For tests only: ``NGCWS_TEST_STEP=interrupt:N`` (or ``stop:N``) sends this process SIGINT
    (or SIGSTOP) right after its Nth engine write, so a test can interrupt ``up``, or kill the
    engine, at an exact step without racing it."""
    setting = os.environ.get("NGCWS_TEST_STEP")
    if not setting:
        return
    import signal

    _STEPS["done"] += 1
    what, _, number = setting.partition(":")
    if str(_STEPS["done"]) == number:
        os.kill(os.getpid(), signal.SIGSTOP if what == "stop" else signal.SIGINT)


def _refuse(reason: str) -> None:
    raise UsageError(reason, hint="Fix ngcws.yaml, then run `ngcws up`.")


def _join(first: str | None, second: str) -> str:
    return f"{first}\n{second}" if first else second
