"""The watcher's inputs, each a thread that puts what it sees into the loop's inbox.

* :class:`FileSource`: ngcws.yaml, ``.env`` and every env_file through their folders (so a save
  by rename, or a delete and re-create, is seen), and the ``restart_on`` folders recursively;
  watchfiles (inotify), bursts batched until 150-300 ms of quiet, editor temp and swap files ignored.
* :class:`EngineSource`: ``GET /events`` for the project's containers; when the engine goes away
  it says so once, reconnects with capped backoff and says when the engine answers again.

Both block in the kernel while nothing happens (watchfiles' Rust loop wakes every ``STEP_MS`` to
check for its stop signal).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Mapping

from ngcws.engine import Engine
from ngcws.errors import NgcwsError
from ngcws.watch import EngineBack, EngineEvent, EngineLost, FilesChanged, Input

STEP_MS = 150  # a burst of changes ends after 150-300 ms of quiet (watchfiles checks every step)
DEBOUNCE_MS = 3000  # the longest a burst is held back
RECONNECT_MAX = 10.0
#: The container events worth a look. Not ``top``, ``exec_create``, ``exec_start``, ``attach``...:
#: the guard's own ``top`` would wake the watcher again and again.
EVENTS = [
    "create", "start", "restart", "die", "kill", "oom", "stop", "pause", "unpause", "destroy", "rename", "update",
    "exec_die",
]  # fmt: skip


class FileSource:
    """Follows a set of files (through their folders) and of recursive roots; the sets can change."""

    def __init__(self, inbox: queue.Queue[Input]) -> None:
        self.inbox = inbox
        self.watching: list[threading.Event] = []

    def follow(self, files: frozenset[str], roots: frozenset[str], loose: bool = False) -> None:
        """Follow ``files`` (``loose``: and any other file in their folders but temp and swap
        files) and everything under ``roots``."""
        from watchfiles import DefaultFilter

        default = DefaultFilter()
        old, self.watching = self.watching, []
        folders = sorted({os.path.dirname(f) for f in files if os.path.isdir(os.path.dirname(f))})
        if folders:
            self._start(folders, False, lambda path: path in files or (loose and default(None, path)))  # type: ignore[arg-type]
        existing = sorted(r for r in roots if os.path.isdir(r))
        if existing:

            def in_roots(path: str) -> bool:
                return any(path == r or path.startswith(r.rstrip("/") + "/") for r in existing)

            self._start(existing, True, lambda path: in_roots(path) and default(None, path))  # type: ignore[arg-type]
        for stop in old:  # after the new ones started: nothing is missed in between
            stop.set()

    def close(self) -> None:
        for stop in self.watching:
            stop.set()

    def _start(self, folders: list[str], recursive: bool, wanted: Callable[[str], bool]) -> None:
        stop = threading.Event()
        self.watching.append(stop)
        thread = threading.Thread(
            target=self._watch, args=(folders, recursive, wanted, stop), name="ngcws-files", daemon=True
        )
        thread.start()

    def _watch(self, folders: list[str], recursive: bool, wanted: Callable[[str], bool], stop: threading.Event) -> None:
        from watchfiles import watch

        try:
            for changes in watch(
                *folders,
                watch_filter=lambda _change, path: wanted(path),
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=stop,
                rust_timeout=0,
                recursive=recursive,
                raise_interrupt=False,
            ):
                self.inbox.put(FilesChanged(frozenset(path for _change, path in changes)))
        except (OSError, RuntimeError):  # a watched folder vanished: the next follow() starts anew
            return


class EngineSource:
    """The engine's events for one project folder's containers, across engine restarts."""

    def __init__(
        self, engine: Engine, labels: Mapping[str, str], inbox: queue.Queue[Input], stop: threading.Event
    ) -> None:
        self.engine = engine
        self.filters = {"type": ["container"], "event": EVENTS, "label": [f"{k}={v}" for k, v in labels.items()]}
        self.inbox = inbox
        self.stop = stop
        self.subscribed = threading.Event()  # set once the first subscription is in place

    def start(self) -> None:
        threading.Thread(target=self._run, name="ngcws-events", daemon=True).start()

    def _run(self) -> None:
        lost = False
        delay = 0.25
        while not self.stop.is_set():
            try:
                stream = self.engine.events(self.filters)
                self.subscribed.set()
                if lost:
                    self.inbox.put(EngineBack())
                    lost = False
                delay = 0.25
                for event in stream:
                    self.inbox.put(EngineEvent(event))
            except NgcwsError as error:
                self.subscribed.set()
                if not lost:
                    self.inbox.put(EngineLost(error.message))
                    lost = True
                self.stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX)
