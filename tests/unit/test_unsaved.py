"""What counts as unsaved work in a container's change list, and how it is summarised. Pure."""

from __future__ import annotations

import pytest

from ngcws.unsaved import (
    IGNORED,
    Change,
    candidates,
    digest,
    format_bytes,
    is_ignored,
    measured,
    summary,
    to_measure,
)

SITE = "/usr/local/lib/python3.10/dist-packages"


def raw(*entries: str) -> list[dict[str, object]]:
    """``"A /path"`` lines, as ``docker diff`` prints them → the changes API's entries."""
    return [{"Kind": "CAD".index(e[0]), "Path": e[2:]} for e in entries]


@pytest.mark.parametrize(
    "path",
    [
        "/tmp/x",
        "/root/.cache/pip/http/a",
        "/home/ada/.cache/torch/hub/x.pt",
        "/opt/app/__pycache__/m.cpython-310.pyc",
        "/opt/app/m.pyc",
        "/root/.bash_history",
        "/usr/sbin/docker-init",
        "/sbin/docker-init",
        "/var/log/apt/history.log",
    ],
)
def test_noise_is_ignored(path: str) -> None:
    assert is_ignored(path, IGNORED)


@pytest.mark.parametrize("path", ["/root/ckpt.pt", f"{SITE}/torch/__init__.py", "/opt/tmp/x", "/etc/bash.bashrc"])
def test_work_is_not_ignored(path: str) -> None:
    assert not is_ignored(path, IGNORED)


def test_own_patterns_by_path_and_by_name() -> None:
    assert is_ignored("/opt/scratch/a/b", ("/opt/scratch",))
    assert is_ignored("/workspace2/run.log", ("*.log",))
    assert not is_ignored("/opt/scratchpad", ("/opt/scratch",))


def test_candidates_keep_leaves_drop_parents_deletions_mounts_and_noise() -> None:
    changes = raw(
        "C /usr", "C /usr/sbin", "A /usr/sbin/docker-init",  # the engine's init
        "C /root", "A /root/ckpt.pt",
        "A /workspace",  # a mount point the engine made
        "A /data", "A /data/inner",  # parents of a mount point
        "D /etc/motd",  # deleting loses nothing: the image has it
        "C /tmp", "A /tmp/x",
    )  # fmt: skip
    found = candidates(changes, IGNORED, ["/workspace", "/data/inner"])
    assert [(c.path, c.kind) for c in found] == [("/root/ckpt.pt", 1)]


def test_measured_drops_empty_folders_and_vanished_paths() -> None:
    found = [Change("/a", 1), Change("/b", 1), Change("/c", 0), Change("/d", 1)]
    stats = {
        "/a": {"size": 5, "mode": 0o644, "mtime": "t"},
        "/b": {"size": 4096, "mode": (1 << 31) | 0o755},
        "/c": None,
    }
    assert measured(found, stats) == [Change("/a", 1, 5, "t"), Change("/d", 1)]  # /d: not measured


def test_summary_counts_packages_and_files_biggest_first() -> None:
    listed = raw(
        "C /usr", "C /usr/local", "C /usr/local/lib", "C /usr/local/lib/python3.10", f"C {SITE}",
        *(f"A {SITE}/pkg{i}" for i in range(14)), *(f"A {SITE}/pkg{i}/__init__.py" for i in range(14)),
        *(f"A {SITE}/pkg{i}-1.0.dist-info" for i in range(14)),
        *(f"A {SITE}/pkg{i}-1.0.dist-info/RECORD" for i in range(14)),
        "C /root", "A /root/ckpt.pt",
        "C /opt", "A /opt/model", "A /opt/model/w", "A /opt/model/w/w.bin", "A /opt/model/config.json",
        "C /etc", "C /etc/bash.bashrc",
    )  # fmt: skip
    sizes = {"__init__.py": 10_000_000, "RECORD": 1000, "ckpt.pt": 3, "w.bin": 2_000_000, "config.json": 100}
    stats = {c.path: {"size": sizes.get(c.path.rsplit("/", 1)[-1], 2100)} for c in candidates(listed, (), ())}
    changes = measured(candidates(listed, (), ()), stats)
    assert summary(changes) == [
        f"{SITE}: 14 new packages, 140 MB",
        "/opt/model: 2 new files, 2.0 MB",
        "/etc/bash.bashrc: changed file, 2.1 kB",
        "/root/ckpt.pt: new file, 3 B",
    ]


def test_summary_is_short_and_says_when_sizes_are_unknown() -> None:
    changes = [Change(f"/opt/f{i}", 1, 1) for i in range(10)] + [Change("/srv/big", 1)]  # /srv/big: over MAX_STATS
    lines = summary(changes, limit=3)
    assert len(lines) == 4 and lines[-1] == "... and 8 more paths"
    assert "/srv/big: new file, size unknown" in summary([Change("/srv/big", 1)])


def test_digest_changes_with_any_file() -> None:
    a = [Change("/root/ckpt.pt", 1, 3, "t1")]
    assert digest(a) == digest(list(a))
    assert digest(a) != digest([Change("/root/ckpt.pt", 1, 3, "t2")])
    assert digest(a) != digest([*a, Change("/root/b", 1, 3, "t1")])


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (3, 4200, 310_000_000, 2 * 10**12)] == ["3 B", "4.2 kB", "310 MB", "2.0 TB"]


def test_every_group_gets_measured_before_any_gets_more() -> None:
    many = [Change(f"/opt/x/f{i:04}", 1, group="/opt/x") for i in range(1000)]
    packages = [Change(f"{SITE}/p{i}-1.0.dist-info/RECORD", 1, group=SITE) for i in range(20)]
    chosen = to_measure([*many, *packages, Change("/root/ckpt.pt", 1, group="/root/ckpt.pt")], limit=30)
    assert len(chosen) == 30 and "/root/ckpt.pt" in chosen
    assert sum(p.startswith(SITE) for p in chosen) == 14 and sum(p.startswith("/opt/x") for p in chosen) == 15
