"""Working inside a workspace: ``exec``, ``shell``, ``run`` and ``logs``.

``exec`` is what users type all day, so its path is lean: the desired state comes from the cache
(:mod:`ngcws.state`) and the engine is spoken to without docker-py (``benchmarks/exec_latency.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ngcws import labels as L
from ngcws.engine import Engine
from ngcws.errors import NotRunning, OwnershipError, UsageError
from ngcws.locate import Files
from ngcws.spec import DesiredState
from ngcws.state import load_state
from ngcws.streams import Demux, pump, terminal_size, write_all

#: Run as root inside the container to signal every process of one exec (they all carry its tag
#: in their environment, children included), since the Engine API cannot signal an exec.
KILL_SCRIPT = (
    "sig=$1; tag=$2; for d in /proc/[0-9]*; do "
    'if tr "\\0" "\\n" < "$d/environ" 2>/dev/null | grep -qx "$tag"; '
    'then kill -s "$sig" "${d#/proc/}" 2>/dev/null; fi; '
    "done"
)
SHELL_SCRIPT = "if command -v bash >/dev/null 2>&1; then exec bash -l; else exec sh -l; fi"
GRACE_SECONDS = 10.0


class ExecOptions:
    """What `ngcws exec` was asked to do (tty None: only when stdin and stdout are terminals)."""

    def __init__(
        self,
        command: list[str],
        workspace: str | None = None,
        tty: bool | None = None,
        user: str | None = None,
        workdir: str | None = None,
        env: list[str] | None = None,
        up: bool = False,
    ) -> None:
        self.command = command
        self.workspace = workspace
        self.tty = tty
        self.user = user
        self.workdir = workdir
        self.env = env or []
        self.up = up


def wants_tty(requested: bool | None) -> bool:
    if requested is not None:
        return requested
    return os.isatty(0) and os.isatty(1)


def find_container(engine: Engine, state: DesiredState, workspace: str) -> dict[str, Any]:
    """The workspace's container (running or not), verified to be this project's."""
    name = state.containers[workspace].name
    found = engine.inspect_container(name)
    if found is None:
        raise NotRunning(
            f"workspace {workspace!r} has no container", hint=f"Start it with `ngcws up {workspace}` (or pass --up)."
        )
    labels = (found.get("Config") or {}).get("Labels") or {}
    if labels.get(L.PROJECT_DIR) != state.identity.directory:
        hint = None
        config = labels.get(L.CONFIG_FILE)
        if config and not os.path.exists(config):
            hint = (
                f"It was made in {labels.get(L.PROJECT_DIR)}, which no longer has its ngcws.yaml. If you moved the "
                "project here, `ngcws up --take-over` replaces it with one made from this folder."
            )
        raise OwnershipError(f"container {name!r} is not this project's (folder {state.identity.directory})", hint=hint)
    return found


def find_running(engine: Engine, state: DesiredState, workspace: str) -> dict[str, Any]:
    """The workspace's running container, verified to be this project's."""
    found = find_container(engine, state, workspace)
    if (found.get("State") or {}).get("Paused"):
        raise NotRunning(f"workspace {workspace!r} is paused", hint=f"Resume it with `ngcws start {workspace}`.")
    observed = found.get("State") or {}
    if not observed.get("Running"):
        status = observed.get("Status", "stopped")
        failed = f"; its last start failed: {observed['Error']}" if observed.get("Error") else ""
        raise NotRunning(
            f"workspace {workspace!r} is not running ({status}){failed}",
            hint=f"Start it with `ngcws up {workspace}` (or pass --up).",
        )
    return found


def exec_in(options: ExecOptions, file: Files, project_name: str | None) -> int:
    """Run a command in a running workspace; return its exit status."""
    if not options.command:
        raise UsageError("exec needs a command, e.g. `ngcws exec python train.py`")
    if options.command[0].startswith("-") and options.command[0] != "-":
        # An option exec does not know (a typo of --workdir would otherwise run as a program),
        # as docker exec's "unknown flag"; no program's name starts with "-".
        raise UsageError(
            f"exec has no option {options.command[0]}: its options are -W/--workspace, -t, -T, -u, -w, -e, "
            "--up (`ngcws exec --help`), then the command"
        )
    state = load_state(file, project_name)
    workspace = _one(state, options.workspace)
    engine = Engine()
    if options.up:
        from ngcws.controller import Controller
        from ngcws.plan import UpOptions
        from ngcws.present import Console

        Controller(state, engine, Console()).up([workspace], UpOptions())
    container = find_running(engine, state, workspace)
    return run_exec(engine, container["Id"], options, lambda: _variables(file))


def _one(state: DesiredState, workspace: str | None) -> str:
    """The named workspace, or the first in the file."""
    return state.select([workspace])[0] if workspace else state.workspaces[0]


def _variables(file: Files) -> Mapping[str, str]:
    from ngcws.locate import locate, variables_for

    return variables_for(locate(file))


def run_exec(engine: Engine, container_id: str, options: ExecOptions, variables: Any) -> int:
    """Run ``options.command`` in a container; ``variables()`` resolves ``-e KEY`` (environment, .env)."""
    tty = wants_tty(options.tty)
    tag = f"NGCWS_EXEC_ID={os.urandom(8).hex()}"
    env = [tag]
    for item in options.env:
        if "=" not in item:
            if item not in (known := variables()):
                raise UsageError(f"-e {item}: not set in the environment; write -e {item}=VALUE")
            item = f"{item}={known[item]}"
        env.append(item)
    config: dict[str, Any] = {
        "Cmd": options.command,
        "Env": env,
        "Tty": tty,
        "AttachStdin": True,
        "AttachStdout": True,
        "AttachStderr": True,
    }
    if options.user:
        config["User"] = options.user
    if options.workdir:
        config["WorkingDir"] = options.workdir
    size = _terminal_size() if tty else None
    if size:
        config["ConsoleSize"] = list(size)  # API 1.42+: the TTY starts at the right size
    exec_id = engine.exec_create(container_id, config)
    sock, initial = engine.exec_start(exec_id, tty, size)
    output = _StartFailure()
    stopper = _session(
        sock,
        initial,
        tty,
        signal_with=lambda signame: _signal_exec(engine, container_id, tag, signame),
        resize_to=lambda rows, cols: engine.exec_resize(exec_id, rows, cols),
        write=output,
    )
    return stopper.exit_status(output.status(_exit_code(engine, exec_id)))


def _session(
    sock: Any,
    initial: bytes,
    tty: bool,
    *,
    signal_with: Callable[[str], None],
    resize_to: Callable[[int, int], None],
    write: Callable[[int, bytes], None] = write_all,
) -> _Stopper:
    """Stream a started process until it ends; signals go to ``signal_with``, the TTY follows ours."""

    def resize() -> None:
        resize_to(*terminal_size())

    stopper = _Stopper(signal_with)
    if tty:
        with contextlib.suppress(OSError):
            resize()
    pump(sock, initial, tty=tty, forward_stdin=True, on_signal=stopper, on_resize=resize if tty else None, write=write)
    return stopper


def _terminal_size() -> tuple[int, int] | None:
    try:
        return terminal_size()
    except OSError:
        return None


class _StartFailure:
    """Writes the output, except the runtime's own message when the command could not start.

    The engine reports a missing command and a non-executable one alike (126, the message on
    stdout); like a shell, ngcws prints the reason on stderr and exits 127 or 126.
    """

    MARK = b"OCI runtime exec failed"

    def __init__(self) -> None:
        self.first = True
        self.held = b""

    def __call__(self, fd: int, data: bytes) -> None:
        if self.first:
            self.first = False
            if data.startswith(self.MARK):
                self.held = data
                return
        write_all(fd, data)

    def status(self, status: int) -> int:
        if not self.held:
            return status
        message = self.held.decode(errors="replace").strip()
        if status != 126:
            write_all(1, self.held)
            return status
        reason = message.rsplit("exec: ", 1)[-1].removesuffix(": unknown")
        write_all(2, f"ngcws: cannot run the command: {reason}\n".encode())
        return 127 if ("not found" in reason or "no such file" in reason) else 126


class _Stopper:
    """First SIGINT/SIGTERM/SIGHUP: pass it on to the processes; later ones, or the grace period
    running out, kill them."""

    def __init__(self, send: Any) -> None:
        self.send = send
        self.first: int | None = None

    def __call__(self, signum: int) -> None:
        if self.first is None:
            self.first = signum
            self.send(signal.Signals(signum).name.removeprefix("SIG"))
            timer = threading.Timer(GRACE_SECONDS, self.send, args=("KILL",))
            timer.daemon = True
            timer.start()
        else:
            self.send("KILL")

    def exit_status(self, status: int) -> int:
        if self.first is not None and status == 0:
            return 128 + self.first
        return status


def _signal_exec(engine: Engine, container_id: str, tag: str, signame: str) -> None:
    config = {"Cmd": ["/bin/sh", "-c", KILL_SCRIPT, "ngcws-signal", signame, tag], "User": "0", "Env": []}
    try:
        exec_id = engine.exec_create(container_id, config)
        sock, _ = engine.exec_start(exec_id, False)
        while sock.recv(65536):
            pass
        sock.close()
    except Exception:  # the container may be gone already; nothing more to stop
        return


def _exit_code(engine: Engine, exec_id: str) -> int:
    for _ in range(100):
        info = engine.exec_inspect(exec_id)
        if not info.get("Running") and info.get("ExitCode") is not None:
            return int(info["ExitCode"])
        time.sleep(0.02)
    return 1


def shell(workspace: str | None, file: Files, project_name: str | None) -> int:
    return exec_in(ExecOptions(["/bin/sh", "-c", SHELL_SCRIPT], workspace=workspace), file, project_name)


def logs(
    workspace: str | None, follow: bool, tail: str, timestamps: bool, file: Files, project_name: str | None
) -> int:
    state = load_state(file, project_name)
    engine = Engine()
    container = find_container(engine, state, _one(state, workspace))
    tty = bool((container.get("Config") or {}).get("Tty"))
    demux = Demux()
    try:
        for chunk in engine.logs(container["Id"], follow=follow, tail=tail, timestamps=timestamps):
            demux.route(chunk, tty)
    except KeyboardInterrupt:
        return 130
    return 0


def run_oneoff(
    workspace: str | None,
    command: list[str],
    remove: bool,
    tty_flag: bool | None,
    file: Files,
    project_name: str | None,
    preflight: bool = True,
) -> int:
    """A one-off container with the workspace's full spec, as ``docker run --rm``."""
    from ngcws.controller import Controller
    from ngcws.present import Console
    from ngcws.spec import oneoff_request

    state = load_state(file, project_name)
    name = _one(state, workspace)
    engine = Engine()
    console = Console()
    controller = Controller(state, engine, console)
    desired = state.containers[name]
    if not command and desired.essence["command"] is None:
        raise UsageError(
            f"ngcws run needs a command: workspace {name!r} has no command: in ngcws.yaml",
            hint=f"Give one, e.g. `ngcws run -W {name} python train.py`, or set command: for the workspace.",
        )
    controller.ensure_image(desired)
    if preflight:
        controller.preflight([desired])
    tty = wants_tty(tty_flag)
    request = oneoff_request(desired, command or desired.request["Cmd"], tty, interactive=True)
    container_name = f"{desired.name}-run-{os.urandom(3).hex()}"
    container_id = controller.create_oneoff(desired, container_name, request)
    try:
        sock, initial = engine.attach(container_id)
        engine.start(container_id, container_name)
        stopper = _session(
            sock,
            initial,
            tty,
            signal_with=lambda signame: engine.kill(container_id, signame),
            resize_to=lambda rows, cols: engine.container_resize(container_id, rows, cols),
        )
        return stopper.exit_status(engine.wait(container_id))
    finally:
        if remove:
            engine.remove(container_id, force=True, volumes=True)
        else:
            console.note(f"kept container {container_name}")
