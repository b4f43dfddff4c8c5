"""Which GPUs a request holds and who shares them (Docker does no GPU scheduling)."""

from __future__ import annotations

from typing import Any

import pytest

from ngcws import gpuset
from ngcws.gpuset import Holder

UUID = "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [("all", "all GPUs"), (2, "GPUs 0, 1"), (["3"], "GPU 3"), (["10", "2"], "GPUs 2, 10"), ("none", "no GPU")],
)
def test_describe(gpus: Any, expected: str) -> None:
    assert gpuset.describe(gpus) == expected


def test_a_count_means_the_first_gpus() -> None:
    note = gpuset.count_note(2)
    assert note is not None and "GPUs 0, 1" in note and "does not pick free GPUs" in note
    assert gpuset.count_note("all") is None and gpuset.count_note(["0"]) is None


@pytest.mark.parametrize(
    ("mine", "theirs", "shared"),
    [
        ("all", "all", True),
        ("all", ["3"], True),
        (2, ["1"], True),
        (2, ["2", "3"], False),
        (["0"], [UUID], True),  # the same GPU, by index and by UUID (the host maps one to the other)
        (["1"], [UUID], False),
        ("none", "all", False),
    ],
)
def test_sharing_between_two(mine: Any, theirs: Any, shared: bool) -> None:
    found = gpuset.sharing(
        [Holder("workspace 'a'", mine), Holder("container other", theirs)], None, {UUID.lower(): "0"}
    )
    assert bool(found) is shared
    if shared:
        [line] = found
        assert line.endswith(f"workspace 'a' ({gpuset.describe(mine)}), container other ({gpuset.describe(theirs)})")


def test_sharing_is_one_line_per_shared_gpu_set_naming_every_holder() -> None:
    eight = [Holder(f"workspace 'w{n}'", "all") for n in range(8)]
    [line] = gpuset.sharing(eight)  # not 8 * 7 / 2 pairs, nor each pair twice
    assert line.startswith("all GPUs are shared by 8: workspace 'w0' (all GPUs), workspace 'w1'"), line
    mixed = [
        Holder("a", ["0", "1"]),
        Holder("b", ["1", "2"]),
        Holder("c", "all"),
        Holder("d", "all"),
        Holder("e", ["5"]),
    ]
    assert gpuset.sharing(mixed) == [
        "GPU 0 is shared by 3: a (GPUs 0, 1), c (all GPUs), d (all GPUs)",
        "GPU 1 is shared by 4: a (GPUs 0, 1), b (GPUs 1, 2), c (all GPUs), d (all GPUs)",
        "GPU 2 is shared by 3: b (GPUs 1, 2), c (all GPUs), d (all GPUs)",
        "GPU 5 is shared by 3: c (all GPUs), d (all GPUs), e (GPU 5)",
        "all other GPUs are shared by 2: c (all GPUs), d (all GPUs)",
    ]
    same = [Holder("a", ["0", "1"]), Holder("b", 2), Holder("c", ["3"])]
    assert gpuset.sharing(same) == ["GPUs 0, 1 are shared by 2: a (GPUs 0, 1), b (GPUs 0, 1)"]
    assert gpuset.sharing(same, concerning=["c"]) == []  # only lines about the workspaces asked about
    assert gpuset.sharing(same, concerning=["b"]) == gpuset.sharing(same)


@pytest.mark.parametrize(
    ("host_config", "env", "gpus"),
    [
        ({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]}, [], "all"),
        ({"DeviceRequests": [{"Driver": "", "Count": 2, "Capabilities": [["gpu"]]}]}, [], 2),
        (
            {"DeviceRequests": [{"Driver": "", "DeviceIDs": ["1", "2"], "Capabilities": [["gpu", "utility"]]}]},
            [],
            ["1", "2"],
        ),
        ({"DeviceRequests": [{"Driver": "cdi", "DeviceIDs": ["nvidia.com/gpu=0"]}]}, [], ["0"]),
        ({"Runtime": "nvidia"}, ["NVIDIA_VISIBLE_DEVICES=0,2"], ["0", "2"]),
        ({"Runtime": "nvidia"}, [], "all"),
        ({"Runtime": "nvidia"}, ["NVIDIA_VISIBLE_DEVICES=void"], None),
        ({"DeviceRequests": None}, ["NVIDIA_VISIBLE_DEVICES=all"], None),  # plain runc: just a variable
    ],
)
def test_gpus_of_other_containers(host_config: dict[str, Any], env: list[str], gpus: Any) -> None:
    assert gpuset.gpus_of_container(host_config, env) == gpus
