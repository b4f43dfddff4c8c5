"""Which GPUs a request holds, and which requests share GPUs. Pure.

Docker does no GPU scheduling: ``--gpus 2`` (``gpus: 2``) is always GPUs 0 and 1, whatever else
runs on them. So two containers that ask for ``all``, for a count, or for overlapping ids share
GPUs, and ngcws says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

ALL = "all"


class Holder(NamedTuple):
    """A container that holds GPUs: who it is and what it asked for (canonical ``gpus``)."""

    label: str  # e.g. "workspace 'train' of project 'lab' (lab-train)" or "container foo"
    gpus: Any


def held(gpus: Any, index_of: Mapping[str, str] | None = None) -> frozenset[str] | str:
    """The GPUs a canonical ``gpus`` value holds: ``"all"``, or a set of ids.

    ``index_of`` maps UUIDs (lower case) to indexes when the host can say, so that ``GPU-…``
    and ``0`` are recognised as the same GPU.
    """
    if gpus in (None, "none"):
        return frozenset()
    if gpus == ALL:
        return ALL
    if isinstance(gpus, int):
        return frozenset(str(i) for i in range(gpus))
    out = set()
    for ident in gpus:
        text = str(ident)
        out.add((index_of or {}).get(text.lower(), text))
    return frozenset(out)


def shared(a: frozenset[str] | str, b: frozenset[str] | str) -> frozenset[str] | str:
    """The GPUs both hold (``"all"`` when both hold every GPU)."""
    if not a or not b:
        return frozenset()
    if a == ALL:
        return b
    if b == ALL:
        return a
    assert isinstance(a, frozenset) and isinstance(b, frozenset)
    return a & b


def describe(gpus: Any) -> str:
    """``all GPUs`` / ``GPUs 0, 1`` / ``no GPU``; a count is spelled as the GPUs it means."""
    which = held(gpus)
    if which == ALL:
        return "all GPUs"
    if not which:
        return "no GPU"
    ids = sorted(which, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))
    return ("GPU " if len(ids) == 1 else "GPUs ") + ", ".join(ids)


def count_note(gpus: Any) -> str | None:
    """For a count: what it means, since Docker picks GPUs 0..N-1 and does no scheduling."""
    if isinstance(gpus, int) and gpus > 0:
        return (
            f"gpus: {gpus} means {describe(gpus)} (Docker takes the first {gpus}; it does not pick free GPUs); "
            "list ids to choose others"
        )
    return None


def sharing(
    parties: Sequence[Holder], concerning: Iterable[str] | None = None, index_of: Mapping[str, str] | None = None
) -> list[str]:
    """One line per set of GPUs that several parties hold, naming every holder of that set.

    GPUs held by the same parties are one line (``GPUs 0, 1 are shared by ...``); GPUs that only
    ``all``-holders share are "all GPUs" (or "all other GPUs" when some were named). Only lines with
    a party whose label is in ``concerning`` (default: every line).
    """
    held_by = [(p, held(p.gpus, index_of)) for p in parties]
    held_by = [(p, h) for p, h in held_by if h]
    named = sorted(
        {i for _, h in held_by if isinstance(h, frozenset) for i in h},
        key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i),
    )
    groups: dict[tuple[int, ...], list[str]] = {}
    for ident in named:
        who = tuple(n for n, (_, h) in enumerate(held_by) if h == ALL or ident in h)
        if len(who) > 1:
            groups.setdefault(who, []).append(ident)
    everyone = tuple(n for n, (_, h) in enumerate(held_by) if h == ALL)
    wanted = None if concerning is None else set(concerning)
    lines = []
    for who, idents in [*groups.items(), *([(everyone, [])] if len(everyone) > 1 else [])]:
        if wanted is not None and not any(held_by[n][0].label in wanted for n in who):
            continue
        if idents:
            what = describe(idents) + (" is" if len(idents) == 1 else " are")
        else:
            what = "all other GPUs are" if named else "all GPUs are"
        holders = ", ".join(f"{held_by[n][0].label} ({describe(held_by[n][0].gpus)})" for n in who)
        lines.append(f"{what} shared by {len(who)}: {holders}")
    return lines


def gpus_of_container(host_config: Mapping[str, Any], env: Sequence[str]) -> Any:
    """A container's GPU request, as a canonical ``gpus`` value (from an inspect), or None.

    ``--gpus`` gives DeviceRequests; the legacy ``--runtime=nvidia`` gives NVIDIA_VISIBLE_DEVICES.
    """
    for request in host_config.get("DeviceRequests") or []:
        capabilities = [c for group in request.get("Capabilities") or [] for c in group]
        if request.get("Driver") == "cdi":
            ids = [d.split("=", 1)[-1] for d in request.get("DeviceIDs") or [] if d.startswith("nvidia.com/gpu=")]
            return ALL if ALL in ids else ids or None
        if "gpu" not in capabilities and request.get("Driver") != "nvidia":
            continue
        if request.get("DeviceIDs"):
            return list(request["DeviceIDs"])
        count = int(request.get("Count") or 0)
        return ALL if count < 0 else count or None
    if host_config.get("Runtime") == "nvidia":
        visible = next((e.split("=", 1)[1] for e in env if e.startswith("NVIDIA_VISIBLE_DEVICES=")), ALL)
        if visible in ("", "void", "none"):
            return None
        return ALL if visible == ALL else [v.strip() for v in visible.split(",") if v.strip()]
    return None
