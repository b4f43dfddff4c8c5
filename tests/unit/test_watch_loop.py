"""The watcher's decisions (ngcws/watch.py), with a fake world: no engine, no files, no clock."""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import pytest

from ngcws.errors import ConfigError, EngineUnavailable
from ngcws.guard import Hold
from ngcws.observed import ObservedContainer
from ngcws.plan import Action, Kind, Plan
from ngcws.spec import DesiredContainer, DesiredState, Identity
from ngcws.watch import (
    Admit,
    EngineBack,
    EngineEvent,
    EngineLost,
    Exit,
    FilesChanged,
    Input,
    Loaded,
    Stop,
    Watch,
    backoff,
    finished,
    glob_root,
    matches,
)

DIR = "/p"


def state(
    pull: str = "missing", command: list[str] | None = None, restart: str = "no", restart_on: tuple[str, ...] = ()
) -> DesiredState:
    essence = {"command": command, "restart": restart}
    want = DesiredContainer("train", "lab-train", "img", pull, essence, "h", {}, restart_on=restart_on)
    return DesiredState(Identity("lab", DIR, f"{DIR}/ngcws.yaml"), ("train",), {"train": want})


def box(state_: str = "running", cid: str = "c1") -> ObservedContainer:
    return ObservedContainer(cid, "lab-train", state_, "sha256:1", {"ngcws.workspace": "train"})


class FakeWorld:
    def __init__(self) -> None:
        self.loads: list[Loaded | ConfigError] = []
        self.current = Loaded(state(restart_on=("src/**/*.py",)), frozenset({f"{DIR}/ngcws.yaml", f"{DIR}/.env"}))
        self.plan = Plan()
        self.applied: list[Plan] = []
        self.states: list[DesiredState] = []
        self.held: list[Hold] = []
        self.exit: Exit | None = None
        self.stopped_: set[str] = set()
        self.restarted: list[str] = []
        self.followed: list[tuple[frozenset[str], frozenset[str], bool]] = []
        self.fail: Exception | None = None
        self.left: dict[str, list[str]] = {}

    def load(self) -> Loaded:
        if self.loads:
            item = self.loads.pop(0)
            if isinstance(item, ConfigError):
                raise item
            self.current = item
        return self.current

    def follow_files(self, files: frozenset[str], roots: frozenset[str], loose: bool) -> None:
        self.followed.append((files, roots, loose))

    def converge(self, state_: DesiredState, admit: Admit) -> None:
        if self.fail:
            raise self.fail
        self.states.append(state_)
        self.applied.append(admit(self.plan))

    def holds(self, state_: DesiredState, doomed: list[ObservedContainer]) -> list[Hold]:
        return self.held

    def exit_of(self, container: ObservedContainer) -> Exit | None:
        return self.exit

    def stopped(self, state_: DesiredState) -> set[str]:
        return self.stopped_

    def last_logs(self, container: ObservedContainer) -> str:
        return "Traceback\nValueError: boom\n"

    def left_behind(self, identity: Identity) -> dict[str, list[str]]:
        return {p: names for p, names in self.left.items() if p != identity.project}

    def restart(self, state_: DesiredState, workspace: str) -> list[Hold]:
        if self.held:
            return self.held
        self.restarted.append(workspace)
        return []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld()


@pytest.fixture
def said() -> list[str]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watch(world: FakeWorld, said: list[str], clock: Clock) -> Watch:
    w = Watch(world, said.append, clock)
    w.start()
    return w


RECREATE = Action(Kind.RECREATE, "train", "shm_size 1g → 16g", box())
START = Action(Kind.START, "train", "lab-train is exited", box("exited"))


def test_patterns() -> None:
    assert glob_root("src/**/*.py") == "src"
    assert glob_root("app.py") == "."
    assert glob_root("conf/settings") == "conf"
    assert glob_root("*.py") == "."
    assert matches("/p/src/a/b/c.py", DIR, ["src/**/*.py"])
    assert matches("/p/src/c.py", DIR, ["src/**/*.py"])
    assert not matches("/p/src/c.pyc", DIR, ["src/**/*.py"])
    assert not matches("/p/lib/c.py", DIR, ["src/**/*.py"])
    assert not matches("/other/src/c.py", DIR, ["src/**/*.py"])
    assert matches("/p/conf/x/y.toml", DIR, ["conf"])  # a folder covers what is inside
    assert matches("/p/main.py", DIR, ["*.py"]) and not matches("/p/src/main.py", DIR, ["*.py"])


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff(n) for n in range(1, 10)] == [0, 1, 2, 4, 8, 16, 32, 60, 60]


def test_finished_means_the_own_command_succeeded_under_restart_no() -> None:
    ok = Exit(0, False, 5.0, "t1")
    assert finished(ok, "no", own_command=True)
    assert finished(ok, "on-failure", own_command=True)
    assert not finished(ok, "always", own_command=True)
    assert not finished(ok, "no", own_command=False)  # the keep-alive never finishes by itself
    assert not finished(Exit(137, False, 5.0, "t1"), "no", own_command=True)
    assert not finished(Exit(0, True, 5.0, "t1"), "no", own_command=True)


def test_start_follows_the_files_and_reconciles(world: FakeWorld, watch: Watch) -> None:
    assert world.followed == [(world.current.files, frozenset({f"{DIR}/src"}), False)]
    assert len(world.applied) == 1


def test_an_invalid_edit_keeps_the_last_good_state_and_any_file_beside_it_may_fix_it(
    world: FakeWorld, watch: Watch, said: list[str]
) -> None:
    good = watch.loaded
    assert good is not None
    world.loads = [ConfigError("ngcws.yaml:3:7: workspaces.train.env_file: 'new.env' does not exist")]
    watch.handle([FilesChanged(frozenset({f"{DIR}/ngcws.yaml"}))])
    assert watch.loaded is good
    assert "error: ngcws.yaml:3:7: workspaces.train.env_file: 'new.env' does not exist" in said
    assert world.followed[-1] == (good.files, good.roots(), True)  # loose: the whole folder counts
    assert world.states[-1] == good.state  # the engine still gets the last good state
    fixed = Loaded(state(pull="always"), good.files | {f"{DIR}/new.env"})
    world.loads = [fixed]
    watch.handle([FilesChanged(frozenset({f"{DIR}/new.env"}))])  # created after it was named
    assert watch.loaded is fixed and "new.env changed" in said
    assert world.followed[-1] == (fixed.files, frozenset(), False)  # strict again, with the new file


def test_a_valid_edit_is_applied_with_a_fresh_pull_decision(world: FakeWorld, watch: Watch) -> None:
    edited = Loaded(state(pull="always"), world.current.files)
    world.loads = [edited]
    watch.handle([FilesChanged(frozenset({f"{DIR}/ngcws.yaml"}))])
    assert world.states[-1].containers["train"].pull == "always"
    watch.handle([EngineEvent({"Action": "die", "Actor": {"Attributes": {"ngcws.workspace": "train"}}})])
    assert world.states[-1].containers["train"].pull == "missing"  # not a pull at every event
    assert world.followed[-1][1] == frozenset()  # no more restart_on roots


def test_unrelated_files_and_swap_files_do_nothing(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    world.loads = [ConfigError("must not be loaded")]
    watch.handle([FilesChanged(frozenset({f"{DIR}/notes.txt", f"{DIR}/.ngcws.yaml.swp"}))])
    assert not any("error" in s for s in said) and world.restarted == []


def test_restart_on_restarts_and_waits_for_holds(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    world.held = [Hold("train", "1 exec session running: bash (since 12:00:00)", "wait")]
    watch.handle([FilesChanged(frozenset({f"{DIR}/src/app/x.py"}))])
    assert world.restarted == [] and watch.wake_at is not None
    assert any("waiting: restart train" in s for s in said)
    world.held = []
    watch.handle([])
    assert world.restarted == ["train"]
    watch.handle([])
    assert world.restarted == ["train"]  # once


def test_a_restart_is_not_done_on_top_of_a_recreate(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    """restart_on and a recreate held back together: the recreate alone starts the fresh code."""
    world.plan = Plan((RECREATE,))
    world.held = [Hold("train", "1 exec session running: python train.py (since 12:00:00)", "wait")]
    watch.handle([FilesChanged(frozenset({f"{DIR}/src/app/x.py"}))])
    assert world.restarted == [] and all(p.changes == () for p in world.applied)
    world.held = []
    watch.handle([])
    assert world.applied[-1].changes == (RECREATE,)
    world.plan = Plan()
    watch.handle([])
    assert world.restarted == []  # not restarted again


def test_a_held_recreate_waits_and_is_told_once(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    world.plan = Plan((RECREATE,))
    world.held = [Hold("train", "1 exec session running: python train.py (since 12:00:00)", "wait")]
    for _ in range(3):
        watch.handle([EngineEvent({"Action": "exec_die"})])
    assert all(p.changes == () for p in world.applied)
    assert sum("waiting: recreate train" in s for s in said) == 1
    world.held = []
    watch.handle([])
    assert world.applied[-1].changes == (RECREATE,)
    assert "train: nothing holds it back any more" in said


def test_a_workspace_stopped_by_the_user_is_left_alone(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    world.plan = Plan((START,))
    world.stopped_ = {"train"}
    world.exit = Exit(143, False, 100.0, "t1")
    watch.handle([])
    assert world.applied[-1].changes == ()
    assert any("ngcws stop" in s for s in said)


def test_nothing_to_apply_is_said_only_when_the_engine_really_matches(
    world: FakeWorld, watch: Watch, said: list[str]
) -> None:
    """An edit left unapplied (a workspace stopped by the user, an invalid file) is never "already matches"."""
    edit = FilesChanged(frozenset({f"{DIR}/ngcws.yaml"}))
    world.loads = [Loaded(world.current.state, world.current.files)]
    world.plan = Plan((RECREATE,))
    world.stopped_ = {"train"}
    watch.handle([edit])
    assert not any("already matches" in s for s in said)
    assert any(s.startswith("not applied now: train (stopped with `ngcws stop`") for s in said)
    said.clear()
    world.loads = [ConfigError("ngcws.yaml:2:1: oops")]
    watch.handle([edit])
    assert "error: ngcws.yaml:2:1: oops" in said and not any("already matches" in s for s in said)
    said.clear()
    world.stopped_ = set()
    world.plan = Plan()
    world.loads = [Loaded(world.current.state, world.current.files)]
    watch.handle([edit])
    assert "nothing to apply: the engine already matches" in said


def test_a_finished_command_is_left_exited(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    world.current = Loaded(state(command=["python", "job.py"]), world.current.files)
    world.loads = [world.current]
    watch.handle([FilesChanged(frozenset({f"{DIR}/ngcws.yaml"}))])
    world.plan = Plan((START,))
    world.exit = Exit(0, False, 100.0, "t1")
    watch.handle([])
    assert world.applied[-1].changes == ()
    world.exit = Exit(1, False, 100.0, "t2")  # a failure is not finished: it is brought back
    watch.handle([])
    assert world.applied[-1].changes == (START,)


def test_deaths_back_off_and_a_crash_loop_is_reported(
    world: FakeWorld, watch: Watch, said: list[str], clock: Clock
) -> None:
    world.plan = Plan((START,))
    starts = 0
    for death in range(1, 6):
        world.exit = Exit(3, False, 0.5, f"death{death}")
        watch.handle([EngineEvent({"Action": "die"})])
        if world.applied[-1].changes:
            starts += 1
        else:
            assert watch.crashes["train"].not_before == clock.now + backoff(death)
            assert watch.wake_at is not None and watch.wake_at <= clock.now + backoff(death)
            clock.now += backoff(death) - 0.5
            watch.handle([])
            assert world.applied[-1].changes == ()  # not before its time
            clock.now += 0.5
            watch.handle([])
            assert world.applied[-1].changes == (START,)
            starts += 1
    assert starts == 5
    report = next(s for s in said if s.startswith("crash loop: train died 3 times"))
    assert "exit 3" in report and "| ValueError: boom" in report
    assert any(s.startswith("crash loop: train died 5 times") for s in said)
    # a long healthy run starts a fresh count: started at once
    world.exit = Exit(3, False, 3600.0, "death6")
    watch.handle([])
    assert world.applied[-1].changes == (START,)


def test_the_same_death_seen_twice_counts_once(world: FakeWorld, watch: Watch, clock: Clock) -> None:
    world.plan = Plan((START,))
    world.exit = Exit(3, False, 0.5, "death1")
    watch.handle([])
    world.exit = Exit(3, False, 0.5, "death2")
    watch.handle([])
    watch.handle([])  # still the second death
    assert watch.crashes["train"].deaths == 2


def test_engine_lost_is_said_once_and_nothing_is_tried_until_it_is_back(
    world: FakeWorld, watch: Watch, said: list[str]
) -> None:
    before = len(world.states)
    world.fail = EngineUnavailable("cannot reach the Docker engine")
    watch.handle([EngineEvent({"Action": "die"})])
    watch.handle([EngineLost("closed"), EngineLost("refused")])
    watch.handle([])
    assert sum("engine unavailable" in s for s in said) == 1
    world.fail = None
    watch.handle([EngineBack()])
    assert "engine answers again: reconciling" in said
    assert len(world.states) == before + 1


def test_run_ends_on_stop_and_batches_what_arrived(world: FakeWorld, said: list[str], clock: Clock) -> None:
    inbox: queue.Queue[Input] = queue.Queue()
    for _ in range(5):
        inbox.put(EngineEvent({"Action": "die"}))
    watch = Watch(world, said.append, clock)
    thread = threading.Thread(target=watch.run, args=(inbox, threading.Event()))
    thread.start()
    while not inbox.empty():
        threading.Event().wait(0.01)
    inbox.put(Stop())
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert 2 <= len(world.states) <= 3  # the start, then the five events in one or two batches


def test_run_ends_when_the_stop_event_is_set(world: FakeWorld, said: list[str], clock: Clock) -> None:
    stop = threading.Event()
    stop.set()
    Watch(world, said.append, clock).run(queue.Queue(), stop)
    assert len(world.states) == 1


def test_stop_intent_is_recorded_and_cleared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ngcws import intent, lock

    monkeypatch.setattr(lock, "LOCK_DIR", str(tmp_path / "locks"))
    assert intent.stopped("lab", DIR) == set()
    intent.mark_stopped("lab", DIR, ["train", "serve"])
    assert intent.stopped("lab", DIR) == {"train", "serve"}
    assert intent.stopped("lab", "/elsewhere") == set()
    intent.clear_stopped("lab", DIR, ["train"])
    assert intent.stopped("lab", DIR) == {"serve"}


def test_one_watcher_slot_per_project_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ngcws import lock
    from ngcws.errors import AlreadyWatching

    monkeypatch.setattr(lock, "LOCK_DIR", str(tmp_path / "locks"))
    assert lock.running_watcher("lab", DIR) is None
    with lock.watcher_slot("lab", DIR):
        found = lock.running_watcher("lab", DIR)
        assert found is not None and found["pid"] == os.getpid()
        with pytest.raises(AlreadyWatching, match=f"pid {os.getpid()}"), lock.watcher_slot("lab", DIR):
            pass
        with lock.watcher_slot("lab", "/elsewhere"):
            pass
    assert lock.running_watcher("lab", DIR) is None


def event(action: str, cid: str, **attributes: str) -> EngineEvent:
    return EngineEvent(
        {"Action": action, "Actor": {"ID": cid, "Attributes": {"ngcws.workspace": "train", **attributes}}}
    )


def test_the_echo_of_its_own_recreate_is_not_reported_as_news(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    world.plan = Plan((RECREATE,))
    watch.handle([])
    world.plan = Plan()
    said.clear()
    watch.handle([event("kill", "c1", signal="15"), event("die", "c1", exitCode="143"), event("create", "c2")])
    watch.handle([event("start", "c2"), event("destroy", "c1")])
    assert said == []
    watch.handle([event("kill", "c2", signal="9"), event("die", "c2", exitCode="137")])  # from outside
    assert said == ["engine: kill train (9)", "engine: train died (exit 137)"]


def test_an_old_container_put_back_after_a_failed_recreate_is_reported_again(
    world: FakeWorld, watch: Watch, said: list[str]
) -> None:
    world.plan = Plan((RECREATE,))
    watch.handle([])
    world.plan = Plan()
    said.clear()
    watch.handle([event("kill", "c1"), event("die", "c1", exitCode="143"), event("start", "c1")])  # put back
    assert said == []
    watch.handle([event("die", "c1", exitCode="1")])
    assert said == ["engine: train died (exit 1)"]


def test_the_echo_of_its_own_restart_is_not_reported_as_news(world: FakeWorld, watch: Watch, said: list[str]) -> None:
    watch.handle([FilesChanged(frozenset({f"{DIR}/src/app/x.py"}))])
    assert world.restarted == ["train"]
    said.clear()
    watch.handle([event("kill", "c1", signal="15"), event("die", "c1", exitCode="143"), event("start", "c1")])
    watch.handle([event("restart", "c1")])
    assert said == []
    watch.handle([event("die", "c1", exitCode="3")])
    assert said == ["engine: train died (exit 3)"]


def test_a_users_stop_never_counts_toward_a_crash_loop(
    world: FakeWorld, watch: Watch, said: list[str], clock: Clock
) -> None:
    world.plan = Plan((START,))
    for death in ("d1", "d2"):  # two quick deaths of its own
        world.exit = Exit(3, False, 0.5, death)
        watch.handle([EngineEvent({"Action": "die"})])
        clock.now += 5
        watch.handle([])
    assert watch.crashes["train"].deaths == 2
    for stop in ("s1", "s2", "s3"):  # `ngcws stop` (quickly after a start), seen by the watcher
        world.stopped_ = {"train"}
        world.exit = Exit(143, False, 2.0, stop)
        watch.handle([EngineEvent({"Action": "die"})])
        assert world.applied[-1].changes == ()
        world.stopped_ = set()  # the intent cleared, the container still down (the stop's own death)
        watch.handle([])
        assert world.applied[-1].changes == (START,)  # at once: no backoff
    world.exit = Exit(3, False, 0.5, "d3")  # the next death of its own is the first of a new count
    watch.handle([EngineEvent({"Action": "die"})])
    assert world.applied[-1].changes == (START,) and watch.crashes["train"].deaths == 1
    assert not any("crash loop" in s or "died again" in s for s in said[-3:]), said


def test_a_name_change_is_not_followed_and_what_it_would_leave_is_said(
    world: FakeWorld, watch: Watch, said: list[str]
) -> None:
    world.left = {"lab": ["lab-train"]}
    renamed = state()._replace(identity=Identity("lab2", DIR, f"{DIR}/ngcws.yaml"))
    world.loads = [Loaded(renamed, world.current.files)]
    watch.handle([FilesChanged(frozenset({f"{DIR}/ngcws.yaml"}))])
    assert watch.state.identity.project == "lab"
    told = next(s for s in said if "name changed" in s)
    assert "(lab → lab2): not followed; this watcher keeps lab in force (lab-train)" in told
    assert "`ngcws -p lab down`" in told and "`ngcws up --watch`" in told


def test_containers_left_by_an_old_name_are_said_once_when_it_creates(
    world: FakeWorld, watch: Watch, said: list[str]
) -> None:
    world.left = {"old": ["old-train", "old-serve"]}
    watch.handle([])
    assert not any("old-train" in s for s in said)  # nothing created: not the moment
    world.plan = Plan((Action(Kind.CREATE, "train", "no container lab-train", None),))
    watch.handle([])
    watch.handle([])
    notes = [s for s in said if "old-train" in s]
    assert notes == [
        "note: project 'old' (this file under its old name?) still has 2 container(s) here: "
        "old-train, old-serve; `ngcws -p old down` removes them"
    ]
