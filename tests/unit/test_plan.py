"""The planner, as a table: desired vs observed → actions with reasons. No engine involved."""

from __future__ import annotations

from typing import Any

import pytest

from ngcws import labels as L
from ngcws.errors import ImageNotFound, OwnershipError
from ngcws.observed import Observed, ObservedContainer
from ngcws.plan import UpOptions, describe_changes, plan_down, plan_up
from ngcws.spec import DesiredContainer, Identity, canonical_json, desired_container

DIR = "/home/ada/lab"
IMAGE = "nvcr.io/nvidia/pytorch:23.08-py3"


def workspace(**overrides: Any) -> Any:
    """The real pydantic Workspace (never a stand-in that a new field could be missing from)."""
    from ngcws.model import Workspace

    data = {"image": IMAGE, "shm_size": 1024**3, "working_dir": "/workspace", **overrides}
    return Workspace.model_validate(data, context={"project_dir": DIR, "variables": {}})


def want(name: str = "train", **overrides: Any) -> DesiredContainer:
    return desired_container(name, workspace(**overrides), Identity("lab", DIR, f"{DIR}/ngcws.yaml"), None)


def container(
    d: DesiredContainer, state: str = "running", image_id: str = "sha256:aaa", **labels: str
) -> ObservedContainer:
    return ObservedContainer(
        id=f"id-{d.workspace}-{state}",
        name=d.name,
        state=state,
        image_id=image_id,
        labels={**d.request["Labels"], **labels},
        created=1,
    )


def plan(
    desired: list[DesiredContainer],
    containers: list[ObservedContainer],
    images: dict[str, str | None] | None = None,
    every: list[str] | None = None,
    **options: Any,
) -> Any:
    observed = Observed(tuple(containers), images if images is not None else {IMAGE: "sha256:aaa"})
    return plan_up(desired, every or [d.workspace for d in desired], observed, DIR, UpOptions(**options))


def test_a_workspace_in_anothers_network_namespace_is_recreated_with_it() -> None:
    """network_mode: container:<another workspace's container>: the engine keeps the id it joined."""
    from dataclasses import replace

    parent, child = want("a"), want("b", network_mode="container:lab-a")
    grandchild = want("c", network_mode="container:lab-b")
    a, b, c = container(parent), container(child), container(grandchild)
    b = replace(b, network_mode=f"container:{a.id}")
    c = replace(c, network_mode=f"container:{b.id}")
    assert plan([parent, child, grandchild], [a, b, c]).kinds() == ("up to date",) * 3
    changed = want("a", env={"X": "1"})  # the parent is recreated: its dependents follow, in turn
    result = plan([changed, child, grandchild], [a, b, c])
    assert result.kinds() == ("recreate",) * 3
    assert result.actions[1].reason == "joins the network namespace of lab-a, which is replaced"
    assert result.actions[2].reason == "joins the network namespace of lab-b, which is replaced"
    # The parent was replaced earlier (another up, docker rm -f + up): found by the id it joined.
    stale = replace(b, network_mode="container:0123456789abcdef")
    result = plan([parent, child], [a, stale])
    assert result.kinds() == ("up to date", "recreate") and "replaced since" in result.actions[1].reason
    stopped = replace(stale, state="exited")  # not started as it is: it could never start
    assert plan([parent, child], [a, stopped]).kinds() == ("up to date", "recreate")
    assert plan([parent, child], [a, stale], no_recreate=True).kinds() == ("up to date", "up to date")


def test_no_container_pull_if_needed_create_start() -> None:
    d = want()
    assert plan([d], [], images={IMAGE: None}).kinds() == ("pull", "create", "start")
    assert plan([d], []).kinds() == ("create", "start")


@pytest.mark.parametrize("state", ["exited", "created"])
def test_stopped_container_is_started_as_is(state: str) -> None:
    d = want()
    result = plan([d], [container(d, state)])
    assert result.kinds() == ("start",)
    assert result.actions[0].container.id == f"id-train-{state}"


@pytest.mark.parametrize(
    ("state", "kinds", "reason"),
    [
        ("paused", ("unpause",), "lab-train is paused"),  # the engine refuses to start a paused container
        ("dead", ("recreate",), "lab-train is dead (it cannot be started)"),
        ("removing", ("create", "start"), "lab-train is being removed: wait, then create"),
        ("restarting", ("up to date",), "lab-train is running"),
    ],
)
def test_each_engine_state_gets_what_works(state: str, kinds: tuple[str, ...], reason: str) -> None:
    d = want()
    result = plan([d], [container(d, state)])
    assert result.kinds() == kinds and result.actions[0].reason == reason
    assert result.actions[0].container is not None and result.actions[0].container.state == state


def test_a_dead_or_removing_container_is_replaced_even_with_no_recreate() -> None:
    d = want()
    assert plan([d], [container(d, "dead")], no_recreate=True).kinds() == ("recreate",)
    assert plan([d], [container(d, "removing")], no_recreate=True).kinds() == ("create", "start")
    changed = want(shm_size=2 * 1024**3)
    assert plan([changed], [container(d, "paused")], no_recreate=True).kinds() == ("unpause",)


def test_running_and_unchanged_needs_no_writes() -> None:
    d = want()
    result = plan([d], [container(d)])
    assert result.kinds() == ("up to date",) and result.changes == ()


def test_spec_change_recreates_and_says_which_fields() -> None:
    old = want(shm_size=1024**3, gpus=["0"], env={"A": "1"})
    new = want(shm_size=16 * 1024**3, gpus=["0", "1"], env={"A": "1", "B": "2"})
    result = plan([new], [container(old)])
    assert result.kinds() == ("recreate",)
    assert result.actions[0].reason == "gpus [0] → [0, 1]; shm_size 1g → 16g; env.B unset → 2"


def test_new_image_id_for_the_tag_recreates() -> None:
    d = want()
    result = plan([d], [container(d, image_id="sha256:old")], images={IMAGE: "sha256:new"})
    assert result.kinds() == ("recreate",)
    assert "now resolves to new" in result.actions[0].reason


def test_force_and_no_recreate() -> None:
    d = want()
    assert plan([d], [container(d)], force_recreate=True).kinds() == ("recreate",)
    changed = want(shm_size=2 * 1024**3)
    assert plan([changed], [container(d)], no_recreate=True).kinds() == ("up to date",)
    assert plan([changed], [container(d, "exited")], no_recreate=True).kinds() == ("start",)


def test_pull_policies() -> None:
    d = want()
    assert plan([d], [container(d)], pull="always").kinds() == ("pull", "up to date")
    assert plan([want(pull="always")], [container(d)]).kinds() == ("pull", "up to date")
    with pytest.raises(ImageNotFound, match="pull policy of 'train' is never"):
        plan([d], [], images={IMAGE: None}, pull="never")
    assert plan([d], [container(d)], pull="always", pulls_done=True).kinds() == ("up to date",)


def test_orphans_warned_or_removed() -> None:
    d, gone = want(), want("old")
    observed = [container(d), container(gone)]
    warned = plan([d], observed)
    assert warned.kinds() == ("up to date",) and "--remove-orphans" in warned.warnings[0]
    removed = plan([d], observed, remove_orphans=True)
    assert removed.kinds() == ("up to date", "remove") and removed.actions[1].workspace == "old"


def test_unselected_workspace_is_not_an_orphan() -> None:
    a, b = want("a"), want("b")
    result = plan([a], [container(a), container(b)], every=["a", "b"])
    assert result.kinds() == ("up to date",) and result.warnings == ()


def test_same_name_project_in_another_folder_is_refused() -> None:
    d = want()
    foreign = container(d, **{L.PROJECT_DIR: "/elsewhere/lab"})
    with pytest.raises(OwnershipError, match="belongs to project 'lab' in /elsewhere/lab"):
        plan([d], [foreign])


def test_oneoff_containers_are_neither_drift_nor_orphans() -> None:
    d = want()
    oneoff = ObservedContainer(
        "x", "lab-train-run-1", "running", "sha256:aaa", {**d.request["Labels"], L.ONEOFF: "true"}
    )
    assert plan([d], [oneoff]).kinds() == ("create", "start")


def test_leftover_from_interrupted_recreate_is_removed() -> None:
    d = want()
    stale = ObservedContainer("tmp", "abc_lab-train", "created", "sha256:aaa", d.request["Labels"], created=2)
    assert plan([d], [container(d), stale]).kinds() == ("remove", "up to date")


def test_a_new_container_left_under_its_temporary_name_is_recreated_under_ours() -> None:
    """Interrupted after the old container was removed and before the rename."""
    d = want()
    stale = ObservedContainer("tmp", "abc_lab-train", "created", "sha256:aaa", d.request["Labels"], created=2)
    [action] = plan([d], [stale]).actions
    assert action.kind.value == "recreate" and "temporary name" in action.reason


def test_down_removes_ours_and_orphans_only_when_asked() -> None:
    d, gone = want(), want("old")
    observed = Observed((container(d), container(gone)), {})
    assert [a.workspace for a in plan_down(observed, DIR, False, ["train"]).actions] == ["train"]
    assert [a.workspace for a in plan_down(observed, DIR, True, ["train"]).actions] == ["train", "old"]


def test_down_removes_this_folders_one_off_containers_too() -> None:
    d = want()
    kept = ObservedContainer("r", "lab-train-run-1", "exited", "sha256:aaa", {**d.request["Labels"], L.ONEOFF: "true"})
    elsewhere = ObservedContainer(
        "e", "lab-train-run-2", "exited", "sha256:aaa", {**kept.labels, L.PROJECT_DIR: "/elsewhere/lab"}
    )
    result = plan_down(Observed((container(d), kept, elsewhere), {}), DIR, False, ["train"])
    assert [a.container.id for a in result.actions if a.container] == ["id-train-running", "r"]
    assert result.actions[1].reason == "lab-train-run-1 (one-off from ngcws run, exited)"


def test_a_project_moved_here_is_explained_then_taken_over_on_request() -> None:
    d = want()
    left = container(d, **{L.PROJECT_DIR: "/old/lab"})
    observed = Observed((left,), {IMAGE: "sha256:aaa"}, moved_from=frozenset({"/old/lab"}))
    with pytest.raises(OwnershipError, match=r"made in /old/lab, which no longer has its ngcws.yaml") as caught:
        plan_up([d], ["train"], observed, DIR, UpOptions())
    assert (
        caught.value.hint
        and "ngcws up --take-over" in caught.value.hint
        and "ngcws down --take-over" in caught.value.hint
    )
    taken = plan_up([d], ["train"], observed, DIR, UpOptions(take_over=True))
    assert taken.kinds() == ("recreate",) and taken.actions[0].reason == "taken over from /old/lab"
    down = plan_down(observed, DIR, False, ["train"])
    assert down.actions == () and "ngcws down --take-over" in down.warnings[0]
    down = plan_down(observed, DIR, False, ["train"], take_over=True)
    assert down.kinds() == ("remove",) and "taken over from /old/lab" in down.actions[0].reason
    still_there = Observed((left,), {IMAGE: "sha256:aaa"})  # the old folder still has its file: not ours
    with pytest.raises(OwnershipError, match="belongs to project 'lab' in /old/lab"):
        plan_up([d], ["train"], still_there, DIR, UpOptions(take_over=True))


def test_describe_changes_never_shows_a_concealed_secret() -> None:
    old = {"command": ["python", "a.py", "secret:hmac-sha256:aa"], "labels": {"auth": "secret:hmac-sha256:aa"}}
    new = {"command": ["python", "a.py", "secret:hmac-sha256:bb"], "labels": {"auth": "secret:hmac-sha256:bb"}}
    assert describe_changes(old, new) == [
        "command [python, a.py, <secret>] → [python, a.py, <secret>]",
        "labels.auth changed (secret)",
    ]


def test_describe_changes_labels_and_mounts() -> None:
    old = want().essence
    new = want(labels={"team": "vision"}, mounts=[]).essence
    assert describe_changes(old, new) == ["labels.team unset → vision"]
    assert describe_changes(None, new) == []
    assert canonical_json(old) == canonical_json(want().essence)


def _observed_plan(desired: DesiredContainer, current: ObservedContainer, default_runtime: str | None) -> Any:
    observed = Observed((current,), {IMAGE: "sha256:aaa"}, default_runtime=default_runtime)
    return plan_up([desired], [desired.workspace], observed, DIR, UpOptions())


@pytest.mark.parametrize(
    ("old", "new", "default_runtime", "kind"),
    [
        ({"stop_signal": "INT"}, {"stop_signal": "SIGINT"}, None, "up to date"),  # made by an older ngcws
        ({"stop_signal": "SIGINT"}, {"stop_signal": "INT"}, None, "up to date"),
        ({"stop_signal": "2"}, {"stop_signal": "SIGINT"}, None, "up to date"),
        ({"stop_signal": "SIGINT"}, {"stop_signal": "SIGTERM"}, None, "recreate"),
        ({}, {"runtime": "runc"}, "runc", "up to date"),  # the engine recorded its default
        ({"runtime": "runc"}, {}, "runc", "up to date"),
        ({}, {"runtime": "runc"}, "nvidia", "recreate"),  # runc is not this engine's default
        ({}, {"runtime": "runc"}, None, "recreate"),
    ],
)
def test_equivalent_spellings_never_recreate(
    old: dict[str, Any], new: dict[str, Any], default_runtime: str | None, kind: str
) -> None:
    result = _observed_plan(want(**new), container(want(**old)), default_runtime)
    assert result.kinds() == (kind,), result.actions[0].reason


def test_equivalence_needs_a_container_of_this_spec_version() -> None:
    current = container(want(stop_signal="INT"), **{L.SPEC_HASH: "made-by-another-version"})
    result = _observed_plan(want(stop_signal="SIGINT"), current, None)
    assert result.kinds() == ("recreate",)


def _port(host: int | None, container: int, ip: str = "", proto: str = "tcp") -> dict[str, Any]:
    return {"host_ip": ip, "host_port": host, "container_port": container, "protocol": proto}


def _bind(source: str, target: str, ro: bool = False) -> dict[str, Any]:
    return {"type": "bind", "source": source, "target": target, "read_only": ro}


@pytest.mark.parametrize(
    ("key", "before", "after", "reason"),
    [
        ("ports", [_port(18888, 8888)], [_port(18889, 8888)], "ports: 18888:8888 → 18889:8888"),
        (
            "ports",
            [_port(18888, 8888), _port(16006, 6006)],
            [_port(16006, 6006), _port(18888, 8888), _port(None, 9000, "127.0.0.1", "udp")],
            "ports: + 127.0.0.1::9000/udp",
        ),
        ("ports", [_port(18888, 8888)], [], "ports: - 18888:8888"),
        ("ports", [_port(1, 80, "::1")], [_port(1, 80)], "ports: [::1]:1:80 → 1:80"),
        ("mounts", [_bind("/w", "/w")], [_bind("/data", "/data"), _bind("/w", "/w")], "mounts: + /data:/data"),
        ("mounts", [_bind("/d", "/data")], [_bind("/d", "/data", ro=True)], "mounts: /d:/data → /d:/data:ro"),
        (
            "mounts",
            [_bind("/a", "/a"), {"type": "tmpfs", "source": None, "target": "/t", "read_only": False}],
            [_bind("/b", "/b")],
            "mounts: + /b:/b, - /a:/a, - {type: tmpfs, target: /t}",
        ),
        (
            "devices",
            None,
            [{"source": "/dev/null", "target": "/dev/null", "permissions": "rwm"}],
            "devices: + /dev/null",
        ),
        (
            "devices",
            [{"source": "/dev/zero", "target": "/dev/z", "permissions": "rwm"}],
            [{"source": "/dev/zero", "target": "/dev/z", "permissions": "r"}],
            "devices: /dev/zero:/dev/z → /dev/zero:/dev/z:r",
        ),
        ("cap_add", ["CAP_IPC_LOCK"], ["CAP_IPC_LOCK", "CAP_SYS_NICE"], "cap_add: + CAP_SYS_NICE"),
        ("capabilities", ["utility"], None, "capabilities: - utility"),
        ("gpus", ["0"], ["0", "1"], "gpus [0] → [0, 1]"),
        (
            "command",
            ["python", "train.py"],
            ["python", "train.py", "--epochs", "90"],
            "command [python, train.py] → [python, train.py, --epochs, 90]",
        ),
    ],
)
def test_list_changes_are_minimal_and_spelled_as_in_the_file(key: str, before: Any, after: Any, reason: str) -> None:
    assert describe_changes({key: before}, {key: after}) == [reason]


def test_a_reason_is_never_cut_and_key_order_is_no_change() -> None:
    many = [_port(20000 + n, 8000 + n) for n in range(12)]
    moved = [*many[:-1], _port(30000, 8011)]
    [reason] = describe_changes({"ports": many}, {"ports": moved})
    assert reason == "ports: 20011:8011 → 30000:8011"
    reordered = [dict(reversed(list(p.items()))) for p in many]  # an older version's label, keys in another order
    assert describe_changes({"ports": reordered}, {"ports": many}) == []
    long_command = ["python", "-c", "x" * 200]
    [reason] = describe_changes({"command": None}, {"command": long_command})
    assert reason.endswith("x" * 200 + "]") and "..." not in reason


def test_a_secret_is_said_added_changed_or_removed_never_shown() -> None:
    from ngcws.redact import PREFIX

    old = {"env": {"KEPT": f"{PREFIX}aaa", "GONE": f"{PREFIX}bbb"}}
    new = {"env": {"KEPT": f"{PREFIX}ccc", "NEW": f"{PREFIX}ddd"}}
    assert describe_changes(old, new) == [
        "env.GONE removed (secret)",
        "env.KEPT changed (secret)",
        "env.NEW added (secret)",
    ]
