"""`ngcws up --watch` against the real engine: the watcher runs as a subprocess, the test edits files
and disturbs containers the way a user would, and waits (generously) for what the watcher says and
does. No timing assertions: each wait only bounds how long a failure takes to show."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ngcws.engine import Engine
from ngcws.sessions import sessions_of
from tests.conftest import NGCWS, Workspace, remove_project
from tests.private_engine import PrivateEngine

WAIT = 90.0


class Watcher:
    """A running `ngcws up --watch`, its output in a file outside the project folder."""

    def __init__(self, project: Workspace, args: tuple[str, ...], env: dict[str, str] | None) -> None:
        self.log = project.dir.parent / f"watch-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [*NGCWS, *args],
                cwd=project.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        self.seen = 0  # wait_for() looks after what it found last

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        """Wait until ``text`` appears after what was found last; return the output up to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            found = out.find(text, self.seen)
            if found >= 0:
                self.seen = found + len(text)
                return out[: self.seen]
            if self.proc.poll() is not None:
                pytest.fail(f"the watcher exited ({self.proc.returncode}) before saying {text!r}:\n{out}")
            time.sleep(0.1)
        pytest.fail(f"the watcher did not say {text!r} in {timeout:.0f} s:\n{self.output()}")

    def interrupt(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def watch(project: Workspace) -> Iterator[Callable[..., Watcher]]:
    """Start watchers; each is killed before the project's containers are removed."""
    started: list[Watcher] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Watcher:
        watcher = Watcher(project, args or ("up", "--watch"), env)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        watcher.kill()


def tiny(testbed: dict[str, str], extra: str = "", name: str = "train") -> str:
    return f"workspaces:\n  {name}:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n{extra}"


def container(project: Workspace, workspace: str = "train") -> dict[str, Any]:
    found = [c for c in project.containers() if c["Labels"]["ngcws.workspace"] == workspace]
    assert len(found) == 1, found
    inspect = Engine().inspect_container(str(found[0]["Id"]))
    assert inspect is not None
    return inspect


def wait_until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"not reached in {timeout:.0f} s: {what}")


def running(project: Workspace, workspace: str = "train") -> dict[str, Any] | None:
    found = [c for c in project.containers() if c["Labels"]["ngcws.workspace"] == workspace]
    if len(found) != 1 or found[0]["State"] != "running":
        return None
    return Engine().inspect_container(str(found[0]["Id"]))


def events_between(project: Workspace, since: float, until: float) -> list[dict[str, Any]]:
    params = {"since": f"{since:.3f}", "until": f"{until:.3f}", "filters": {"label": [f"ngcws.project={project.name}"]}}
    return list(Engine().transport.request("GET", "/events", params=params).lines())


def test_shm_size_edit_recreates_with_the_new_value(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)
    project.write(tiny(testbed, "    shm_size: 128m\n"))
    watcher.wait_for("recreate train: shm_size 64m → 128m")
    wait_until(lambda: (c := running(project)) is not None and c["Id"] != before["Id"], "a new running container")
    assert container(project)["HostConfig"]["ShmSize"] == 128 * 2**20


def test_save_by_rename_is_applied(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    temp = project.dir / ".ngcws.yaml.tmp123"  # how many editors save: write a temp file, rename it over
    temp.write_text(f"name: {project.name}\n" + tiny(testbed, "    shm_size: 96m\n"))
    temp.rename(project.dir / "ngcws.yaml")
    watcher.wait_for("recreate train: shm_size 64m → 96m")
    wait_until(lambda: (c := running(project)) is not None and c["HostConfig"]["ShmSize"] == 96 * 2**20, "96m")


def test_env_file_edit_is_applied_and_a_new_env_file_followed(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    (project.dir / "a.env").write_text("MODE=one\n")
    project.write(tiny(testbed, "    env_file: a.env\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    (project.dir / "a.env").write_text("MODE=two\n")
    watcher.wait_for("a.env changed")
    watcher.wait_for("recreate train: env.MODE changed (secret)")  # env_file values are never printed
    wait_until(lambda: (c := running(project)) is not None and "MODE=two" in c["Config"]["Env"], "MODE=two")
    # The file names an env_file that does not exist yet: an error; creating it applies.
    project.write(tiny(testbed, "    env_file: [a.env, b.env]\n"))
    watcher.wait_for("b.env")
    watcher.wait_for("does not exist")
    (project.dir / "b.env").write_text("EXTRA=yes\n")
    watcher.wait_for("recreate train: env.EXTRA ")
    wait_until(lambda: (c := running(project)) is not None and "EXTRA=yes" in c["Config"]["Env"], "EXTRA=yes")


def test_invalid_edit_touches_nothing_and_the_next_valid_edit_applies(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)["Id"]
    project.write(tiny(testbed, "    shm_size: lots\n"))
    said = watcher.wait_for("the last valid state stays in force")
    assert "error: ngcws.yaml:6:" in said and "shm_size" in said, said
    project.write(tiny(testbed, "    shm_size: ${UNDEFINED_IN_THIS_TEST}\n"))
    watcher.wait_for("UNDEFINED_IN_THIS_TEST")
    (project.dir / "ngcws.yaml").write_text("workspaces: [\n")
    watcher.wait_for("invalid YAML")
    (project.dir / "ngcws.yaml").unlink()  # deleted half-way through a save
    watcher.wait_for("the last valid state stays in force")
    assert watcher.proc.poll() is None
    assert container(project)["Id"] == before and running(project) is not None
    project.write(tiny(testbed, "    shm_size: 32m\n"))
    watcher.wait_for("recreate train: shm_size 64m → 32m")
    wait_until(lambda: (c := running(project)) is not None and c["HostConfig"]["ShmSize"] == 32 * 2**20, "32m")


def test_an_edit_that_changes_no_request_makes_no_engine_writes(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed, "    shm_size: 16g\n    env: {A: '1', B: '2'}\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    wait_until(lambda: running(project) is not None, "running")
    before = container(project)["Id"]
    time.sleep(1.5)  # let the watcher's own settle check pass, so that only the edit is measured
    since = time.time()
    project.write("# a comment\n" + tiny(testbed, "    env: {B: '2', A: '1'}   # reordered\n    shm_size: 16384m\n"))
    watcher.wait_for("nothing to apply: the engine already matches")
    assert events_between(project, since, time.time()) == []
    assert container(project)["Id"] == before


def test_a_killed_workspace_is_started_again(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    project.write(tiny(testbed))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)["Id"]
    subprocess.run(["docker", "kill", before], check=True, capture_output=True)
    watcher.wait_for("start train: ")
    wait_until(lambda: (c := running(project)) is not None and c["Id"] == before, "the same container running")


def test_a_removed_workspace_is_recreated(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    project.write(tiny(testbed))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)["Id"]
    subprocess.run(["docker", "rm", "-f", before], check=True, capture_output=True)
    watcher.wait_for("create train: no container")
    wait_until(lambda: (c := running(project)) is not None and c["Id"] != before, "a new container running")


def test_a_crash_loop_backs_off_and_is_reported_with_its_logs(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed, "    command: [sh, -c, 'echo boom from the app; exit 3']\n"))
    watcher = watch()
    said = watcher.wait_for("boom from the app")
    assert "crash loop: train died 3 times in a row (exit 3" in said, said
    assert "starting it in 1 s" in said  # the second death waited; the third report names the next wait
    assert "next start in 2 s" in said
    watcher.wait_for("next start in 4 s")  # still backing off, not restarting in a tight loop
    starts = said.count("start train:")
    assert starts == 3, said


def test_a_finished_command_with_restart_no_is_left_exited(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed, "    command: [sh, -c, 'echo done']\n"))
    watcher = watch()
    watcher.wait_for("its command finished (exit 0); left exited")
    assert container(project)["State"]["Status"] == "exited"
    assert watcher.output().count("start train:") == 1


def test_a_recreate_waits_for_running_exec_sessions(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)["Id"]
    session = subprocess.Popen(
        [*NGCWS, "exec", "-T", "sh", "-c", "read line; echo ended"],
        cwd=project.dir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: bool(sessions_of(Engine(), before)), "the session runs")
        project.write(tiny(testbed, "    shm_size: 128m\n"))
        said = watcher.wait_for("applied as soon as nothing holds it back")
        assert (
            "waiting: recreate train: shm_size 64m → 128m — held back by 1 exec session running: sh -c read line"
            in said
        )
        assert container(project)["Id"] == before
        assert session.poll() is None
        out, _ = session.communicate(b"go\n", timeout=60)
        assert out == b"ended\n"
    finally:
        if session.poll() is None:
            session.kill()
    watcher.wait_for("recreate train: shm_size 64m → 128m")
    wait_until(lambda: (c := running(project)) is not None and c["HostConfig"]["ShmSize"] == 128 * 2**20, "128m")


def test_up_refuses_to_recreate_over_a_running_session_unless_forced(
    project: Workspace, testbed: dict[str, str]
) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    project.ok("up")
    before = container(project)["Id"]
    exec_id = Engine().exec_create(before, {"Cmd": ["sleep", "300"]})
    Engine().transport.request("POST", f"/exec/{exec_id}/start", body={"Detach": True}).read()
    wait_until(lambda: bool((Engine().exec_running(exec_id) or {}).get("Running")), "the session runs")
    project.write(tiny(testbed, "    shm_size: 128m\n"))
    refused = project.ngcws("up")
    assert refused.returncode == 1, refused.stderr
    message = refused.stderr.decode()
    assert "train: 1 exec session running: sleep 300 (since " in message, message
    assert "--force-recreate" in message and "Traceback" not in message
    assert container(project)["Id"] == before
    down = project.ngcws("down")
    assert down.returncode == 1 and b"sleep 300" in down.stderr
    project.ok("up", "--force-recreate")
    assert container(project)["HostConfig"]["ShmSize"] == 128 * 2**20


def test_restart_on_restarts_the_workspace(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    (project.dir / "src" / "pkg").mkdir(parents=True)
    code = project.dir / "src" / "pkg" / "app.py"
    code.write_text("print(1)\n")
    project.write(tiny(testbed, "    mounts: ['.:/work']\n    restart_on: ['src/**/*.py']\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)
    (project.dir / "src" / "notes.txt").write_text("not code")
    (project.dir / "src" / "pkg" / ".app.py.swp").write_text("editor swap file")
    code.write_text("print(2)\n")
    said = watcher.wait_for("restart train: restart_on")
    assert "src/pkg/app.py changed: restart_on of train" in said, said
    assert "notes.txt" not in said and ".swp" not in said
    wait_until(lambda: container(project)["State"]["StartedAt"] != before["State"]["StartedAt"], "started anew")
    assert container(project)["Id"] == before["Id"] and running(project) is not None
    time.sleep(3)  # let the engine's events of the restart reach the watcher
    assert "engine:" not in watcher.output(), watcher.output()  # its own restart, said once as such


def test_a_workspace_stopped_with_ngcws_stop_stays_stopped(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed))
    watcher = watch()
    watcher.wait_for("start train: new container")
    project.ok("stop")
    watcher.wait_for("stopped with `ngcws stop`")
    assert container(project)["State"]["Status"] == "exited"
    project.ok("start")
    wait_until(lambda: running(project) is not None, "running again")
    subprocess.run(["docker", "kill", container(project)["Id"]], check=True, capture_output=True)
    watcher.wait_for("start train: ")  # the stop intent ended with `ngcws start`
    wait_until(lambda: running(project) is not None, "running again")


def test_one_watcher_per_project_and_ctrl_c_leaves_the_workspace_running(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed))
    first = watch()
    first.wait_for("start train: new container")
    second = project.ngcws("up", "--watch")
    assert second.returncode == 1
    assert f"(pid {first.proc.pid})".encode() in second.stderr, second.stderr
    assert f"watcher: pid {first.proc.pid}, since " in project.ok("ps")
    assert first.interrupt(signal.SIGINT) == 0
    assert "the workspaces keep running" in first.output()
    assert running(project) is not None
    assert "watcher:" not in project.ok("ps")
    third = watch("watch")  # the alias
    third.wait_for("watching")
    third.kill()  # SIGKILL: nothing is left that blocks the next one
    fourth = watch()
    fourth.wait_for("watching")
    assert fourth.interrupt(signal.SIGTERM) == 0
    assert running(project) is not None


@pytest.mark.parametrize(
    "args",
    [
        ("up", "--watch", "--down-on-exit"),
        ("watch", "--down-on-exit", "--skip-preflight", "--take-over", "--remove-orphans"),
    ],
)
def test_down_on_exit_removes_the_workspaces(
    project: Workspace, testbed: dict[str, str], watch: Any, args: tuple[str, ...]
) -> None:
    project.write(tiny(testbed))
    watcher = watch(*args)
    watcher.wait_for("start train: new container")
    assert watcher.interrupt() == 0
    assert project.containers() == []


def test_the_watcher_follows_the_engine_through_a_restart(
    project: Workspace, testbed: dict[str, str], private_engine: PrivateEngine, watch: Any
) -> None:
    env = {"DOCKER_HOST": private_engine.host}
    project.write(tiny(testbed))
    watcher = watch(env=env)
    watcher.wait_for("start train: new container")
    engine = private_engine.engine()
    [before] = engine.list_containers({"ngcws.project": project.name})
    private_engine.restart()
    said = watcher.wait_for("engine answers again: reconciling")
    assert said.count("engine unavailable") == 1, said  # said once, not at every retry
    watcher.wait_for("start train: ")

    def up_again() -> bool:
        found = engine.list_containers({"ngcws.project": project.name})
        return len(found) == 1 and found[0]["State"] == "running"

    wait_until(up_again, "running again on the restarted engine")
    assert engine.list_containers({"ngcws.project": project.name})[0]["Id"] == before["Id"]
    assert watcher.proc.poll() is None
    watcher.kill()
    assert project.containers() == []  # the shared engine never saw this project


def test_an_override_file_created_later_is_followed(project: Workspace, testbed: dict[str, str], watch: Any) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    (project.dir / "ngcws.override.yaml").write_text("workspaces:\n  train:\n    shm_size: 256m\n")
    watcher.wait_for("ngcws.override.yaml changed")
    watcher.wait_for("recreate train: shm_size 64m → 256m")
    wait_until(lambda: (c := running(project)) is not None and c["HostConfig"]["ShmSize"] == 256 * 2**20, "256m")


def test_a_stop_and_a_second_watcher_with_another_tmpdir_are_seen(
    project: Workspace, testbed: dict[str, str], watch: Any, tmp_path: Any
) -> None:
    job, shell = tmp_path / "job-tmp", tmp_path / "shell-tmp"  # a Slurm job's TMPDIR, a user's shell's
    job.mkdir()
    shell.mkdir()
    project.write(tiny(testbed))
    watcher = watch(env={"TMPDIR": str(job)})
    watcher.wait_for("start train: new container")
    second = project.ngcws("up", "--watch", env={"TMPDIR": str(shell)})
    assert second.returncode == 1 and f"(pid {watcher.proc.pid})".encode() in second.stderr, second.stderr
    stopped = project.ngcws("stop", env={"TMPDIR": str(shell)})
    assert stopped.returncode == 0, stopped.stderr
    watcher.wait_for("stopped with `ngcws stop`")
    time.sleep(3)  # the watcher had its events: it must have left the workspace stopped
    assert container(project)["State"]["Status"] == "exited"
    assert watcher.output().count("start train:") == 1, watcher.output()


def test_its_own_recreate_is_said_once_and_an_outside_kill_still_reported(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed, "    shm_size: 64m\n"))
    watcher = watch()
    watcher.wait_for("start train: new container")
    before = container(project)["Id"]
    project.write(tiny(testbed, "    shm_size: 128m\n"))
    watcher.wait_for("recreate train: shm_size 64m → 128m")
    wait_until(lambda: (c := running(project)) is not None and c["Id"] != before, "a new running container")
    wait_until(lambda: Engine().inspect_container(before) is None, "the old container removed")
    time.sleep(3)  # let the engine's events of the recreate reach the watcher
    quiet = watcher.output()
    assert "engine:" not in quiet, quiet  # kill, die, destroy of the old container: its own doing
    subprocess.run(["docker", "kill", container(project)["Id"]], check=True, capture_output=True)
    said = watcher.wait_for("start train: ")
    assert "engine: kill train" in said[len(quiet) :] and "engine: train died (exit 137)" in said[len(quiet) :], said


def test_a_users_stop_and_start_do_not_count_toward_the_crash_loop(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    project.write(tiny(testbed, "    command: [sh, -c, 'echo boom from the app; exit 3']\n"))
    watcher = watch()
    watcher.wait_for("crash loop: train died 3 times in a row")
    project.ok("stop")  # the user takes over: fixes something, starts it again
    watcher.wait_for("stopped with `ngcws stop`")
    project.ok("start")
    said = watcher.wait_for("train died again (exit 3): starting it in 1 s")  # a new count: 1st, then 2nd death
    after = said[said.index("stopped with `ngcws stop`") :]
    assert "crash loop" not in after and "next start in" not in after, after


def test_a_name_change_is_not_followed_and_nothing_is_left_unmentioned(
    project: Workspace, testbed: dict[str, str], watch: Any
) -> None:
    old, new = project.name, f"{project.name}b"
    project.write(tiny(testbed))
    watcher = watch()
    watcher.wait_for("start train: new container")
    try:
        (project.dir / "ngcws.yaml").write_text(f"name: {new}\n" + tiny(testbed))
        said = watcher.wait_for("then `ngcws up --watch`")
        assert f"the project's name changed ({old} → {new}): not followed" in said, said
        assert f"keeps {old} in force ({old}-train)" in said and f"`ngcws -p {old} down`" in said, said
        assert watcher.interrupt() == 0
        up = project.ngcws("up")  # the new name: its own containers, and a word about the old ones
        assert up.returncode == 0, up.stderr
        assert f"project '{old}' (this file under its old name?) still has 1 container(s) here: {old}-train;" in (
            up.stderr.decode()
        )
        assert f"`ngcws -p {old} down` removes them" in up.stderr.decode()
        assert "still has" not in project.ngcws("up").stderr.decode()  # said when creating, not at every up
        project.ok("-p", old, "down")  # the command it names does it
        assert project.containers() == []
        assert [c["Names"] for c in Engine().list_containers({"ngcws.project": new})] == [[f"/{new}-train"]]
    finally:
        remove_project(new)
