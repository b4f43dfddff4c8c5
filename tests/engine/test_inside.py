"""`exec`, `shell`, `run`, `logs` and `user: host` against the real engine."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ngcws.engine import Engine
from tests.conftest import NGCWS, Workspace, read_terminal


@pytest.fixture
def up(project: Workspace, testbed: dict[str, str]) -> Iterator[Workspace]:
    (project.dir / "sub").mkdir()
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n    mounts: ['.:/workspace']\n"
        "    working_dir: /workspace\n    env: {FROM_FILE: yes-it-is}\n"
        f"  other:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
    )
    project.ok("up")
    yield project


def processes(project: Workspace, pattern: str) -> list[str]:
    out = project.ok("exec", "-T", "ps", "-eo", "pid,args")
    return [line for line in out.splitlines() if pattern in line and "ps -eo" not in line]


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["true"], 0),
        (["sh", "-c", "exit 3"], 3),
        (["/etc/hostname"], 126),  # not executable
        (["no-such-command-anywhere"], 127),
        (["sh", "-c", "kill -TERM $$"], 143),
        (["sh", "-c", "kill -KILL $$"], 137),
    ],
)
def test_exit_status_is_the_commands(up: Workspace, command: list[str], status: int) -> None:
    result = up.ngcws("exec", *command)
    assert result.returncode == status, result.stderr


def test_stdin_streams_and_stdout_is_byte_exact_and_stderr_separate(up: Workspace) -> None:
    result = up.ngcws("exec", "python", "-c", "import sys; print(sys.stdin.read().upper())", input=b"hello\nworld\n")
    assert result.stdout == b"HELLO\nWORLD\n\n"
    blob = os.urandom(3_000_000) + b"\r\n\x00\x1b[0m"
    (up.dir / "weights.bin").write_bytes(blob)
    assert up.ngcws("exec", "cat", "weights.bin").stdout == blob
    piped = up.ngcws("exec", "cat", input=blob)
    assert piped.stdout == blob
    split = up.ngcws("exec", "sh", "-c", "echo out; echo err >&2; echo out2")
    assert (split.stdout, split.stderr) == (b"out\nout2\n", b"err\n")


def test_env_workdir_and_user(up: Workspace) -> None:
    assert up.ok("exec", "pwd") == "/workspace\n"
    assert up.ok("exec", "-w", "/workspace/sub", "pwd") == "/workspace/sub\n"
    assert up.ok("exec", "sh", "-c", "echo $FROM_FILE") == "yes-it-is\n"
    assert (
        up.ok("exec", "-e", "X=1", "-e", "FROM_FILE=overridden", "sh", "-c", "echo $X $FROM_FILE") == "1 overridden\n"
    )
    assert up.ok("exec", "-e", "PASSED", "sh", "-c", "echo $PASSED", env={"PASSED": "through"}) == "through\n"
    assert up.ok("exec", "id", "-u") == "0\n"
    assert up.ok("exec", "-u", "65534:65534", "id", "-u") == "65534\n"
    assert (
        "BusyBox" in up.ngcws("exec", "-W", "other", "sh", "-c", "busybox | head -1").stdout.decode()
    )  # another image


def test_not_running_suggests_up(up: Workspace) -> None:
    up.ok("stop", "train")
    result = up.ngcws("exec", "true")
    assert result.returncode == 1 and b"ngcws up train" in result.stderr and b"Traceback" not in result.stderr
    assert up.ngcws("exec", "--up", "true").returncode == 0
    assert up.ngcws("exec", "-W", "nope", "true").returncode == 2


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_exec_ends_the_process_tree_inside(up: Workspace, sig: signal.Signals, status: int) -> None:
    marker = f"sleeper{sig.value}"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen(['sleep', '1000'])  # a worker, like a DataLoader's\n"
        f"print('{marker} ready', flush=True)\n"
        "time.sleep(1000)\n"
    )
    with subprocess.Popen([*NGCWS, "exec", "python", "-c", script], cwd=up.dir, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert marker in proc.stdout.readline().decode()
        assert len(processes(up, "sleep 1000")) == 1
        proc.send_signal(sig)
        proc.wait(timeout=30)
    assert proc.returncode == status
    deadline = time.monotonic() + 10
    while processes(up, "sleep 1000") or processes(up, marker):
        assert time.monotonic() < deadline, processes(up, "sleep")
        time.sleep(0.2)


def _pty_run(
    args: list[str],
    cwd: Path,
    rows: int = 33,
    cols: int = 101,
    send: bytes = b"",
    resize: tuple[int, int] | None = None,
    wait: float = 1.0,
) -> tuple[int, bytes]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(args, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    if resize:
        time.sleep(1.0)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *resize, 0, 0))
        proc.send_signal(signal.SIGWINCH)  # what the terminal sends its foreground process
    os.close(slave)
    if send:
        time.sleep(wait)
        os.write(master, send)
    output = read_terminal(master)
    os.close(master)
    return proc.wait(timeout=30), output


def test_tty_only_on_a_terminal_and_window_size_follows(up: Workspace) -> None:
    status, output = _pty_run([*NGCWS, "exec", "sh", "-c", "tty; sleep 0.5; stty size"], up.dir)
    assert status == 0 and b"/dev/pts/" in output and b"33 101" in output
    status, output = _pty_run([*NGCWS, "exec", "-T", "sh", "-c", "tty || true"], up.dir)
    assert b"not a tty" in output
    piped = up.ngcws("exec", "sh", "-c", "tty || true")
    assert b"not a tty" in piped.stdout
    forced = up.ngcws("exec", "-t", "sh", "-c", "tty")
    assert b"/dev/pts/" in forced.stdout
    status, output = _pty_run([*NGCWS, "exec", "sh", "-c", "sleep 2; stty size"], up.dir, resize=(40, 120))
    assert status == 0 and b"40 120" in output, output


def _take_terminal() -> None:
    """In the child: make stdin (a pty) the controlling terminal of the new session, as a login does."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def test_exec_in_the_background_of_a_terminal_is_never_stopped(up: Workspace) -> None:
    """`ngcws exec python train.py > log &` in an interactive shell: runs, reads no terminal, no SIGTTIN."""
    ngcws = " ".join(NGCWS)
    script = (
        f"set -m; {ngcws} exec sh -c 'sleep 1; echo trained; exit 3' > train.log 2>&1 & "
        "job=$!; wait $job; echo status=$?; ps -o stat= -p $job; kill -CONT $job 2>/dev/null; true"
    )
    master, slave = pty.openpty()
    with subprocess.Popen(
        ["bash", "-c", script],
        cwd=up.dir,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_take_terminal,
    ) as shell:
        os.close(slave)
        output = read_terminal(master, 60)
        shell.wait(timeout=30)
    os.close(master)
    assert b"status=3" in output, output  # a stopped job would report 128+SIGTTIN (149)
    assert (up.dir / "train.log").read_bytes() == b"trained\n"


def test_shell_is_interactive_in_the_working_dir(up: Workspace) -> None:
    # Typed ahead: sent before the session has necessarily set up the terminal, and kept.
    status, output = _pty_run([*NGCWS, "shell"], up.dir, send=b"pwd; echo $0; exit 5\n", wait=0.0)
    assert status == 5, output
    assert b"/workspace" in output and b"bash" in output


def test_run_removes_its_container_and_propagates_status(up: Workspace) -> None:
    result = up.ngcws("run", "python", "-c", "import os, sys; print(os.getcwd(), os.environ['FROM_FILE']); sys.exit(4)")
    assert result.returncode == 4, result.stderr
    assert b"/workspace yes-it-is" in result.stdout
    assert [c for c in up.containers() if c["Labels"].get("ngcws.oneoff")] == []
    assert up.ngcws("run", "-W", "other", "sh", "-c", "cat; exit 0", input=b"piped").stdout == b"piped"
    assert "nothing to do" in up.ok("plan")


def test_run_no_rm_keeps_the_container_labelled_one_off(up: Workspace) -> None:
    result = up.ngcws("run", "--no-rm", "true")
    assert result.returncode == 0
    oneoffs = [c for c in up.containers() if c["Labels"].get("ngcws.oneoff") == "true"]
    assert len(oneoffs) == 1
    assert "nothing to do" in up.ok("plan") and "orphan" not in up.ok("plan")
    name = str(oneoffs[0]["Names"][0]).lstrip("/")
    row = next(r for r in json.loads(up.ok("ps", "--format", "json")) if r["name"] == name)
    assert (row["workspace"], row["state"], row["drift"]) == ("train", "exited", "one-off (run)")
    result = up.ngcws("down")
    assert result.returncode == 0 and f"{name} (one-off from ngcws run, exited)".encode() in result.stderr
    assert up.containers() == []


def test_logs_and_follow(project: Workspace, testbed: dict[str, str]) -> None:
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_TINY']}\n    gpus: none\n"
        "    command: [sh, -c, 'echo first; echo to-stderr >&2; i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 0.2; done']\n"
    )
    project.ok("up")
    time.sleep(0.5)
    result = project.ngcws("logs", "--tail", "all")
    assert result.stdout.startswith(b"first\n") and result.stderr == b"to-stderr\n"
    assert b"T" in project.ngcws("logs", "--timestamps", "--tail", "1").stdout
    with subprocess.Popen([*NGCWS, "logs", "-f", "--tail", "0"], cwd=project.dir, stdout=subprocess.PIPE) as follower:
        assert follower.stdout is not None
        lines = [follower.stdout.readline() for _ in range(3)]
        assert all(line.startswith(b"tick ") for line in lines)
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=10) == 130


def free_id(start: int = 4321) -> int:
    """A uid that is also a gid, with no entry in this machine's passwd or group (the name then
    comes from $USER, as on a host whose users live in LDAP)."""
    import grp
    import pwd

    for number in range(start, start + 10000):
        try:
            pwd.getpwuid(number)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(number)
        except KeyError:
            return number
    raise AssertionError("no free uid")


def test_user_host_owns_files_written_to_mounts(
    testbed: dict[str, str], system_python_install: Path, shared_tmp: Path
) -> None:
    import uuid

    from tests.conftest import remove_project

    uid = gid = free_id()
    docker_gid = os.stat("/var/run/docker.sock").st_gid
    project = Workspace(shared_tmp / f"u{uuid.uuid4().hex[:8]}", f"u{uuid.uuid4().hex[:10]}")
    project.dir.mkdir()
    os.chown(project.dir, uid, gid)
    project.write(
        f"workspaces:\n  train:\n    image: {testbed['NGCWS_TB_NGC']}\n    gpus: none\n    user: host\n    mounts: ['.:/workspace']\n    working_dir: /workspace\n"
    )
    as_user = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        f"--groups={docker_gid}",
        "/usr/bin/python3",
        "-m",
        "ngcws",
    ]
    env = {"PYTHONPATH": str(system_python_install), "HOME": str(project.dir), "USER": "ada", "PATH": "/usr/bin:/bin"}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([*as_user, *args], cwd=project.dir, env=env, capture_output=True, timeout=120)

    try:
        assert run("up").returncode == 0
        result = run(
            "exec",
            "sh",
            "-c",
            "id -u; id -g; whoami; echo $HOME; cd && pwd && touch ~/ok; "
            "python -c 'import getpass; print(getpass.getuser())'; echo trained > /workspace/model.txt",
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().split() == [str(uid), str(gid), "ada", "/home/ada", "/home/ada", "ada"]
        written = project.dir / "model.txt"
        assert written.read_text() == "trained\n"
        assert (written.stat().st_uid, written.stat().st_gid) == (uid, gid)
        held = run("down")  # ~/ok lives in the writable layer: work the guard protects
        assert held.returncode == 1 and b"/home/ada: 1 new file" in held.stderr, held.stderr
        assert run("down", "--force").returncode == 0
    finally:
        remove_project(project.name)


def test_run_pulls_a_missing_image_by_the_pull_policy(project: Workspace, testbed: dict[str, str]) -> None:
    engine = Engine()
    image = f"{testbed['NGCWS_TB_REGISTRY']}/{project.name}/oneoff:1"
    repo, _, tag = image.rpartition(":")
    engine.transport.request(
        "POST", f"/images/{testbed['NGCWS_TB_TINY']}/tag", params={"repo": repo, "tag": tag}
    ).read()
    pushed = engine.transport.request(
        "POST", f"/images/{image}/push", headers={"X-Registry-Auth": "e30="}, timeout=None
    )
    assert pushed.status == 200 and all("error" not in m for m in pushed.lines())
    try:
        engine.transport.request("DELETE", f"/images/{image}").read()
        project.write(f"workspaces:\n  t:\n    image: {image}\n    gpus: none\n    pull: never\n")
        refused = project.ngcws("run", "true")
        assert refused.returncode == 125 and b"pull policy of 't' is never" in refused.stderr
        project.write(f"workspaces:\n  t:\n    image: {image}\n    gpus: none\n")
        result = project.ngcws("run", "echo", "ran")
        assert result.returncode == 0, result.stderr
        assert b"pull" in result.stderr and result.stdout == b"ran\n"
        assert engine.inspect_image(image) is not None
    finally:
        engine.transport.request("DELETE", f"/images/{image}", params={"force": True}).read()


def test_run_exits_125_when_ngcws_or_the_engine_fails_and_the_commands_status_otherwise(
    project: Workspace, testbed: dict[str, str]
) -> None:
    image = testbed["NGCWS_TB_TINY"]
    project.write(f"workspaces:\n  t:\n    image: {image}\n    gpus: none\n    networks: [no-such-net-ngcws]\n")
    refused = project.ngcws("run", "true")  # the engine refuses the create
    assert refused.returncode == 125 and b"no-such-net-ngcws" in refused.stderr, refused.stderr
    assert b"Traceback" not in refused.stderr
    project.write(f"workspaces:\n  t:\n    image: {image}\n    gpus: none\n")
    assert project.ngcws("run", "sh", "-c", "exit 1").returncode == 1  # the command's own status
    assert project.ngcws("run", "no-such-program-ngcws").returncode == 127
    project.write(f"workspaces:\n  t:\n    image: {image}\n    gpus: 0\n")
    assert project.ngcws("run", "true").returncode == 125  # a file mistake is ngcws's failure too
