"""`ngcws init --from-docker-run` round trip on the real engine: the container `ngcws up` makes from
the translated file differs from a plain one exactly as `docker create` of the original command
differs from a plain `docker create` (Config/HostConfig, labels and ids aside; bind mounts compared
as the engine reports them, since `-v` lands in Binds and ngcws sends Mounts; Env as what was added,
NVIDIA_VISIBLE_DEVICES aside: ngcws's `gpus: none` (no --gpus) sets it to void, which an NGC image's
`all` comes back from once the file asks for GPUs; the GPUs themselves are compared as DeviceRequests)."""

from __future__ import annotations

import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from ngcws.engine import Engine
from tests.conftest import Workspace, docker_cli_available

pytestmark = pytest.mark.skipif(not docker_cli_available(), reason="needs the docker CLI as the oracle")

LABEL = f"ngcws.test={uuid.uuid4().hex}"
KEEP = "sleep 3600"
_VISIBLE = "NVIDIA_VISIBLE_DEVICES="

#: Representative pasted lines (IMAGE stands for the test image). Each command ends in `sleep`, so
#: both sides run the same Cmd.
COMMANDS = [
    "docker run -it --rm --ipc=host --ulimit nofile=1024:2048 --ulimit stack=67108864 -v $PWD:/workspace -w /workspace IMAGE",
    "docker run -d --init --shm-size=1g -e WANDB_MODE=offline -e A=b -u 1000:1000 -p 18765:8888 --name trainer IMAGE",
    "docker run --network=host --device=/dev/null --cap-add=IPC_LOCK --security-opt seccomp=unconfined \\\n"
    "  --entrypoint /bin/sh --cpus 1.5 -m 512m --tmpfs /scratch:size=64m --sysctl kernel.msgmax=65536 -l team=ml IMAGE -c",
    "docker run --read-only --stop-signal SIGINT --stop-timeout 30 --pids-limit 100 --add-host db:10.0.0.5 "
    "--mount type=bind,source=$PWD,target=/data,readonly --restart unless-stopped --health-cmd true IMAGE",
]


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def _differences(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in ("Config", "HostConfig"):
        for key in sorted(set(base[section]) | set(other[section])):
            before, after = base[section].get(key), other[section].get(key)
            if before == after or key in ("Labels", "Binds", "Mounts"):
                continue
            if key == "Hostname" and re.fullmatch(r"[0-9a-f]{12}", str(after)):
                continue
            if key == "Env":  # what was added; NVIDIA_VISIBLE_DEVICES aside (see the module's doc)
                after = sorted(e for e in set(after or []) - set(before or []) if not e.startswith(_VISIBLE))
                if not after:
                    continue
            out[f"{section}.{key}"] = after
    out["Mounts"] = sorted((m.get("Source"), m["Destination"], m["RW"]) for m in other.get("Mounts") or [])
    return out


@pytest.fixture(scope="module")
def cleanup() -> Iterator[None]:
    yield
    for container in _docker("ps", "-aq", "--filter", f"label={LABEL}").split():
        _docker("rm", "-f", container)


def _ngcws_container(project: Workspace, args: list[str]) -> dict[str, Any]:
    project.ok("init", "--from-docker-run", shlex.join(args))
    text = (project.dir / "ngcws.yaml").read_text()
    (project.dir / "ngcws.yaml").write_text(f"name: {project.name}\n{text}")
    up = project.ngcws("up")  # some of these cannot start on the test bed; creating is what is compared
    found_all = project.containers()
    assert len(found_all) == 1, up.stderr.decode()
    (found,) = found_all
    inspected = Engine().inspect_container(str(found["Id"]))
    assert inspected is not None
    Engine().remove(str(found["Id"]), force=True, volumes=True)
    return inspected


@pytest.mark.parametrize("command", COMMANDS, ids=[c.split(" IMAGE")[0][11:50] for c in COMMANDS])
def test_the_translated_file_makes_the_same_container(
    command: str, testbed: dict[str, str], make_project: Any, cleanup: None
) -> None:
    _round_trip(command, testbed["NGCWS_TB_TINY"], make_project)


@pytest.mark.gpu_sim
@pytest.mark.parametrize(
    "command",
    [
        """docker run --gpus '"device=0,1"' --ipc=host -it --rm IMAGE""",
        "docker run --gpus all,capabilities=utility IMAGE",
        "docker run --gpus 1 --shm-size=1g IMAGE",
    ],
)
def test_gpus_round_trip(
    command: str, testbed: dict[str, str], gpu_sim: None, make_project: Any, cleanup: None
) -> None:
    _round_trip(command, testbed["NGCWS_TB_NGC"], make_project)


def _round_trip(command: str, image: str, make_project: Any) -> None:
    base, project = make_project(f"t{uuid.uuid4().hex[:10]}"), make_project(f"t{uuid.uuid4().hex[:10]}")
    line = command.replace("$PWD", str(project.dir)).replace("IMAGE", image) + f" {KEEP}"
    words = shlex.split(line.replace("\\\n", " "))
    options, rest = words[2 : words.index(image)], words[words.index(image) :]
    plain_args = ["docker", "run", *rest]
    if "--entrypoint" in options:
        plain_args = ["docker", "run", "--entrypoint", "/bin/sh", *rest]  # the plain side keeps the entrypoint

    plain = Engine().inspect_container(_docker("create", "--label", LABEL, *plain_args[2:]))
    created = Engine().inspect_container(
        _docker("create", "--label", LABEL, *[w for w in options if w not in ("-it", "-d", "--rm")], *rest)
    )
    assert plain is not None and created is not None
    by_docker = _differences(plain, created)
    by_ngcws = _differences(_ngcws_container(base, plain_args), _ngcws_container(project, words))
    assert len(by_docker) > 1, "the command changed nothing: the case proves nothing"
    assert by_ngcws == by_docker
