"""Host port conflicts are refused before anything is stopped (preflight), shown by plan and doctor."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

from tests.conftest import Workspace


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def spec(image: str, *ports: str, name: str = "train") -> str:
    listed = ", ".join(f'"{p}"' for p in ports)
    return f"  {name}:\n    image: {image}\n    gpus: none\n    command: [sleep, infinity]\n    ports: [{listed}]\n"


def test_a_port_held_by_another_container_is_refused_before_the_old_one_is_stopped(
    make_project: Callable[[str], Workspace], testbed: dict[str, str]
) -> None:
    image = testbed["NGCWS_TB_TINY"]
    held, mine = free_port(), free_port()
    holder = make_project(f"tph{held}")
    holder.write("workspaces:\n" + spec(image, f"{held}:80", name="web"))
    holder.ok("up")
    [holding] = holder.containers()
    project = make_project(f"tpm{mine}")
    project.write("workspaces:\n" + spec(image, f"{mine}:8888"))
    project.ok("up")
    [before] = project.containers()

    project.write("workspaces:\n" + spec(image, f"{held}:8888"))
    planned = project.ngcws("plan", "--format", "json")
    assert planned.returncode == 1, planned.stderr.decode()
    [error] = json.loads(planned.stdout)["errors"]
    holder_name = str(holding["Names"][0]).lstrip("/")  # type: ignore[index]
    assert f"host port {held}/tcp ({held}:8888) is already published by container {holder_name}" in error, error

    result = project.ngcws("up")
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert holder_name in err and "Nothing was changed" in err, err
    [after] = project.containers()  # the old container, untouched and running
    assert (after["Id"], after["State"]) == (before["Id"], "running")

    # Its own port is no conflict: recreating with the same host port (another change) is fine.
    project.write("workspaces:\n" + spec(image, f"{mine}:8888").replace("gpus: none", "gpus: none\n    env: {A: b}"))
    project.ok("up")


def test_a_host_port_published_twice_in_the_file_is_refused_by_plan_and_up(
    project: Workspace, testbed: dict[str, str]
) -> None:
    image = testbed["NGCWS_TB_TINY"]
    port = free_port()
    project.write("workspaces:\n" + spec(image, f"{port}:80", name="a") + spec(image, f"{port}:8888", name="b"))
    planned = project.ngcws("plan", "--check")
    out = planned.stdout.decode()
    assert planned.returncode == 1, out + planned.stderr.decode()
    assert out.count(f"host port {port}/tcp is published twice in the file") == 1, out
    assert f"'a' ({port}:80)" in out and f"'b' ({port}:8888)" in out, out

    result = project.ngcws("up")
    assert result.returncode == 1 and b"published twice in the file" in result.stderr, result.stderr
    assert project.containers() == []  # refused before anything was created

    doctor = project.ngcws("doctor", "--format", "json")
    ports = [c for c in json.loads(doctor.stdout)["checks"] if c["name"] == "port"]
    [check] = ports  # said once, not from each side
    assert check["verdict"] == "fail" and "published twice in the file" in check["summary"], ports
