"""Run independent chains of actions at the same time, reporting as if one by one.

``run_chains`` applies each chain's actions in order on a worker thread, at most ``limit`` chains
at once (``NGCWS_PARALLEL_LIMIT``, as Compose's ``COMPOSE_PARALLEL_LIMIT``; 1 applies everything
in this thread, as ``NGCWS_TEST_STEP`` needs). Output stays what a one-by-one run prints: each
action is announced in the plan's order, on the calling thread, when it has begun and every
chain before its own is done (a chain's lines are never interleaved with another's).

A chain that fails stops; the others go on and the failures are returned with their chain. A
chain waiting for one that failed is not applied. An engine that no longer answers, or anything
that is not an :class:`NgcwsError`, stops the whole run: running chains finish their current
action, nothing new starts, and it is raised. So does Ctrl-C (the project lock is released only
once no worker writes any more).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ngcws.errors import ApplyFailed, EngineUnavailable, NgcwsError, NotApplied, UsageError

T = TypeVar("T")
DEFAULT_LIMIT = 64


def parallel_limit() -> int:
    """How many chains may run at once: ``NGCWS_PARALLEL_LIMIT`` (default 64); 1 under ``NGCWS_TEST_STEP``."""
    if os.environ.get("NGCWS_TEST_STEP"):
        return 1  # fault injection counts engine writes: one at a time, always in the same order
    text = os.environ.get("NGCWS_PARALLEL_LIMIT", "").strip()
    if not text:
        return DEFAULT_LIMIT
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"NGCWS_PARALLEL_LIMIT must be a whole number of at least 1, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class Stopped:
    """What a run that stopped early (Ctrl-C, engine gone, a bug) left, each in chain order."""

    part_way: tuple[str, ...] = ()  #: begun, not finished: some of their actions were applied
    failed: tuple[tuple[str, NgcwsError], ...] = ()  #: failed on their own before the stop
    not_begun: tuple[str, ...] = ()  #: nothing of them was applied


class _Run(Generic[T]):
    """One chain's progress, shared between its worker and the announcing thread."""

    def __init__(self, key: str, items: Sequence[T], after: frozenset[str]) -> None:
        self.key, self.items, self.after = key, items, after
        self.begun = 0  # how many of its items have begun
        self.announced = 0
        self.started = False
        self.finished = False
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None


def run_chains(
    chains: Sequence[tuple[str, Sequence[T], frozenset[str]]],
    execute: Callable[[T], None],
    announce: Callable[[T], None],
    limit: int,
    stopped: Callable[[Stopped], None] | None = None,
) -> list[tuple[str, NgcwsError]]:
    """Apply ``chains`` (key, items, keys it waits for); return the failures, in chain order.

    On an early stop, ``stopped`` is told what was left (after every begun action is announced)."""
    runs = [_Run(key, items, after) for key, items, after in chains]
    try:
        if limit <= 1 or len(runs) <= 1:
            return _one_by_one(runs, execute, announce)
        return _Parallel(runs, execute, announce, limit).run()
    except BaseException:
        if stopped is not None:
            with suppress(KeyboardInterrupt):  # a second Ctrl-C: the run is stopping already
                stopped(left(runs))
        raise


def left(runs: Sequence[_Run[T]]) -> Stopped:
    """Which chains a stop left part-way, failed, or never began."""
    part_way: list[str] = []
    failures: list[tuple[str, NgcwsError]] = []
    not_begun: list[str] = []
    for run in runs:
        own_failure = isinstance(run.error, NgcwsError) and not _fatal(run.error)
        if own_failure and not isinstance(run.error, NotApplied):
            assert isinstance(run.error, NgcwsError)
            failures.append((run.key, run.error))
        elif run.begun == 0:
            not_begun.append(run.key)
        elif not (run.finished and run.error is None and run.begun == len(run.items)):
            part_way.append(run.key)
    return Stopped(tuple(part_way), tuple(failures), tuple(not_begun))


def _one_by_one(
    runs: list[_Run[T]], execute: Callable[[T], None], announce: Callable[[T], None]
) -> list[tuple[str, NgcwsError]]:
    failed: list[tuple[str, NgcwsError]] = []
    for run in runs:
        blocker = next((key for key, _ in failed if key in run.after), None)
        if blocker is not None:
            run.error = _skipped(blocker)
            failed.append((run.key, run.error))
            continue
        try:
            for item in run.items:
                announce(item)
                run.begun += 1
                execute(item)
        except NgcwsError as exc:
            if _fatal(exc):
                raise
            run.error = exc
            failed.append((run.key, exc))
        run.finished = True
    return failed


class _Parallel(Generic[T]):
    def __init__(
        self, runs: list[_Run[T]], execute: Callable[[T], None], announce: Callable[[T], None], limit: int
    ) -> None:
        self.runs, self.execute, self.announce, self.limit = runs, execute, announce, limit
        self.by_key = {run.key: run for run in runs}
        self.changed = threading.Condition()
        self.stopping = False
        self.interrupted = False  # Ctrl-C, noted by the handler; raised at a point of our choosing

    def run(self) -> list[tuple[str, NgcwsError]]:
        previous = self._note_interrupts()
        try:
            try:
                self._drive()
            except BaseException:  # Ctrl-C, or a fatal failure: no new action, wait for the running ones
                with self.changed:
                    self.stopping = True
                # A second Ctrl-C (``timeout -s INT`` sends two; so does an impatient user) changes
                # nothing: the running actions finish anyway, and what began is still told.
                for run in self.runs:
                    while run.thread is not None and run.thread.is_alive():
                        with suppress(KeyboardInterrupt):
                            run.thread.join()
                for run in self.runs:  # then tell everything that began, in order: none of it is hidden
                    while run.announced < run.begun:
                        run.announced += 1
                        with suppress(KeyboardInterrupt):
                            self.announce(run.items[run.announced - 1])
                raise
            for run in self.runs:
                if run.thread is not None:
                    run.thread.join()
            return [(run.key, run.error) for run in self.runs if isinstance(run.error, NgcwsError)]
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _note_interrupts(self) -> Any:
        """While chains run, Ctrl-C only sets a flag that the announcing loop turns into a
        KeyboardInterrupt between two steps: raised anywhere (inside ``with self.changed``, while
        a worker waits for that lock) it could leave the lock held and every thread waiting.
        Returns the handler to put back (None: left as it was, off the main thread or not Python's)."""
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)
        if previous is not signal.default_int_handler:
            return None

        def note(signum: int, frame: Any) -> None:
            self.interrupted = True

        signal.signal(signal.SIGINT, note)
        return previous

    def _drive(self) -> None:
        """Start chains as they may, and announce their items in chain order, until all are done."""
        ahead = 0  # the first chain not yet done and announced
        while ahead < len(self.runs):
            if self.interrupted:
                raise KeyboardInterrupt
            fatal: BaseException | None = None
            with self.changed:
                self._start_ready()
                due: list[_Run[T]] = []
                while ahead < len(self.runs) and fatal is None:
                    run = self.runs[ahead]
                    due.append(run)
                    if not run.finished:
                        break
                    if run.error is not None and _fatal(run.error):
                        fatal = run.error
                    else:
                        ahead += 1
                if all(r.announced == r.begun for r in due) and fatal is None and ahead < len(self.runs):
                    self.changed.wait(0.1)  # a timeout: a noted Ctrl-C is seen within 0.1 s
            for run in due:  # one at a time: an interrupt here leaves the rest to run(), none twice
                while run.announced < run.begun:
                    run.announced += 1
                    self.announce(run.items[run.announced - 1])
            if fatal is not None:
                raise fatal

    def _start_ready(self) -> None:
        """Start what may start (under the lock); nothing new once something fatal happened."""
        if any(run.finished and run.error is not None and _fatal(run.error) for run in self.runs):
            return
        running = sum(1 for run in self.runs if run.started and not run.finished)
        for run in self.runs:
            if running >= self.limit:
                return
            if run.started:
                continue
            befores = [self.by_key[key] for key in run.after if key in self.by_key]
            blocker = next((b for b in befores if b.finished and b.error is not None), None)
            if blocker is not None:
                run.started = run.finished = True
                run.error = _skipped(blocker.key)
            elif all(b.finished for b in befores):
                self._start(run)
                running += 1
        pending = [run for run in self.runs if not run.started]
        if running == 0 and pending:  # chains waiting for each other: the plan's order decides
            self._start(pending[0])

    def _start(self, run: _Run[T]) -> None:
        run.started = True
        run.thread = threading.Thread(target=self._work, args=(run,), name=f"ngcws-apply-{run.key}")
        run.thread.start()

    def _work(self, run: _Run[T]) -> None:
        try:
            for item in run.items:
                with self.changed:
                    if self.stopping:
                        return
                    run.begun += 1
                    self.changed.notify_all()
                self.execute(item)
        except BaseException as exc:  # handed to the announcing thread, which raises or reports it
            run.error = exc
        finally:
            with self.changed:
                run.finished = True
                self.changed.notify_all()


def _fatal(exc: BaseException) -> bool:
    """Not worth trying the other chains: the engine is gone, or this is a bug."""
    return not isinstance(exc, NgcwsError) or isinstance(exc, EngineUnavailable)


def _skipped(blocker: str) -> NotApplied:
    return NotApplied(f"not applied: it joins the network of {blocker}, which failed")


def failed(failures: list[tuple[str, NgcwsError]], chains: int) -> NgcwsError:
    """The error to raise for ``failures`` out of ``chains`` chains: the failure itself if it was the
    only chain; named after its chain if the others were applied; all of them, each named, if several."""
    if len(failures) == 1:
        key, error = failures[0]
        if chains > 1:
            if key and not error.message.startswith(f"{key}: "):
                error.message = f"{key}: {error.message}"
            error.hint = f"{error.hint}\nEverything else was applied." if error.hint else "Everything else was applied."
        return error
    return ApplyFailed(failures)
