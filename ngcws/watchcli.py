"""``ngcws up --watch`` / ``ngcws watch``: the watcher process around the loop of :mod:`ngcws.watch`."""

from __future__ import annotations

import queue
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from ngcws.engine import Engine
from ngcws.locate import Files, locate
from ngcws.plan import Action
from ngcws.present import Console

if TYPE_CHECKING:
    from ngcws.watch import WatchFlags


class WatchConsole(Console):
    """One timestamped line per event and per action (``12:03:41 recreate train: shm_size 1g → 16g``)."""

    def line(self, text: str) -> None:
        self._stop_progress()
        stamp = time.strftime("%H:%M:%S")
        print("\n".join(f"{stamp} {part}" if i == 0 else part for i, part in enumerate(text.split("\n"))),
              file=self.err, flush=True)  # fmt: skip

    def action(self, action: Action) -> None:
        self.line(f"{self._paint(action.kind.value, 'bold')} {action.workspace}: {action.reason}")

    def note(self, text: str) -> None:
        self.line(text)

    def warning(self, text: str) -> None:
        self.line(self._paint("warning:", "yellow") + " " + text)


def run_watch(file: Files, project_override: str | None, flags: WatchFlags) -> int:
    from ngcws import labels as L
    from ngcws.lock import watcher_slot
    from ngcws.watch import Input, Watch
    from ngcws.watchsources import EngineSource, FileSource
    from ngcws.watchworld import EngineWorld

    located = locate(file)
    console = WatchConsole()
    engine = Engine()
    inbox: queue.Queue[Input] = queue.Queue()
    stop = threading.Event()
    files = FileSource(inbox)
    world = EngineWorld(located, project_override, engine, console, files, flags)
    watch = Watch(world, console.line)
    identity = world.load().state.identity  # an invalid file is an error here (exit 2)
    with watcher_slot(identity.project, identity.directory):
        events = EngineSource(engine, {L.PROJECT_DIR: identity.directory}, inbox, stop)
        events.start()
        events.subscribed.wait(10)  # subscribe before the first reconcile: no event is missed

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()  # (no queue.put here: the handler may run while the main thread holds its lock)
            if not watch.busy:  # never interrupt an apply half-way: the loop ends after it
                raise KeyboardInterrupt

        previous: dict[int, Any] = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        console.line(f"watching {located.config_file} and the engine; Ctrl-C stops watching")
        try:
            watch.run(inbox, stop)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            files.close()
            for number, handler in previous.items():
                signal.signal(number, handler)
        if flags.down_on_exit and watch.loaded is not None:
            console.line("stopped watching: removing the workspaces (--down-on-exit)")
            world.controller(watch.state).down(flags.remove_orphans, volumes=False)
        else:
            console.line("stopped watching; the workspaces keep running (`ngcws down` removes them)")
    return 0
