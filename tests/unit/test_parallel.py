"""Parallel apply without an engine: which actions form chains (chains.py) and how the runner
(parallel.py) orders output, waits, and reports failures. The engine side is tests/engine/test_parallel_apply.py."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from ngcws.chains import down_chains, lifecycle_chains, up_chains
from ngcws.errors import ApplyFailed, EngineError, EngineUnavailable, NgcwsError, UsageError
from ngcws.parallel import Stopped, failed, parallel_limit, run_chains
from ngcws.plan import Action, Kind
from tests.unit.test_plan import container, want


def test_up_chains_one_per_workspace_in_plan_order() -> None:
    a, b = want("a"), want("b")
    actions = [
        Action(Kind.CREATE, "a", "", desired=a),
        Action(Kind.CREATE, "b", "", desired=b),
        Action(Kind.START, "a", "", desired=a),
        Action(Kind.START, "b", "", desired=b),
    ]
    chains = up_chains(actions)
    assert [c.key for c in chains] == ["a", "b"]
    assert [a.kind for a in chains[0].actions] == [Kind.CREATE, Kind.START]
    assert all(c.after == frozenset() for c in chains)


def test_a_workspace_joining_anothers_network_waits_for_it_up_and_goes_first_down() -> None:
    net = want("net")
    app = want("app", network_mode=f"container:{net.name}")
    other = want("other", network_mode="container:someone-elses")
    up = up_chains([Action(Kind.CREATE, w.workspace, "", desired=w) for w in (app, net, other)])
    assert {c.key: c.after for c in up} == {"app": frozenset({"net"}), "net": frozenset(), "other": frozenset()}
    down = down_chains([Action(Kind.REMOVE, w.workspace, "", container(w)) for w in (net, app)])
    assert {c.key: c.after for c in down} == {net.name: frozenset({app.name}), app.name: frozenset()}


def record() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []
    return lines, lines.append


@pytest.mark.parametrize("limit", [1, 8])
def test_output_is_in_chain_order_whatever_finishes_first(limit: int) -> None:
    first_may_go = threading.Event()

    def execute(item: str) -> None:
        if item == "a1" and limit > 1:
            assert first_may_go.wait(10)  # the first chain finishes last
        if item == "b2":
            first_may_go.set()

    lines, announce = record()
    chains = [("a", ["a1", "a2"], frozenset()), ("b", ["b1", "b2"], frozenset()), ("c", ["c1"], frozenset())]
    assert run_chains(chains, execute, announce, limit) == []
    assert lines == ["a1", "a2", "b1", "b2", "c1"]


@pytest.mark.parametrize("limit", [1, 8])
def test_one_chain_fails_the_others_converge_and_its_followers_are_skipped(limit: int) -> None:
    done: list[str] = []
    lock = threading.Lock()

    def execute(item: str) -> None:
        if item == "b1":
            raise EngineError("b refused")
        with lock:
            done.append(item)

    lines, announce = record()
    chains = [
        ("a", ["a1", "a2"], frozenset()),
        ("b", ["b1", "b2"], frozenset()),
        ("c", ["c1"], frozenset({"b"})),
        ("d", ["d1"], frozenset()),
    ]
    failures = run_chains(chains, execute, announce, limit)
    assert [key for key, _ in failures] == ["b", "c"]
    assert failures[0][1].message == "b refused"
    assert "b, which failed" in failures[1][1].message
    assert sorted(done) == ["a1", "a2", "d1"]  # b2 never ran, c never started
    assert lines == ["a1", "a2", "b1", "d1"]


def test_ctrl_c_while_chains_run_still_tells_every_action_that_began() -> None:
    """The trial's case: the first line is printed, then Ctrl-C; the others were already applying."""
    begun: list[str] = []
    lock = threading.Lock()
    all_begun, release = threading.Event(), threading.Event()

    def execute(item: str) -> None:
        with lock:
            begun.append(item)
            if len(begun) == 3:
                all_begun.set()
        assert release.wait(10)

    lines: list[str] = []

    def announce(item: str) -> None:
        lines.append(item)
        if item == "a":
            assert all_begun.wait(10)  # three chains are now applying
            release.set()
            raise KeyboardInterrupt

    told: list[Stopped] = []
    chains = [(key, [key], frozenset[str]()) for key in "abcde"]
    with pytest.raises(KeyboardInterrupt):
        run_chains(chains, execute, announce, 3, told.append)
    assert sorted(begun) == ["a", "b", "c"]
    assert lines == ["a", "b", "c"]  # in chain order, none hidden by the interrupt
    assert told == [Stopped(not_begun=("d", "e"))]


def test_a_second_ctrl_c_while_stopping_hides_nothing_either() -> None:
    all_begun, release = threading.Event(), threading.Event()
    begun: list[str] = []
    lock = threading.Lock()

    def execute(item: str) -> None:
        with lock:
            begun.append(item)
            if len(begun) == 3:
                all_begun.set()
        assert release.wait(10)

    lines: list[str] = []

    def announce(item: str) -> None:
        lines.append(item)
        if item == "a":
            assert all_begun.wait(10)
            release.set()
        if item in ("a", "b"):  # Ctrl-C, then Ctrl-C again while b is being told
            raise KeyboardInterrupt

    told: list[Stopped] = []

    def tell(what: Stopped) -> None:
        told.append(what)
        if len(told) == 1:
            raise KeyboardInterrupt  # and a third

    chains = [(key, [key], frozenset[str]()) for key in "abcd"]
    with pytest.raises(KeyboardInterrupt):
        run_chains(chains, execute, announce, 3, tell)
    assert lines == ["a", "b", "c"]
    assert told == [Stopped(not_begun=("d",))]


def test_ctrl_c_one_by_one_names_the_chain_left_part_way() -> None:
    def execute(item: str) -> None:
        if item == "b1":
            raise KeyboardInterrupt

    lines, announce = record()
    told: list[Stopped] = []
    chains = [("a", ["a1", "a2"], frozenset[str]()), ("b", ["b1", "b2"], frozenset()), ("c", ["c1"], frozenset())]
    with pytest.raises(KeyboardInterrupt):
        run_chains(chains, execute, announce, 1, told.append)
    assert lines == ["a1", "a2", "b1"]
    assert told == [Stopped(part_way=("b",), not_begun=("c",))]


@pytest.mark.parametrize("limit", [1, 4])
def test_an_engine_gone_mid_run_tells_what_was_done_failed_and_left(limit: int) -> None:
    refused = EngineError("a refused")

    def execute(item: str) -> None:
        if item == "a1":
            raise refused
        if item == "b1":
            raise EngineUnavailable("the Docker engine is not running")

    lines, announce = record()
    told: list[Stopped] = []
    chains = [("a", ["a1"], frozenset[str]()), ("b", ["b1"], frozenset({"a"})), ("c", ["c1"], frozenset({"b"}))]
    chains[1] = ("b", ["b1"], frozenset())  # b runs whatever a does; c waits for b, which is gone
    with pytest.raises(EngineUnavailable):
        run_chains(chains, execute, announce, limit, told.append)
    assert lines == ["a1", "b1"]
    assert told == [Stopped(part_way=("b",), failed=(("a", refused),), not_begun=("c",))]


def test_lifecycle_chains_order_a_shared_network_namespace() -> None:
    net = container(want("net"))
    app = container(want("app", network_mode=f"container:{net.name}"))
    assert lifecycle_chains([net, app], joined_first=True) == [("net", frozenset()), ("app", frozenset({"net"}))]
    assert lifecycle_chains([net, app], joined_first=False) == [("net", frozenset({"app"})), ("app", frozenset())]


def test_chains_wait_for_those_they_follow() -> None:
    order: list[str] = []
    lock = threading.Lock()

    def execute(item: str) -> None:
        with lock:
            order.append(item)

    chains = [("app", ["app"], frozenset({"net"})), ("net", ["net1", "net2"], frozenset())]
    assert run_chains(chains, execute, lambda _: None, 8) == []
    assert order.index("app") > order.index("net2")


def test_chains_waiting_for_each_other_still_run() -> None:
    ran: list[str] = []
    chains = [("a", ["a"], frozenset({"b"})), ("b", ["b"], frozenset({"a"}))]
    assert run_chains(chains, ran.append, lambda _: None, 8) == []
    assert sorted(ran) == ["a", "b"]


@pytest.mark.parametrize("limit", [1, 8])
def test_an_engine_that_is_gone_stops_everything_new(limit: int) -> None:
    started: list[str] = []
    lock = threading.Lock()

    def execute(item: str) -> None:
        with lock:
            started.append(item)
        if item == "a1":
            raise EngineUnavailable("the Docker engine is not running")

    chains = [("a", ["a1"], frozenset())] + [(f"x{i}", [f"x{i}"], frozenset({"a"})) for i in range(5)]
    with pytest.raises(EngineUnavailable):
        run_chains(chains, execute, lambda _: None, limit)
    assert started == ["a1"]


def test_a_bug_in_a_worker_reaches_the_caller() -> None:
    def execute(item: str) -> None:
        if item == "b":
            raise KeyError("bug")

    with pytest.raises(KeyError):
        run_chains([("a", ["a"], frozenset()), ("b", ["b"], frozenset())], execute, lambda _: None, 4)


def test_at_most_limit_chains_at_once() -> None:
    running, most = [0], [0]
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=10)

    def execute(item: str) -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        if item in ("c0", "c1", "c2"):
            gate.wait()  # three run together: the limit is reached, never passed
        with lock:
            running[0] -= 1

    chains = [(f"c{i}", [f"c{i}"], frozenset()) for i in range(9)]
    assert run_chains(chains, execute, lambda _: None, 3) == []
    assert most[0] == 3


def test_failures_name_their_workspace() -> None:
    alone = EngineError("start container p-a: no such file", hint="Check the image.")
    assert failed([("a", alone)], 1) is alone and alone.message == "start container p-a: no such file"
    one = EngineError("start container p-b: refused")
    error = failed([("b", one)], 3)
    assert error is one and error.message == "b: start container p-b: refused"
    assert error.hint == "Everything else was applied."
    several = failed([("a", EngineError("x", hint="fix x")), ("b", NgcwsError("y"))], 3)
    assert isinstance(several, ApplyFailed) and several.exit_code == 1
    assert several.message.splitlines() == ["a, b failed", "a: x", "  fix x", "b: y"]


def test_the_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NGCWS_TEST_STEP", raising=False)
    monkeypatch.delenv("NGCWS_PARALLEL_LIMIT", raising=False)
    assert parallel_limit() == 64
    monkeypatch.setenv("NGCWS_PARALLEL_LIMIT", "4")
    assert parallel_limit() == 4
    monkeypatch.setenv("NGCWS_TEST_STEP", "interrupt:3")
    assert parallel_limit() == 1  # fault injection counts steps: one at a time
    monkeypatch.delenv("NGCWS_TEST_STEP")
    for bad in ("0", "many", "-2"):
        monkeypatch.setenv("NGCWS_PARALLEL_LIMIT", bad)
        with pytest.raises(UsageError):
            parallel_limit()
