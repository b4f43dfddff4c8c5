"""No lost work: the guard holds back a recreate or removal that would destroy unsaved changes.

Against the real engine: the changes API, path stats and commit. Work is made with ``ngcws exec``
as a user would (pip-installed packages are written as files: the test images have no pip).
"""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ngcws import labels as L
from ngcws.engine import Engine
from tests.conftest import NGCWS, Workspace, read_terminal

SITE = "/usr/local/lib/python3.11/dist-packages"


def yaml(testbed: dict[str, str], extra: str = "", image: str | None = None) -> str:
    return (
        f"workspaces:\n  train:\n    image: {image or testbed['NGCWS_TB_NGC']}\n    gpus: none\n"
        f"    mounts: ['.:/workspace']\n    working_dir: /workspace\n{extra}"
    )


def one(project: Workspace) -> dict[str, Any]:
    [found] = project.containers()
    return found


def inside(project: Workspace, script: str) -> None:
    project.ok("exec", "sh", "-c", script)


@pytest.fixture
def snapshots(project: Workspace) -> Iterator[None]:
    """Remove the snapshot images this test's project made."""
    yield
    engine = Engine()
    for image in engine.list_images({L.SNAPSHOT_OF: ""}):
        if any(project.name in tag for tag in image.get("RepoTags") or []):
            engine.transport.request("DELETE", f"/images/{image['Id']}", params={"force": True}).read()


def work_then_edit(project: Workspace, testbed: dict[str, str], script: str) -> str:
    """Up, do ``script`` inside, then change the file so that `up` would recreate; the container id."""
    project.write(yaml(testbed))
    project.ok("up")
    inside(project, script)
    project.write(yaml(testbed, "    shm_size: 128m\n"))
    return str(one(project)["Id"])


def test_recreate_with_unsaved_work_is_refused_without_a_terminal(project: Workspace, testbed: dict[str, str]) -> None:
    before = work_then_edit(project, testbed, "echo weights > /root/ckpt.pt; echo hi > /workspace/kept-anyway.txt")
    plan = project.ok("plan")  # plan says so beforehand
    assert "recreate   train: shm_size" in plan and "held back: train:" in plan and "/root/ckpt.pt" in plan
    result = project.ngcws("up")
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "/root/ckpt.pt: new file, 8 B" in err and "kept-anyway" not in err  # the mount is not at risk
    assert "ngcws snapshot train" in err and "ngcws up --force-recreate" in err
    assert one(project)["Id"] == before and one(project)["State"] == "running"
    # --force-recreate goes ahead, as the message says.
    project.ok("up", "--force-recreate")
    assert one(project)["Id"] != before
    assert project.ngcws("exec", "test", "-e", "/root/ckpt.pt").returncode == 1


def test_noise_never_holds_back(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(yaml(testbed, "    ignore_changes: [/opt/scratch, '*.log']\n"))
    project.ok("up")
    inside(
        project,
        "mkdir -p /root/.cache/pip/http /opt/scratch/a /opt/app/__pycache__ /srv; echo x > /tmp/t; "
        "echo x > /root/.cache/pip/http/blob; echo x > /opt/scratch/a/b; echo x > /opt/app/__pycache__/m.pyc; "
        "echo x > /srv/run.log; echo ls >> /root/.bash_history; mkdir -p /srv/empty",
    )
    assert "no unsaved work" in project.ngcws("diff").stderr.decode()
    project.write(yaml(testbed, "    ignore_changes: [/opt/scratch, '*.log']\n    shm_size: 128m\n"))
    result = project.ngcws("up")
    assert result.returncode == 0 and b"recreate" in result.stderr, result.stderr


def test_ignore_changes_takes_effect_without_a_recreate(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(yaml(testbed))
    project.ok("up")
    inside(project, "mkdir -p /opt/scratch && echo x > /opt/scratch/big")
    assert project.ngcws("down").returncode == 1
    project.write(yaml(testbed, "    ignore_changes: [/opt/scratch]\n"))  # not part of the spec
    assert "nothing to do" in project.ok("plan")
    project.ok("down")
    assert project.containers() == []


def test_diff_summarises_packages_and_lists_paths(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(yaml(testbed))
    project.ok("up")
    inside(
        project,
        f"for p in alpha beta; do mkdir -p {SITE}/$p {SITE}/$p-1.0.dist-info; "
        f"head -c 150000 /dev/zero > {SITE}/$p/__init__.py; echo x > {SITE}/$p-1.0.dist-info/RECORD; done",
    )
    result = project.ngcws("diff", "train")
    assert result.returncode == 0
    assert f"A {SITE}/alpha/__init__.py" in result.stdout.decode()
    assert f"{SITE}: 2 new packages, 300 kB" in result.stderr.decode(), result.stderr
    assert "A /usr/sbin/docker-init" in project.ok("diff", "--all")  # the noise, on request


def test_snapshot_keeps_the_work_and_unblocks(project: Workspace, testbed: dict[str, str], snapshots: None) -> None:
    project.write(yaml(testbed))
    project.ok("up")
    before = one(project)["Id"]
    inside(project, "echo weights > /root/ckpt.pt")
    assert project.ngcws("down").returncode == 1
    result = project.ngcws("snapshot", "--tag", "t1")
    assert result.returncode == 0, result.stderr
    line = result.stdout.decode().strip()
    assert line == f"image: ngcws-snapshot/{project.name}-train:t1"
    # The saved state no longer holds anything back: the file now names the snapshot.
    project.write(yaml(testbed, image=line.split(": ", 1)[1]))
    up = project.ngcws("up")
    assert up.returncode == 0 and b"recreate" in up.stderr, up.stderr
    assert one(project)["Id"] != before
    assert project.ok("exec", "cat", "/root/ckpt.pt") == "weights\n"
    # The image never makes a container ngcws would take for its own.
    image = Engine().inspect_image(line.split(": ", 1)[1])
    assert image is not None and image["Config"]["Labels"][L.PROJECT] == ""
    # Work done after the snapshot holds back again.
    inside(project, "echo more >> /root/ckpt.pt")
    assert project.ngcws("down").returncode == 1
    project.ok("down", "--force")
    assert project.containers() == []


def test_snapshot_and_diff_never_touch_a_same_named_project_elsewhere(
    make_project: Callable[[str], Workspace], testbed: dict[str, str]
) -> None:
    name = f"t{os.urandom(5).hex()}"
    first, second = make_project(name), make_project(name)
    first.write(yaml(testbed))
    second.write(yaml(testbed))
    first.ok("up")
    inside(first, "echo weights > /root/ckpt.pt")
    for command in (["snapshot"], ["diff"]):
        result = second.ngcws(*command)
        assert result.returncode == 2 and b"has no container" in result.stderr, result.stderr
    assert Engine().list_images({L.SNAPSHOT_OF: str(one(first)["Id"])}) == []
    assert second.ngcws("down").returncode == 0
    assert one(first)["State"] == "running"


def _ask(args: list[str], cwd: Any, answer: bytes) -> tuple[int, str]:
    """Run ngcws on a terminal; answer its question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    asked = {"done": False}

    def respond(output: bytes) -> bytes | None:
        if asked["done"] or not output.rstrip().endswith(b"[y/N]"):
            return None
        asked["done"] = True
        return answer

    output = read_terminal(master, 60, respond)
    os.close(master)
    return proc.wait(timeout=60), output.decode(errors="replace")


def test_on_a_terminal_up_asks(project: Workspace, testbed: dict[str, str]) -> None:
    before = work_then_edit(project, testbed, "echo weights > /root/ckpt.pt")
    status, output = _ask([*NGCWS, "up"], project.dir, b"n\n")
    assert status == 1 and "/root/ckpt.pt" in output and "recreate anyway and lose this work? [y/N]" in output
    assert one(project)["Id"] == before
    status, output = _ask([*NGCWS, "up"], project.dir, b"y\n")
    assert status == 0, output
    assert one(project)["Id"] != before


def test_snapshot_keeps_the_image_config_not_the_workspace_env(
    project: Workspace, testbed: dict[str, str], snapshots: None
) -> None:
    """Only the filesystem changes go into a snapshot: no secret, no env ngcws injected (gpus: none's
    NVIDIA_VISIBLE_DEVICES=void), no working_dir; the base image's Env/Cmd/Entrypoint/WorkingDir/User."""
    project.write(yaml(testbed, "    env: {HF_TOKEN: hf_planted_secret, WANDB_MODE: offline}\n"))
    project.ok("up")
    inside(project, "echo weights > /root/ckpt.pt")
    assert "hf_planted_secret" in project.ok("exec", "env")
    reference = project.ok("snapshot", "--tag", "cfg").strip().split(": ", 1)[1]
    engine = Engine()
    image, base = engine.inspect_image(reference), engine.inspect_image(testbed["NGCWS_TB_NGC"])
    assert image is not None and base is not None
    assert "hf_planted_secret" not in str(image)
    for key in ("Env", "Cmd", "Entrypoint", "WorkingDir", "User"):
        assert image["Config"][key] == base["Config"][key], key
    assert not any(e.startswith(("HF_TOKEN=", "WANDB_MODE=")) for e in image["Config"]["Env"] or [])
    assert "NVIDIA_VISIBLE_DEVICES=void" not in (image["Config"]["Env"] or [])
    assert image["Config"]["Labels"][L.PROJECT] == "" and image["Config"]["Labels"][L.SNAPSHOT_OF] == one(project)["Id"]
    # The work is in it, and nothing of the commit's intermediate image is left behind.
    made = subprocess.run(["docker", "run", "--rm", reference, "cat", "/root/ckpt.pt"], capture_output=True)
    assert made.stdout.endswith(b"\nweights\n"), made.stderr
    assert engine.list_images({L.PROJECT: project.name}) == []  # the untagged commit is gone


def three(testbed: dict[str, str], *, a_extra: str = "", with_b: bool = True) -> str:
    body = "workspaces:\n"
    for name in ("a", "b", "c") if with_b else ("a", "c"):
        body += f"  {name}:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    command: [sleep, '3600']\n"
        body += a_extra if name == "a" else ""
    return body


def ids(project: Workspace) -> dict[str, str]:
    return {str(c["Labels"][L.WORKSPACE]): str(c["Id"]) for c in project.containers()}  # type: ignore[index]


def test_following_a_hold_hint_never_destroys_work_it_did_not_name(project: Workspace, testbed: dict[str, str]) -> None:
    """a and b hold unsaved work; only a's entry changed; c is stopped. `up` holds back a alone,
    still starts c, and its hint names a only; following it never touches b; --force-recreate
    without names still guards b (recreated only because of the flag); an orphan's hint names it."""
    project.write(three(testbed))
    project.ok("up")
    for name in ("a", "b"):
        project.ok("exec", "-w", "/", "--workspace", name, "sh", "-c", "echo weights > /ckpt.pt")
    project.ok("stop", "c")
    before = ids(project)
    project.write(three(testbed, a_extra="    shm_size: 128m\n"))
    result = project.ngcws("up")
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert "`ngcws up --force-recreate a`" in err and "\nb: " not in err, err
    assert ids(project) == before
    states = {str(c["Labels"][L.WORKSPACE]): c["State"] for c in project.containers()}  # type: ignore[index]
    assert states["c"] == "running"  # what was safe was done
    # Following the hint recreates a, and nothing else.
    project.ok("up", "--force-recreate", "a")
    after = ids(project)
    assert after["a"] != before["a"] and after["b"] == before["b"] and after["c"] == before["c"]
    # --force-recreate without names: c (no work) is recreated, b is still guarded and named.
    result = project.ngcws("up", "--force-recreate")
    err = result.stderr.decode()
    assert result.returncode == 1 and "`ngcws up --force-recreate b`" in err, err
    again = ids(project)
    assert again["b"] == before["b"] and again["c"] != after["c"]
    # An orphan with work: its hint names it, and following it removes it alone.
    project.ok("exec", "-w", "/", "--workspace", "a", "sh", "-c", "echo more > /ckpt.pt")
    project.write(three(testbed, a_extra="    shm_size: 128m\n", with_b=False))
    result = project.ngcws("up", "--remove-orphans")
    err = result.stderr.decode()
    assert result.returncode == 1 and "`ngcws up --remove-orphans --force-recreate b`" in err, err
    project.ok("up", "--remove-orphans", "--force-recreate", "b")
    assert set(ids(project)) == {"a", "c"} and ids(project)["a"] == again["a"]
