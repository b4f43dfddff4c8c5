"""Host port conflicts, as a table: the file against itself and against running containers. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from ngcws.ports import port_checks
from tests.unit.test_plan import want


def ws(name: str, *ports: str) -> Any:
    return want(name, ports=list(ports))


def running(cid: str, public: int, ip: str = "0.0.0.0", proto: str = "tcp", **labels: str) -> dict[str, Any]:
    return {
        "Id": cid,
        "Names": [f"/{cid}"],
        "Labels": labels,
        "Ports": [{"IP": ip, "PrivatePort": 80, "PublicPort": public, "Type": proto}],
    }


@pytest.mark.parametrize(
    ("mine", "others", "engine", "replacing", "said"),
    [
        (
            ["18889:8888"],
            [],
            [running("web", 18889)],
            {},
            ["host port 18889/tcp (18889:8888) is already published by container web"],
        ),
        (["18889:8888"], [], [running("old", 18889)], {"a": ["old"]}, []),  # the container being replaced
        (["18889:8888/udp"], [], [running("web", 18889)], {}, []),  # another protocol
        (["127.0.0.1:18889:8888"], [], [running("web", 18889, "127.0.0.2")], {}, []),  # another host IP
        (["127.0.0.1:18889:8888"], [], [running("web", 18889, "::")], {}, ["already published by container web"]),
        (["8888"], [], [running("web", 8888)], {}, []),  # the engine picks the host port
        (
            ["18889:8888"],
            [],
            [running("web", 18889, **{"ngcws.workspace": "w", "ngcws.project": "p"})],
            {},
            ["by container web (workspace 'w' of project 'p')"],
        ),
        (
            ["18889:8888"],
            ["18889:80"],
            [],
            {},
            ["host port 18889/tcp is published twice in the file: by 'a' (18889:8888) and 'b' (18889:80)"],
        ),
        (["18889:8888", "18889:9999"], [], [], {}, ["by 'a' (18889:8888) and 'a' (18889:9999)"]),
    ],
)
def test_port_conflicts(mine: list[str], others: list[str], engine: list[Any], replacing: Any, said: list[str]) -> None:
    a = ws("a", *mine)
    every = [a, *([ws("b", *others)] if others else [])]
    checks = port_checks([a], every, engine, replacing)
    assert len(checks) == len(said), checks
    for check, words in zip(checks, said, strict=True):
        assert check.verdict == "fail" and words in check.summary, check


def test_a_pair_in_the_file_is_said_once() -> None:
    a, b = ws("a", "18889:8888"), ws("b", "18889:80")
    assert len(port_checks([a, b], [a, b], [], {})) == 1
