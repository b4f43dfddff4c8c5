"""Plan: desired vs observed → ordered actions, each with a human reason. Pure.

This is a purely computational module with no side effects: the controller observes, calls these
functions, and applies what they return.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ngcws import labels as L
from ngcws.errors import ImageNotFound, OwnershipError
from ngcws.observed import Observed, ObservedContainer
from ngcws.redact import is_digest
from ngcws.spec import DesiredContainer, canonical_essence, hash_essence
from ngcws.values import format_size, port_text


class Kind(str, Enum):
    PULL = "pull"
    CREATE = "create"
    START = "start"
    UNPAUSE = "unpause"
    RECREATE = "recreate"
    REMOVE = "remove"
    NOOP = "up to date"


@dataclass(frozen=True)
class Action:
    kind: Kind
    workspace: str
    reason: str
    container: ObservedContainer | None = None
    desired: DesiredContainer | None = None

    @property
    def writes(self) -> bool:
        return self.kind is not Kind.NOOP

    def __str__(self) -> str:
        return f"{self.kind.value} {self.workspace}: {self.reason}"


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    errors: tuple[str, ...] = field(default=())  # what preflight would refuse (``ngcws plan``)

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.writes)

    def kinds(self) -> tuple[str, ...]:
        return tuple(a.kind.value for a in self.actions)


@dataclass(frozen=True)
class UpOptions:
    pull: str | None = None  # overrides each workspace's policy: always | missing | never
    force_recreate: bool = False
    no_recreate: bool = False
    remove_orphans: bool = False
    pulls_done: bool = False  # second pass, after pulling: plan no pulls
    take_over: bool = False  # containers of this project from a folder it was moved out of become ours


def owned(observed: Observed, directory: str) -> list[ObservedContainer]:
    """The snapshot's containers that belong to this folder's project (one-offs excluded)."""
    return [c for c in observed.containers if c.labels.get(L.PROJECT_DIR) == directory and not c.oneoff]


def oneoffs(observed: Observed, directory: str) -> list[ObservedContainer]:
    """This folder's ``ngcws run`` containers (kept by ``--no-rm``, or still running)."""
    return [c for c in observed.containers if c.labels.get(L.PROJECT_DIR) == directory and c.oneoff]


def moved(observed: Observed) -> list[ObservedContainer]:
    """This project's containers made in a folder that no longer holds its ngcws.yaml."""
    return [c for c in observed.containers if c.labels.get(L.PROJECT_DIR) in observed.moved_from and not c.oneoff]


def moved_error(found: list[ObservedContainer], directory: str, command: str) -> OwnershipError:
    folders = sorted({c.labels.get(L.PROJECT_DIR, "") for c in found})
    names = ", ".join(sorted(c.name for c in found))
    hint = "`ngcws down --take-over` removes them"
    if command == "up":
        hint = "`ngcws up --take-over` replaces them with containers made from this folder's ngcws.yaml; " + hint
    return OwnershipError(
        f"found this project's containers ({names}) made in {', '.join(folders)}, which no longer has its "
        f"ngcws.yaml: was the project moved or renamed to {directory}?",
        hint=f"{hint}. Or move the folder back.",
    )


def check_ownership(desired: list[DesiredContainer], observed: Observed, directory: str) -> None:
    """Refuse when a same-named project in another folder holds a name we need."""
    wanted = {d.name for d in desired}
    for container in observed.containers:
        other = container.labels.get(L.PROJECT_DIR)
        if container.name in wanted and other != directory and other not in observed.moved_from:
            raise OwnershipError(
                f"container {container.name!r} belongs to project {container.labels.get(L.PROJECT)!r} "
                f"in {other}, not to this folder ({directory})",
                hint="ngcws will not touch it. Give this project another name (`name:` or -p), "
                "or take that one down from its own folder.",
            )


def plan_up(
    desired: list[DesiredContainer],
    every_workspace: list[str],
    observed: Observed,
    directory: str,
    options: UpOptions,
) -> Plan:
    """The actions that make the engine match ``desired``.

    ``desired`` are the selected workspaces; ``every_workspace`` names all workspaces in the file
    (a container of an unselected workspace is not an orphan).
    """
    check_ownership(desired, observed, directory)
    ours = owned(observed, directory)
    if moved(observed):
        if not options.take_over:
            raise moved_error(moved(observed), directory, "up")
        ours += moved(observed)
    actions: list[Action] = []
    for want in desired:
        actions.extend(pull_actions(want, observed, options))
    for want in desired:
        mine = [c for c in ours if c.workspace == want.workspace]
        actions.extend(_container_actions(want, mine, observed, options))
    if not options.no_recreate:
        actions = _follow_network_parents(actions, ours)
    warnings: list[str] = []
    for orphan in (c for c in ours if c.workspace not in every_workspace):
        if options.remove_orphans:
            actions.append(Action(Kind.REMOVE, orphan.workspace, "orphan: no longer in ngcws.yaml", orphan))
        else:
            warnings.append(
                f"container {orphan.name} belongs to workspace {orphan.workspace!r}, which is no longer in "
                "ngcws.yaml; remove it with --remove-orphans"
            )
    return Plan(tuple(actions), tuple(warnings))


def _follow_network_parents(actions: list[Action], ours: list[ObservedContainer]) -> list[Action]:
    """A workspace that joins another workspace's network namespace (``network_mode:
    container:NAME``) is recreated with it: the engine keeps the id of the container it joined,
    so a dependent left as it is would share the namespace of a container that is gone (no
    network, and it can never start again). Also when the replacement happened earlier, found by
    that id; dependents of dependents follow."""
    replaced = {a.desired.name for a in actions if a.kind in (Kind.CREATE, Kind.RECREATE) and a.desired}
    current = {c.name: c.id for c in ours}
    out = list(actions)
    changed = True
    while changed:
        changed = False
        for i, action in enumerate(out):
            want, old = action.desired, action.container
            if want is None or old is None or action.kind not in (Kind.NOOP, Kind.START, Kind.UNPAUSE):
                continue
            mode = str(want.essence.get("network_mode") or "")
            if not mode.startswith("container:"):
                continue
            parent = mode.split(":", 1)[1]
            joined = old.network_mode.split(":", 1)[1] if old.network_mode.startswith("container:") else ""
            if parent in replaced:
                reason = f"joins the network namespace of {parent}, which is replaced"
            elif joined and parent in current and not current[parent].startswith(joined):
                reason = f"joined an earlier container {joined[:12]} of {parent} (replaced since; its network is gone)"
            else:
                continue
            out[i] = Action(Kind.RECREATE, action.workspace, reason, old, want)
            replaced.add(want.name)
            changed = True
    return out


def pull_actions(want: DesiredContainer, observed: Observed, options: UpOptions) -> list[Action]:
    """Pull or not, by the pull policy (``--pull`` over ``pull:``) and what is local."""
    if options.pulls_done:
        return []
    policy = options.pull or want.pull
    present = observed.images.get(want.image) is not None
    if policy == "always":
        return [Action(Kind.PULL, want.workspace, f"{want.image} (pull policy always)", desired=want)]
    if present:
        return []
    if policy == "never":
        raise ImageNotFound(
            f"image {want.image} is not present locally and the pull policy of {want.workspace!r} is never",
            hint="Pull it (`ngcws pull`) or use --pull missing.",
        )
    return [Action(Kind.PULL, want.workspace, f"{want.image} is not present locally", desired=want)]


def _container_actions(
    want: DesiredContainer, mine: list[ObservedContainer], observed: Observed, options: UpOptions
) -> list[Action]:
    if not mine:
        return [
            Action(Kind.CREATE, want.workspace, f"no container {want.name}", desired=want),
            Action(Kind.START, want.workspace, "new container", desired=want),
        ]
    # The container with our name first; others (left by an interrupted recreate) are removed.
    mine = sorted(mine, key=lambda c: (c.name != want.name, -c.created))
    current, extra = mine[0], mine[1:]
    actions = [Action(Kind.REMOVE, want.workspace, f"stale duplicate {c.name}", c) for c in extra]
    actions.extend(_state_actions(want, current, observed, options))
    return actions


def _state_actions(
    want: DesiredContainer, current: ObservedContainer, observed: Observed, options: UpOptions
) -> list[Action]:
    """What makes ``current`` the running ``want``, in whatever state the engine has it.

    A paused container is unpaused (the engine refuses to start it), a dead one can only be
    replaced, and one the engine is removing is waited for and created anew.
    """
    if current.state == "removing":
        return [
            Action(Kind.CREATE, want.workspace, f"{current.name} is being removed: wait, then create", current, want),
            Action(Kind.START, want.workspace, "new container", desired=want),
        ]
    if current.state == "dead":
        return [Action(Kind.RECREATE, want.workspace, f"{current.name} is dead (it cannot be started)", current, want)]
    old_folder = current.labels.get(L.PROJECT_DIR)
    if old_folder != want.request["Labels"].get(L.PROJECT_DIR):
        return [Action(Kind.RECREATE, want.workspace, f"taken over from {old_folder}", current, want)]
    reason = None if options.no_recreate else recreate_reason(want, current, observed, options)
    if reason:
        return [Action(Kind.RECREATE, want.workspace, reason, current, want)]
    if current.state in ("running", "restarting"):
        return [Action(Kind.NOOP, want.workspace, f"{current.name} is running", current, want)]
    if current.state == "paused":
        return [Action(Kind.UNPAUSE, want.workspace, f"{current.name} is paused", current, want)]
    return [Action(Kind.START, want.workspace, f"{current.name} is {current.state}", current, want)]


def recreate_reason(
    want: DesiredContainer, current: ObservedContainer, observed: Observed, options: UpOptions
) -> str | None:
    """Why ``current`` must be replaced to become ``want``, or None if it need not be."""
    if options.force_recreate:
        return "--force-recreate"
    if current.name != want.name:
        return f"{current.name} is a temporary name left by an interrupted recreate"
    if current.spec_hash != want.spec_hash and not _equivalent(current, want, observed):
        changes = describe_changes(current.essence, want.essence)
        return "; ".join(changes) if changes else "created by another ngcws version"
    image_id = observed.images.get(want.image)
    if image_id and current.image_id and image_id != current.image_id:
        return f"{want.image} now resolves to {_short(image_id)} (container has {_short(current.image_id)})"
    return None


def _equivalent(current: ObservedContainer, want: DesiredContainer, observed: Observed) -> bool:
    """The container's recorded essence means what ``want`` says, only spelled otherwise
    (``INT``/``SIGINT``, ``runtime: runc`` on an engine whose default is runc): no recreate. Only
    for a container made under this :data:`~ngcws.spec.SPEC_VERSION`."""
    old = current.essence
    if old is None or hash_essence(old) != current.spec_hash:
        return False
    default = observed.default_runtime
    return canonical_essence(old, default) == canonical_essence(want.essence, default)


#: How a value that holds a secret is shown: never the value (redact.conceal).
SECRET = "<secret>"
#: Dict fields whose changes are named by key (``env.WANDB_MODE unset → offline``).
_KEYED = ("env", "labels", "ulimits", "sysctls", "tmpfs", "healthcheck")
#: List fields that are sets: a change is what was added and removed (``mounts: + /data:/data``).
_SETS = ("ports", "mounts", "devices", "cap_add", "cap_drop", "security_opt", "extra_hosts", "dns", "group_add",
         "networks", "capabilities")  # fmt: skip


def describe_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Field-level differences, e.g. ``shm_size 1g → 16g``, ``env.WANDB_MODE unset → offline``,
    ``ports: 18888:8888 → 18889:8888``, ``mounts: + /data:/data``: the least that changed, spelled
    as in the file, never cut short."""
    if old is None:
        return []
    out = []
    for key in [*new, *(k for k in old if k not in new)]:
        before, after = old.get(key), new.get(key)
        if _same(before, after):
            continue
        if key in _KEYED and isinstance(before or {}, dict) and isinstance(after or {}, dict):
            before, after = before or {}, after or {}
            for sub in sorted(before.keys() | after.keys()):
                if _same(before.get(sub), after.get(sub)):
                    continue
                if is_digest(before.get(sub)) or is_digest(after.get(sub)):  # never a value, only that it changed
                    how = "added" if sub not in before else "removed" if sub not in after else "changed"
                    out.append(f"{key}.{sub} {how} (secret)")
                else:
                    out.append(f"{key}.{sub} {_show(key, before.get(sub))} → {_show(key, after.get(sub))}")
        elif key in _SETS and isinstance(before or [], list) and isinstance(after or [], list):
            out.append(f"{key}: {_set_change(key, before or [], after or [])}")
        else:
            out.append(f"{key} {_show(key, before)} → {_show(key, after)}")
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal, whatever the order of a mapping's keys (labels of older versions may differ)."""
    return a == b or json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _set_change(key: str, before: list[Any], after: list[Any]) -> str:
    """``18888:8888 → 18889:8888`` for an item changed in place (same container port, mount target,
    device path), ``+ item`` / ``- item`` for the rest."""

    def canon(item: Any) -> str:
        return json.dumps(item, sort_keys=True)

    gone = [i for i in before if canon(i) not in {canon(j) for j in after}]
    came = [i for i in after if canon(i) not in {canon(j) for j in before}]
    parts = []
    for item in list(gone):
        twin = next(
            (j for j in came if _identity(key, j) is not None and _identity(key, j) == _identity(key, item)), None
        )
        if twin is not None:
            parts.append(f"{_item(key, item)} → {_item(key, twin)}")
            gone.remove(item)
            came.remove(twin)
    parts += [f"+ {_item(key, i)}" for i in came] + [f"- {_item(key, i)}" for i in gone]
    return ", ".join(parts)


def _identity(key: str, item: Any) -> Any:
    """What makes two items of a list field the same entry changed (None: no such thing)."""
    if not isinstance(item, dict):
        return None
    if key == "ports":
        return (item.get("container_port"), item.get("protocol"))
    return item.get("target")


def _item(key: str, item: Any) -> str:
    """One item of a list field as the file spells it."""
    if is_digest(item):
        return SECRET
    if not isinstance(item, dict):
        return str(item)
    if key == "ports":
        return port_text(item)
    if key == "mounts":
        if item.get("type") == "tmpfs":
            return f"{{type: tmpfs, target: {item['target']}}}"
        return f"{item.get('source') or ''}:{item['target']}{':ro' if item.get('read_only') else ''}"
    if key == "devices":
        text = str(item["source"]) + (f":{item['target']}" if item.get("target") not in (None, item["source"]) else "")
        return text + (f":{item['permissions']}" if item.get("permissions") not in (None, "rwm") else "")
    return json.dumps(item, sort_keys=True)


def _show(key: str, value: Any) -> str:
    if is_digest(value):
        return SECRET
    if value is None:
        return "unset"
    if value == "":
        return '""'
    if key == "shm_size" and isinstance(value, int):
        return format_size(value)
    if key == "ulimits" and isinstance(value, dict):
        return str(value["soft"]) if value["soft"] == value["hard"] else f"{value['soft']}:{value['hard']}"
    if isinstance(value, list):
        return "[" + ", ".join(_item(key, v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(", ", ": "))
    return str(value)


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def plan_down(
    observed: Observed, directory: str, remove_orphans: bool, every_workspace: list[str], take_over: bool = False
) -> Plan:
    """Remove the project's containers, its ``ngcws run`` ones included (orphans only with
    ``remove_orphans``; those left in a folder the project was moved out of only with ``take_over``)."""
    actions = []
    warnings = []
    left_behind = moved(observed)
    if left_behind and not take_over:
        error = moved_error(left_behind, directory, "down")
        warnings.append(f"{error.message} {error.hint}")
    for container in owned(observed, directory):
        if container.workspace in every_workspace or remove_orphans:
            actions.append(Action(Kind.REMOVE, container.workspace, f"{container.name} ({container.state})", container))
        else:
            warnings.append(f"orphan container {container.name} left; remove it with --remove-orphans")
    for container in left_behind if take_over else []:
        reason = f"{container.name} (taken over from {container.labels.get(L.PROJECT_DIR)}, {container.state})"
        actions.append(Action(Kind.REMOVE, container.workspace, reason, container))
    for container in oneoffs(observed, directory):
        reason = f"{container.name} (one-off from ngcws run, {container.state})"
        actions.append(Action(Kind.REMOVE, container.workspace, reason, container))
    return Plan(tuple(actions), tuple(warnings))
