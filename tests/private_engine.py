"""A Docker engine of a test's own, for tests that stop, kill or restart the engine.

The test bed's engine is shared by every test (and by other test runs on the same machine), so
no test may stop it. A :class:`PrivateEngine` is a second ``dockerd`` with its own socket, data
root, exec root and pid file, no bridge and no iptables rules, so it cannot disturb the shared
one. It pulls the images a test needs from the test bed's registry. When the test bed simulates
a GPU host, the private engine gets the same stub ``nvidia-container-runtime-hook`` on its PATH.

Use the ``private_engine`` fixture (tests/conftest.py): point ngcws at it with
``env={"DOCKER_HOST": engine.host}`` and talk to it from the test with ``engine.engine()``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

STATE = Path(os.environ.get("NGCWS_TESTBED_STATE", "/var/lib/ngcws-testbed"))


class PrivateEngine:
    def __init__(
        self,
        root: Path | None = None,
        gpu_stub: bool = True,
        hook_dir: Path | None = None,
        data_root: Path | None = None,
        args: tuple[str, ...] = (),
    ) -> None:
        """``gpu_stub=False``: an engine without NVIDIA support, as on a host without the toolkit;
        ``hook_dir``: a folder with a hook of the test's own, first on dockerd's PATH;
        ``data_root``: where images and containers live (e.g. a small filesystem); ``args``: more flags.
        """
        self.gpu_stub = gpu_stub
        self.hook_dir = hook_dir
        tag = uuid.uuid4().hex[:8]
        self.root = root or STATE / "private" / tag
        self.data_root = data_root or self.root / "data"
        self.args = args
        self.exec_root = Path(f"/run/ngcws-pe-{tag}")  # short: unix socket paths are limited
        self.socket = self.exec_root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = self.root / "dockerd.log"
        # dockerd with --bridge=none deletes docker0, the shared engine's bridge: give each
        # private engine a bridge of its own instead.
        self.bridge = f"ngcwspe{tag[:6]}"
        self.process: subprocess.Popen[bytes] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """Start dockerd (again) and wait until it answers."""
        if self.answers():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (self.root / "docker.pid").unlink()
        if not Path(f"/sys/class/net/{self.bridge}").exists():
            subprocess.run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], check=True)
            subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        stub = STATE / "gpu-stub"
        env = dict(os.environ)
        if self.hook_dir is not None:
            env["PATH"] = f"{self.hook_dir}:{env.get('PATH', '')}"
        elif stub.is_dir() and self.gpu_stub:
            env["PATH"] = f"{stub}:{env.get('PATH', '')}"
        env.pop("DOCKER_HOST", None)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd",
                    f"--host={self.host}",
                    f"--data-root={self.data_root}",
                    f"--exec-root={self.exec_root}",
                    f"--pidfile={self.root / 'docker.pid'}",
                    f"--bridge={self.bridge}",
                    "--iptables=false",
                    "--ip-masq=false",
                    "--ip6tables=false" if _supports("--ip6tables") else "--ipv6=false",
                    *self.args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.25)
        raise RuntimeError(f"private dockerd did not answer; its log:\n{self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to dockerd (SIGKILL by default: the engine dies mid-flight) and reap it.

        A SIGKILLed dockerd leaves its managed containerd running, and a new dockerd cannot start
        beside it: the engine's crash takes its containerd along, as a host's reboot or a crashed
        service would. Containers' shims survive and are found again at the next start.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        if sig == signal.SIGKILL:
            pidfile = self.exec_root / "containerd" / "containerd.pid"
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            for pid, cmdline in _processes():
                if cmdline.startswith("containerd ") and str(self.exec_root) in cmdline:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            # Where nothing reaps the orphan, its pid lingers as a zombie that dockerd would take
            # for a live containerd: forget it.
            with contextlib.suppress(FileNotFoundError):
                pidfile.unlink()
            time.sleep(0.2)

    def stop(self) -> None:
        """A clean stop, as ``systemctl stop docker`` does it."""
        self.kill(signal.SIGTERM)
        if self.process is not None and self.process.poll() is None:
            self.kill(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        result = subprocess.run(
            ["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=20,
            check=False,
        )
        return result.returncode == 0

    # --- content ------------------------------------------------------------------------------

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The docker CLI, pointed at this engine."""
        return subprocess.run(
            ["docker", "-H", self.host, *args], capture_output=True, text=True, timeout=timeout, check=check
        )

    def pull(self, image: str) -> None:
        self.docker("pull", "-q", image)

    def engine(self):  # type: ignore[no-untyped-def]
        """An ngcws Engine talking to this dockerd."""
        from ngcws.engine import Engine
        from ngcws.engine.transport import Transport

        return Engine(Transport(self.host))

    # --- cleanup ------------------------------------------------------------------------------

    def destroy(self) -> None:
        """Stop dockerd, its containerd and shims; unmount and remove everything it wrote."""
        if self.answers():
            with contextlib.suppress(Exception):
                ids = self.docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, check=False)
        self.stop()
        # A killed dockerd leaves its containerd (and shims) behind: they are ours by exec root.
        for pid, cmdline in _processes():
            if str(self.exec_root) in cmdline or str(self.root) in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        for mount in reversed(_mounts_under(self.data_root, self.root, self.exec_root)):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)


def _supports(flag: str) -> bool:
    out = subprocess.run(["dockerd", "--help"], capture_output=True, text=True, check=False).stdout
    return flag in out


def _processes() -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        found.append((int(entry.name), cmdline))
    return found


def _mounts_under(*roots: Path) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 1 and any(fields[1].startswith(str(root)) for root in roots):
            mounts.append(fields[1])
    return mounts
