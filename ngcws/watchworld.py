"""The real :class:`~ngcws.watch.World`: the loader, the controller and the engine, for the watcher."""

from __future__ import annotations

from datetime import datetime

from ngcws import labels as L
from ngcws.controller import Controller, Reporter
from ngcws.engine import Engine
from ngcws.guard import Hold
from ngcws.intent import stopped
from ngcws.leftover import left_behind
from ngcws.locate import Located
from ngcws.observed import ObservedContainer
from ngcws.plan import UpOptions, owned
from ngcws.spec import DesiredState, Identity
from ngcws.state import compute_state, current_invoker, user_key
from ngcws.streams import Demux
from ngcws.watch import Admit, Exit, Loaded, WatchFlags
from ngcws.watchsources import FileSource


class EngineWorld:
    def __init__(
        self,
        located: Located,
        project_override: str | None,
        engine: Engine,
        reporter: Reporter,
        files: FileSource,
        flags: WatchFlags,
    ) -> None:
        self.located = located  # always this file: a save half-way must not find a parent's ngcws.yaml
        self.project_override = project_override
        self.engine = engine
        self.reporter = reporter
        self.files = files
        self.flags = flags

    def load(self) -> Loaded:
        """A fresh load (never the cache) and the files it read: what to follow."""
        state, inputs = compute_state(self.located, self.project_override, current_invoker(), user_key())
        return Loaded(state, frozenset(str(p) for p in inputs.files))

    def follow_files(self, files: frozenset[str], roots: frozenset[str], loose: bool) -> None:
        self.files.follow(files, roots, loose)

    def controller(self, state: DesiredState) -> Controller:
        return Controller(state, self.engine, self.reporter)

    def converge(self, state: DesiredState, admit: Admit) -> None:
        options = UpOptions(remove_orphans=self.flags.remove_orphans, take_over=self.flags.take_over)
        self.controller(state).up(None, options, preflight=not self.flags.skip_preflight, admit=admit)

    def holds(self, state: DesiredState, doomed: list[ObservedContainer]) -> list[Hold]:
        return self.controller(state).holds(doomed)

    def exit_of(self, container: ObservedContainer) -> Exit | None:
        info = self.engine.inspect_container(container.id)
        status = (info or {}).get("State") or {}
        if not status or status.get("Status") == "created":
            return None
        started, ended = _time(status.get("StartedAt")), _time(status.get("FinishedAt"))
        return Exit(
            code=int(status.get("ExitCode") or 0),
            oom=bool(status.get("OOMKilled")),
            ran_for=max(0.0, ended - started) if started and ended else 0.0,
            finished_at=str(status.get("FinishedAt") or ""),
        )

    def stopped(self, state: DesiredState) -> set[str]:
        return stopped(state.identity.project, state.identity.directory)

    def last_logs(self, container: ObservedContainer, lines: int = 10) -> str:
        out = b""
        demux = Demux()
        for chunk in self.engine.logs(container.id, follow=False, tail=str(lines), timestamps=False):
            out += b"".join(payload for _stream, payload in demux.feed(chunk))
        return out.decode(errors="replace")

    def left_behind(self, identity: Identity) -> dict[str, list[str]]:
        listed = self.engine.list_containers({L.PROJECT_DIR: identity.directory})
        return left_behind(listed, identity.project, identity.config_file)

    def restart(self, state: DesiredState, workspace: str) -> list[Hold]:
        controller = self.controller(state)
        want = state.containers[workspace]
        observed = controller.observe([])
        found = [c for c in owned(observed, state.identity.directory) if c.name == want.name]
        if not found or found[0].state != "running":
            return []  # not running: the next start reads the code anyway
        held = controller.holds(found)
        if held:
            return held
        controller.lifecycle("restart", [workspace], reason="restart_on")  # says `restart WS: restart_on`
        return []


def _time(value: object) -> float:
    """An engine timestamp (RFC 3339 with nanoseconds) → epoch seconds; 0 for none."""
    text = str(value or "")
    if not text or text.startswith("0001-"):
        return 0.0
    digits = text[20:] if text[19:20] == "." else ""
    fraction = digits[: len(digits) - len(digits.lstrip("0123456789"))]
    zone = text[19 + (1 + len(fraction) if digits else 0) :] or "Z"
    try:
        moment = datetime.fromisoformat(f"{text[:19]}.{fraction[:6]:0<6}{zone.replace('Z', '+00:00')}")
    except ValueError:
        return 0.0
    return moment.timestamp()
