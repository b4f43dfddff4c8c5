"""The call counter of benchmarks/run (benchmarks/enginecalls.py), in front of the real engine.

The counts it prints are a result of the benchmarks ("a no-op up makes a constant number of
calls"), so they are checked here: every request is seen once, bodies and hijacked streams pass
through unchanged, and a command behind it behaves as without it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from enginecalls import EngineCallCounter, shape


def test_shape_groups_calls_of_a_kind() -> None:
    assert shape("/v1.41/containers/abc123/start?x=1") == "/containers/{}/start"
    assert shape("/v1.41/containers/json?all=1&filters=%7B%7D") == "/containers/json"
    assert shape("/v1.41/containers/create?name=p-w") == "/containers/create"
    assert shape("/exec/0f3e/json") == "/exec/{}/json"
    assert shape("/images/localhost:5000/nvidia/python:23.08-py3/json") == "/images/{}/json"
    assert shape("/_ping") == "/_ping"


@pytest.fixture
def counter() -> Iterator[EngineCallCounter]:
    with EngineCallCounter() as found:
        yield found


def test_counts_every_call_and_passes_streams_through(
    project: Workspace, testbed: dict[str, str], counter: EngineCallCounter
) -> None:
    env = {"DOCKER_HOST": counter.docker_host}
    project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n")
    result = project.ngcws("up", env=env)
    assert result.returncode == 0, result.stderr
    calls, connections = counter.take()
    assert "POST /containers/create" in calls and "POST /containers/{}/start" in calls
    assert calls.count("GET /containers/json") >= 1 and connections >= 1
    # A hijacked exec stream: stdin in (then half-closed), stdout back, the exit code asked after.
    result = project.ngcws("exec", "-T", "sh", "-c", "cat; exit 3", input=b"through the proxy\n", env=env)
    assert result.returncode == 3 and result.stdout == b"through the proxy\n", result.stderr
    calls, _ = counter.take()
    assert calls[-3:] == ["POST /containers/{}/exec", "POST /exec/{}/start", "GET /exec/{}/json"]
    assert counter.take() == ([], 0)  # take() empties
