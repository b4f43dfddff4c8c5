"""Controller: observe → plan → apply. The only place that sequences engine writes; no printing.

What happens is reported through a :class:`Reporter`, which the CLI renders.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ngcws import labels as L
from ngcws.engine import Engine
from ngcws.errors import NgcwsError
from ngcws.lock import project_lock
from ngcws.observed import Observed, ObservedContainer
from ngcws.plan import Action, Kind, Plan, UpOptions, owned, plan_down, plan_up, pull_actions, recreate_reason
from ngcws.spec import DesiredContainer, DesiredState, Invoker
from ngcws.values import split_image


class Reporter(Protocol):
    def action(self, action: Action) -> None: ...
    def progress(self, workspace: str, message: dict[str, Any]) -> None: ...
    def note(self, text: str) -> None: ...
    def warning(self, text: str) -> None: ...


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
        return Observed(tuple(ObservedContainer.from_list_entry(e) for e in entries), images)

    def plan(self, names: list[str] | None, options: UpOptions) -> Plan:
        from ngcws.preflight import gpu_notes

        desired = self.desired(self.state.select(names))
        plan = plan_up(desired, self.every, self.observe(desired), self.identity.directory, options)
        every = self.desired(self.every)
        notes = [n for want in desired for n in gpu_notes(self.facts, want, self.identity.directory, every)]
        return Plan(plan.actions, (*plan.warnings, *notes))

    def preflight(self, desired: Iterable[DesiredContainer]) -> None:
        """Refuse, before anything is stopped or removed, what creation or start would refuse."""
        from ngcws.preflight import preflight

        preflight(self.facts, desired)

    # --- commands -----------------------------------------------------------------------------

    def up(self, names: list[str] | None, options: UpOptions, preflight: bool = True) -> Plan:
        desired = self.desired(self.state.select(names))
        every = self.every
        with self._locked():
            plan = plan_up(desired, every, self.observe(desired), self.identity.directory, options)
            pulls = [a for a in plan.actions if a.kind is Kind.PULL]
            if pulls:
                for action in pulls:
                    self._apply(action)
                # The pulls may have moved tags to new images: plan the containers again.
                plan = plan_up(
                    desired, every, self.observe(desired), self.identity.directory, replace(options, pulls_done=True)
                )
                plan = Plan((*pulls, *plan.actions), plan.warnings)
            making = [a.desired for a in plan.actions if a.kind in (Kind.CREATE, Kind.RECREATE) and a.desired]
            if making and preflight:
                self.preflight(making)
            for warning in plan.warnings:
                self.reporter.warning(warning)
            if making:
                from ngcws.preflight import gpu_notes

                for want in making:
                    for note in gpu_notes(self.facts, want, self.identity.directory, self.desired(self.every)):
                        self.reporter.warning(note)
            for action in plan.actions:
                if action.kind is not Kind.PULL:
                    self._apply(action)
        return plan

    def down(self, remove_orphans: bool, volumes: bool) -> Plan:
        with self._locked():
            observed = self.observe([])
            plan = plan_down(observed, self.identity.directory, remove_orphans, self.every)
            for warning in plan.warnings:
                self.reporter.warning(warning)
            for action in plan.actions:
                self._apply(action, volumes=volumes)
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

    def lifecycle(self, verb: str, names: list[str] | None) -> list[str]:
        """``stop`` / ``start`` / ``restart`` existing containers; return the names touched."""
        selected = self.state.select(names)
        with self._locked():
            containers = self._containers(selected)
            touched = []
            for container in containers:
                if verb == "stop" and container.state in ("running", "restarting", "paused"):
                    self.engine.stop(container.id)
                elif verb == "start" and container.state != "running":
                    self.engine.start(container.id, container.name)
                elif verb == "restart":
                    self.engine.restart(container.id, container.name)
                else:
                    continue
                touched.append(container.name)
            missing = set(selected) - {c.workspace for c in containers}
            for name in sorted(missing):
                self.reporter.note(f"workspace {name!r} has no container; run `ngcws up {name}`")
        return touched

    def status(self) -> list[Status]:
        names = self.every
        desired = self.desired(names)
        observed = self.observe(desired)
        ours = owned(observed, self.identity.directory)
        rows = self._status_rows(names, desired, observed, ours)
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
        rows = []
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
            rows.append(
                Status(
                    want.workspace,
                    current.name,
                    current.id[:12],
                    current.state,
                    want.image,
                    (current.essence or {}).get("gpus", "?"),
                    current.status,
                    reason or "up to date",
                )
            )
        for orphan in (c for c in ours if c.workspace not in names):
            rows.append(
                Status(orphan.workspace, orphan.name, orphan.id[:12], orphan.state, "", "", orphan.status, "orphan")
            )
        return rows

    # --- applying -----------------------------------------------------------------------------

    def _containers(self, names: list[str]) -> list[ObservedContainer]:
        observed = self.observe([])
        wanted = {n: self.state.containers[n].name for n in names}
        return [c for c in owned(observed, self.identity.directory) if wanted.get(c.workspace) == c.name]

    def _locked(self) -> Any:
        def waiting() -> None:
            self.reporter.note(f"waiting for another ngcws working on project {self.identity.project!r}...")

        return project_lock(self.identity.project, self.identity.directory, waiting)

    def _apply(self, action: Action, volumes: bool = False) -> None:
        self.reporter.action(action)
        kind, want, current = action.kind, action.desired, action.container
        if kind is Kind.PULL:
            assert want is not None
            self._pull(want)
        elif kind is Kind.CREATE:
            assert want is not None
            self._create(want, want.name)
        elif kind is Kind.START:
            ref = current.id if current else want.name if want else ""
            self.engine.start(ref, want.name if want else ref)
        elif kind is Kind.RECREATE:
            assert want is not None and current is not None
            new_id = self._create(want, f"{current.id[:12]}_{want.name}")
            self.engine.stop(current.id)
            self.engine.remove(current.id, force=True)
            self.engine.rename(new_id, want.name)
            self.engine.start(new_id, want.name)
        elif kind is Kind.REMOVE:
            assert current is not None
            self.engine.stop(current.id)
            self.engine.remove(current.id, force=True, volumes=volumes)

    def _pull(self, want: DesiredContainer) -> None:
        from ngcws.engine.auth import auth_header

        repository, tag = split_image(want.image)
        self.engine.pull(repository, tag, auth_header(repository), lambda m: self.reporter.progress(want.workspace, m))

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
            from ngcws.spec import runtime_request

            if effective_gpu_request(want.essence, self.facts.api_version()) == "runtime":
                request = runtime_request(request, want.essence["gpus"], want.essence["capabilities"])
        container_id = self.engine.create_container(name, request)
        if want.host_user is not None:
            try:
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
