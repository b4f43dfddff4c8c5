"""Small value languages: sizes, GPU ids, images, ports, env files, interpolation."""

from __future__ import annotations

import pytest

from ngcws.interpolate import InterpolationError, interpolate, parse_env_file
from ngcws.values import format_size, parse_gpus, parse_port, parse_size


@pytest.mark.parametrize(
    ("text", "size"),
    [("64m", 64 * 2**20), ("16g", 16 * 2**30), ("1.5g", 3 * 2**29), ("512", 512), (1024, 1024), ("2GB", 2 * 2**30)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["16x", "-1", True, "g", -5])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format_size_round_trips() -> None:
    assert [format_size(s) for s in (16 * 2**30, 64 * 2**20, 1000)] == ["16g", "64m", "1000"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", "all"),
        ("none", "none"),
        (2, 2),
        ("2", 2),
        ([0, 1], ["0", "1"]),
        ("device=1,2", ["1", "2"]),
        ("1,2", ["1", "2"]),
        (["MIG-GPU-b8ea3855-276c-c9cb-b366-c6fa655957c5/1/0"], ["MIG-GPU-b8ea3855-276c-c9cb-b366-c6fa655957c5/1/0"]),
        ({"count": 2}, 2),
        ({"device_ids": [3]}, ["3"]),
    ],
)
def test_gpus(value: object, expected: object) -> None:
    assert parse_gpus(value) == expected


@pytest.mark.parametrize(
    "bad",
    ["al", -1, 0, "0", {"count": 0}, [], [0, 0], ["GPU-fef8089b"], [0, "all"], True, {"count": 1, "device_ids": [0]}],
)
def test_bad_gpus(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_gpus(bad)


@pytest.mark.parametrize(
    ("copied", "right"),
    [
        ('"device=0,1"', "write gpus: [0, 1]"),
        ("'\"device=0,1\"'", "write gpus: [0, 1]"),
        ("all,capabilities=utility", "write gpus: all and capabilities: [utility]"),
        ('all,"capabilities=compute,utility"', "write gpus: all and capabilities: [compute, utility]"),
        ('"device=2,3","capabilities=compute,utility"', "write gpus: [2, 3] and capabilities: [compute, utility]"),
        ("2,capabilities=video", "write gpus: 2 and capabilities: [video]"),
    ],
)
def test_gpus_copied_from_docker_run_get_the_right_spelling(copied: str, right: str) -> None:
    """NVIDIA's guide writes --gpus '"device=0,1"' and --gpus all,capabilities=utility."""
    with pytest.raises(ValueError, match="docker's --gpus spelling") as caught:
        parse_gpus(copied)
    assert right in str(caught.value)


def test_ports() -> None:
    assert parse_port("127.0.0.1:8888:8889/udp") == {
        "host_ip": "127.0.0.1",
        "host_port": 8888,
        "container_port": 8889,
        "protocol": "udp",
    }
    with pytest.raises(ValueError):
        parse_port("99999:1")


def test_interpolation_forms() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("$A ${A} ${EMPTY:-d} ${EMPTY-d} ${UNSET-x} $$A", env) == "a a d  x $A"
    with pytest.raises(InterpolationError, match="not set"):
        interpolate("${UNSET}", env)
    with pytest.raises(InterpolationError, match="is required: give it"):
        interpolate("${UNSET:?give it}", env)


def test_env_file() -> None:
    assert parse_env_file('# c\nexport A=1\nB="two words"\nC=x # note\n\n') == {"A": "1", "B": "two words", "C": "x"}
    with pytest.raises(ValueError, match="line 1"):
        parse_env_file("not an assignment\n")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("SIGINT", "SIGINT"), ("INT", "SIGINT"), ("sigint", "SIGINT"), (2, "SIGINT"), ("15", "SIGTERM"),
     ("SIGRTMIN+3", "SIGRTMIN+3"), ("rtmin+3", "SIGRTMIN+3"), ("40", "40"), ("USR1", "SIGUSR1")],
)  # fmt: skip
def test_a_signal_has_one_spelling(written: object, canonical: str) -> None:
    from ngcws.values import parse_signal

    assert parse_signal(written) == canonical
