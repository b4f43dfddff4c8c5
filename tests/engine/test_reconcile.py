"""`up`, `plan`, `down`, `ps`, `pull`, `stop`/`start`/`restart` against the real engine and registry."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ngcws.engine import Engine
from tests.conftest import BUILT_LABEL, NGCWS, Workspace, memlock_is_allowed, read_terminal


def one(project: Workspace) -> dict[str, Any]:
    found = project.containers()
    assert len(found) == 1, found
    return found[0]


def ngc(testbed: dict[str, str], extra: str = "", image: str | None = None) -> str:
    return f"workspaces:\n  train:\n    image: {image or testbed['NGCWS_TB_NGC']}\n    gpus: none\n{extra}"


def events_since(project: Workspace, since: float) -> list[dict[str, Any]]:
    """Every engine event about the project's containers since ``since`` (create, start, kill...)."""
    params = {
        "since": f"{since:.3f}",
        "until": f"{time.time():.3f}",
        "filters": {"label": [f"ngcws.project={project.name}"]},
    }
    return list(Engine().transport.request("GET", "/events", params=params).lines())


def test_up_creates_and_starts_with_labels(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed, "    shm_size: 128m\n    env: {WANDB_MODE: offline}\n"))
    result = project.ngcws("up")
    assert result.returncode == 0, result.stderr
    assert b"create" in result.stderr and b"start" in result.stderr
    container = one(project)
    assert container["State"] == "running"
    assert container["Names"] == [f"/{project.name}-train"]
    labels = container["Labels"]
    assert labels["ngcws.workspace"] == "train" and labels["ngcws.project-dir"] == str(project.dir)
    assert labels["ngcws.config-file"] == str(project.dir / "ngcws.yaml")
    assert json.loads(labels["ngcws.spec"])["shm_size"] == 128 * 2**20
    inspect = Engine().inspect_container(container["Id"])
    assert inspect is not None and inspect["HostConfig"]["ShmSize"] == 128 * 2**20


def test_second_up_changes_nothing(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed))
    project.ok("up")
    first = one(project)["Id"]
    since = time.time()
    time.sleep(0.01)
    result = project.ngcws("up")
    assert result.returncode == 0 and b"up to date" in result.stderr
    assert one(project)["Id"] == first
    assert events_since(project, since) == []  # no engine writes at all


def test_stopped_container_is_started_again_same_id(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed))
    project.ok("up")
    before = one(project)["Id"]
    Engine().stop(before)
    assert one(project)["State"] == "exited"
    plan = project.ok("plan")
    assert "start" in plan and "is exited" in plan
    project.ok("up")
    after = one(project)
    assert (after["Id"], after["State"]) == (before, "running")


def test_spec_change_recreates_with_a_reason(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed, "    shm_size: 64m\n"))
    project.ok("up")
    old = one(project)["Id"]
    project.write(ngc(testbed, "    shm_size: 128m\n"))
    assert "recreate   train: shm_size 64m → 128m" in project.ok("plan")
    assert project.ngcws("plan", "--check").returncode == 3
    result = project.ngcws("up")
    assert result.returncode == 0 and "shm_size 64m → 128m" in result.stderr.decode()
    new = one(project)
    assert new["Id"] != old and new["Names"] == [f"/{project.name}-train"] and new["State"] == "running"
    assert Engine().inspect_container(old) is None
    assert project.ngcws("plan", "--check").returncode == 0


def test_equivalent_edit_does_not_recreate(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed, "    shm_size: 1g\n    env: {A: '1', B: '2'}\n"))
    project.ok("up")
    first = one(project)["Id"]
    project.write("# a comment\n" + ngc(testbed, "    env: [B=2, A=1]\n    shm_size: 1073741824\n"))
    assert "nothing to do" in project.ok("plan")
    project.ok("up")
    assert one(project)["Id"] == first


def test_failed_create_leaves_the_old_container_running(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed))
    project.ok("up")
    old = one(project)["Id"]
    # The loader accepts it; the engine refuses it at create: the recreate's create really fails.
    project.write(ngc(testbed, "    mounts: [{type: tmpfs, target: /}]\n"))
    result = project.ngcws("up")
    err = result.stderr.decode()
    assert result.returncode == 1 and "recreate" in err, err
    assert "the engine refused to create container" in err and "destination can't be '/'" in err, err
    assert "Traceback" not in err
    assert [(c["Id"], c["State"]) for c in project.containers()] == [(old, "running")]  # no half-made new one


def _push_as(source: str, target: str) -> None:
    engine = Engine()
    repo, _, tag = target.rpartition(":")
    engine.transport.request("POST", f"/images/{source}/tag", params={"repo": repo, "tag": tag}).read()
    response = engine.transport.request(
        "POST", f"/images/{target}/push", headers={"X-Registry-Auth": "e30="}, timeout=None
    )
    assert response.status == 200 and all("error" not in m for m in response.lines())


def test_repushed_tag_recreates_after_pull_always(project: Workspace, testbed: dict[str, str]) -> None:
    image = f"{testbed['NGCWS_TB_REGISTRY']}/{project.name}/moving:latest"
    engine = Engine()
    try:
        _push_as(testbed["NGCWS_TB_TINY"], image)
        engine.transport.request("DELETE", f"/images/{image}").read()
        project.write(ngc(testbed, image=image))
        result = project.ngcws("up")
        assert result.returncode == 0 and b"pull" in result.stderr  # missing locally: pulled
        old = one(project)
        _push_as(testbed["NGCWS_TB_NGC"], image)  # the tag now names another image
        engine.transport.request(
            "POST", f"/images/{testbed['NGCWS_TB_TINY']}/tag", params={"repo": image.rsplit(":", 1)[0], "tag": "latest"}
        ).read()
        assert project.ngcws("up").returncode == 0
        assert one(project)["Id"] == old["Id"]  # pull: missing keeps what is local
        result = project.ngcws("up", "--pull", "always")
        assert result.returncode == 0, result.stderr
        assert b"now resolves to" in result.stderr
        new = one(project)
        assert new["Id"] != old["Id"] and new["ImageID"] != old["ImageID"]
    finally:
        engine.transport.request("DELETE", f"/images/{image}", params={"force": True}).read()
        repository = image.rsplit(":", 1)[0]
        for source in (testbed["NGCWS_TB_TINY"], testbed["NGCWS_TB_NGC"]):  # the pulls' digest references
            for digest in (engine.inspect_image(source) or {}).get("RepoDigests") or []:
                if digest.startswith(repository + "@"):
                    engine.transport.request("DELETE", f"/images/{digest}").read()


def test_orphans_are_warned_then_removed_on_request(project: Workspace, testbed: dict[str, str]) -> None:
    image = testbed["NGCWS_TB_TINY"]
    project.write(f"workspaces:\n  a: {{image: {image}, gpus: none}}\n  b: {{image: {image}, gpus: none}}\n")
    project.ok("up")
    project.write(f"workspaces:\n  a: {{image: {image}, gpus: none}}\n")
    result = project.ngcws("up")
    assert result.returncode == 0 and b"--remove-orphans" in result.stderr
    assert len(project.containers()) == 2
    assert "orphan" in project.ok("ps")
    project.ok("up", "--remove-orphans")
    assert [c["Labels"]["ngcws.workspace"] for c in project.containers()] == ["a"]


def test_foreign_container_with_our_name_is_never_touched(project: Workspace, testbed: dict[str, str]) -> None:
    engine = Engine()
    foreign = engine.create_container(
        f"{project.name}-train", {"Image": testbed["NGCWS_TB_TINY"], "Cmd": ["sleep", "1"]}
    )
    try:
        project.write(ngc(testbed, image=testbed["NGCWS_TB_TINY"]))
        result = project.ngcws("up")
        assert result.returncode == 1
        assert b"not managed by this project" in result.stderr and b"Traceback" not in result.stderr
        still = engine.inspect_container(foreign)
        assert still is not None and still["Name"] == f"/{project.name}-train"
    finally:
        engine.remove(foreign, force=True)


def test_same_project_name_in_another_folder_is_not_adopted(make_project: Any, testbed: dict[str, str]) -> None:
    name = f"same{uuid.uuid4().hex[:8]}"  # unique: other test runs may share the engine
    first, second = make_project(name), make_project(name)
    for p in (first, second):
        p.write(ngc(testbed, image=testbed["NGCWS_TB_TINY"]))
    first.ok("up")
    owner = one(first)["Id"]
    for args in (("up",), ("down",), ("up", "--force-recreate")):
        result = second.ngcws(*args)
        if args == ("down",):
            assert result.returncode == 0 and b"nothing to remove" in result.stderr
        else:
            assert result.returncode == 1 and f"belongs to project '{name}' in".encode() in result.stderr
    assert one(first)["Id"] == owner


def test_two_concurrent_ups_make_one_container(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed))
    procs = [
        subprocess.Popen([*NGCWS, "up"], cwd=project.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(project.containers()) == 1
    assert sum(b"create" in err for _, err in outputs) == 1


def test_down_removes_containers_keeps_host_data_and_volumes(project: Workspace, testbed: dict[str, str]) -> None:
    (project.dir / "data").mkdir()
    (project.dir / "data" / "keep.txt").write_text("precious")
    project.write(ngc(testbed, "    mounts: ['./data:/data', 'cache:/cache']\n"))
    project.ok("up")
    project.ok("exec", "sh", "-c", "echo written > /data/new.txt; echo v > /cache/v")
    stopped = Engine().inspect_container(one(project)["Id"])
    assert stopped is not None
    project.ok("down")
    assert project.containers() == []
    assert (project.dir / "data" / "keep.txt").read_text() == "precious"
    assert (project.dir / "data" / "new.txt").read_text() == "written\n"
    assert [v["Name"] for v in Engine().list_volumes({"ngcws.project": project.name})] == [f"{project.name}_cache"]
    project.ok("up")
    assert project.ok("exec", "cat", "/cache/v") == "v\n"  # the named volume survived down
    project.ok("down", "--volumes")
    assert Engine().list_volumes({"ngcws.project": project.name}) == []


def test_keepalive_exits_on_sigterm_not_after_the_timeout(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed, "    init: false\n"))
    project.ok("up")
    container = one(project)["Id"]
    Engine().stop(container, timeout=30)
    state = Engine().inspect_container(container)
    assert state is not None and state["State"]["ExitCode"] == 0  # trapped TERM; a SIGKILL would be 137


def test_missing_bind_source_is_a_config_error_before_anything(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed, "    mounts: ['./datsets:/data']\n"))
    result = project.ngcws("up")
    assert result.returncode == 2
    assert f"'{project.dir}/datsets' does not exist".encode() in result.stderr
    assert project.containers() == []
    project.write(ngc(testbed, "    mounts: [{source: ./made, target: /data, create_host_path: true}]\n"))
    project.ok("up")
    assert (project.dir / "made").is_dir()


def test_memlock_unlimited_is_explained(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed, "    ulimits: {memlock: -1, stack: 67108864}\n"))
    result = project.ngcws("up")
    if memlock_is_allowed(testbed):
        assert result.returncode == 0, result.stderr  # a host that allows it (a normal GPU server)
        return
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert "memlock: -1" in err and "lower or remove the memlock ulimit" in err
    assert project.containers() == []  # refused by the preflight: no created container left behind


def test_ps_and_lifecycle_commands(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed))
    rows = json.loads(project.ok("ps", "--format", "json"))
    assert [(r["workspace"], r["state"], r["drift"]) for r in rows] == [("train", "missing", "not created")]
    project.ok("up")
    project.ok("stop")
    assert json.loads(project.ok("ps", "--format", "json"))[0]["state"] == "exited"
    project.ok("start")
    first = one(project)
    assert first["State"] == "running"
    project.ok("restart")
    assert one(project)["Id"] == first["Id"]
    project.write(ngc(testbed, "    shm_size: 256m\n"))
    row = json.loads(project.ok("ps", "--format", "json"))[0]
    assert row["state"] == "running" and row["drift"] == "shm_size unset → 256m"
    table = project.ok("ps")
    assert table.splitlines()[0].split()[:4] == ["WORKSPACE", "CONTAINER", "ID", "STATE"]


def test_plan_json(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(ngc(testbed))
    data = json.loads(project.ok("plan", "--format", "json"))
    assert data["changes"] == 2 and [a["action"] for a in data["actions"]] == ["create", "start"]


def test_private_registry_needs_a_login_and_reuses_docker_config(
    project: Workspace, testbed: dict[str, str], tmp_path: Path
) -> None:
    import base64

    image = testbed["NGCWS_TB_TINY"].replace(testbed["NGCWS_TB_REGISTRY"], testbed["NGCWS_TB_AUTH_REGISTRY"])
    project.write(ngc(testbed, image=image) + "    pull: always\n")
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text("{}")
    result = project.ngcws("up", env={"DOCKER_CONFIG": str(config)})
    err = result.stderr.decode()
    assert result.returncode == 1 and "refused" in err and f"docker login {testbed['NGCWS_TB_AUTH_REGISTRY']}" in err
    assert project.containers() == []
    token = base64.b64encode(f"{testbed['NGCWS_TB_AUTH_USER']}:{testbed['NGCWS_TB_AUTH_PASSWORD']}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {testbed["NGCWS_TB_AUTH_REGISTRY"]: {"auth": token}}}))
    result = project.ngcws("up", env={"DOCKER_CONFIG": str(config)})
    assert result.returncode == 0, result.stderr
    assert one(project)["State"] == "running"


def test_unknown_tag_names_the_reference(project: Workspace, testbed: dict[str, str]) -> None:
    image = f"{testbed['NGCWS_TB_REGISTRY']}/nvidia/python:99.99-py3"
    project.write(ngc(testbed, image=image))
    result = project.ngcws("pull")
    assert result.returncode == 1 and f"train: image {image} was not found".encode() in result.stderr
    result = project.ngcws("up")  # the workspace named, and that no container was touched
    assert result.returncode == 1 and f"error: train: image {image} was not found".encode() in result.stderr
    assert b"No container was created or changed." in result.stderr and project.containers() == []


def _build_layered(base: str, tag: str, sizes: tuple[int, int] = (3_000_000, 2_000_000)) -> None:
    """Build an image with two fresh layers of random bytes (classic builder, no network)."""
    import io
    import os
    import tarfile

    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        files = {
            "Dockerfile": f"FROM {base}\nLABEL {BUILT_LABEL}=1\nCOPY a /a\nCOPY b /b\n".encode(),
            "a": os.urandom(sizes[0]),
            "b": os.urandom(sizes[1]),
        }
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    response = Engine().transport.request(
        "POST",
        "/build",
        params={"t": tag, "rm": True},
        data=context.getvalue(),
        headers={"Content-Type": "application/x-tar"},
        timeout=None,
    )
    assert response.status == 200 and all("error" not in m for m in response.lines())


def test_pull_reports_layers_without_a_terminal(project: Workspace, testbed: dict[str, str]) -> None:
    image = f"{testbed['NGCWS_TB_REGISTRY']}/{project.name}/layers:1"
    engine = Engine()
    try:
        _build_layered(testbed["NGCWS_TB_TINY"], image)
        _push_as(image, image)
        engine.transport.request("DELETE", f"/images/{image}", params={"force": True}).read()
        project.write(ngc(testbed, image=image))
        result = project.ngcws("pull")
        assert result.returncode == 0, result.stderr
        err = result.stderr.decode()
        assert err.count("Pull complete") >= 2 and "(3.0 MB)" in err and "(2.0 MB)" in err
    finally:
        engine.transport.request("DELETE", f"/images/{image}", params={"force": True}).read()


@pytest.mark.gpu_sim
@pytest.mark.parametrize(
    ("gpus", "visible", "caps"),
    [
        ("all", "all", None),
        ("2", "0,1", None),
        ("[1, 2]", "1,2", None),
        ("all\n    capabilities: [utility]", "all", "utility"),
        ("all\n    capabilities: [compute, utility]", "all", "compute,utility"),
        ("none", "void", None),
    ],
)
def test_gpu_requests_reach_the_engine_simulated_host(
    project: Workspace, testbed: dict[str, str], gpu_sim: None, gpus: str, visible: str, caps: str | None
) -> None:
    """On the test bed's simulated GPU host (stub NVIDIA hook): proves the request, not a GPU."""
    project.write(f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: {gpus}\n")
    project.ok("up")
    environ = dict(
        line.split("=", 1) for line in project.ok("exec", "cat", "/proc/1/environ").split("\0") if "=" in line
    )
    assert environ.get("NVIDIA_VISIBLE_DEVICES") == visible
    assert environ.get("NVIDIA_DRIVER_CAPABILITIES") == caps


@contextlib.contextmanager
def unpulled_image(project: Workspace, testbed: dict[str, str], name: str, sizes: tuple[int, int]) -> Iterator[str]:
    """An image in the registry with two fresh layers of ``sizes`` random bytes, not on the engine."""
    image = f"{testbed['NGCWS_TB_REGISTRY']}/{project.name}/{name}:1"
    engine = Engine()
    _build_layered(testbed["NGCWS_TB_TINY"], image, sizes)
    _push_as(image, image)
    engine.transport.request("DELETE", f"/images/{image}", params={"force": True}).read()
    try:
        yield image
    finally:
        engine.transport.request("DELETE", f"/images/{image}", params={"force": True}).read()


@pytest.fixture
def unpulled(project: Workspace, testbed: dict[str, str]) -> Iterator[str]:
    """An image in the registry whose layers (200 MB of random bytes) are not on the engine."""
    with unpulled_image(project, testbed, "big", (100_000_000, 100_000_000)) as image:
        yield image


def test_pull_shows_layer_bars_on_a_terminal(project: Workspace, testbed: dict[str, str], unpulled: str) -> None:
    import os
    import pty
    import re

    project.write(ngc(testbed, image=unpulled))
    master, slave = pty.openpty()
    with subprocess.Popen([*NGCWS, "pull"], cwd=project.dir, stdin=slave, stdout=slave, stderr=slave) as proc:
        os.close(slave)
        output = read_terminal(master, 60)
        assert proc.wait(timeout=60) == 0
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output.decode(errors="replace"))
    assert "━" in text and re.search(r"Pull complete\s+━+ 100\.\d/100\.\d MB", text), text[-2000:]


def test_ctrl_c_during_a_pull_leaves_no_container(project: Workspace, testbed: dict[str, str], unpulled: str) -> None:
    import signal

    project.write(ngc(testbed, image=unpulled))
    with subprocess.Popen([*NGCWS, "up"], cwd=project.dir, stderr=subprocess.PIPE) as proc:
        assert proc.stderr is not None
        while b"Downloading" not in (line := proc.stderr.readline()):
            assert line, "the pull ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) == 130, rest
    assert b"Traceback" not in rest
    assert project.containers() == []
    assert project.ngcws("up").returncode == 0  # and the next up completes the job
    assert one(project)["State"] == "running"


def test_recreate_whose_new_container_cannot_start_puts_the_old_one_back(
    project: Workspace, testbed: dict[str, str]
) -> None:
    """These machines cannot raise memlock: the new container fails at start, the old one must survive."""
    if memlock_is_allowed(testbed):
        pytest.skip("this host can raise memlock: the new container would start")
    body = f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n    command: [sleep, infinity]\n"
    project.write(body)
    project.ok("up")
    before = one(project)
    project.write(body + "    ulimits: {memlock: -1}\n")
    result = project.ngcws("up", "--skip-preflight")
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err, err
    assert "Nothing was lost" in err and "running as before" in err, err
    after = one(project)  # one container: the new one is gone, no temporary name is left
    assert after["Id"] == before["Id"] and after["State"] == "running"
    assert after["Names"] == [f"/{project.name}-train"]
    # The file still asks for the change: plan still says so (with the preflight's refusal).
    assert re.search(r"recreate +train", project.ngcws("plan").stdout.decode())
