"""Host discovery: OS, kernel, the NVIDIA driver and its GPUs, and what runs on them.

Three sources, each optional: ``/proc/driver/nvidia/version`` (the kernel module's version),
``nvidia-smi --query-gpu=... --format=csv,noheader,nounits`` (GPUs, memory, utilisation, compute
capability) with ``--query-compute-apps`` (processes), and NVML through nvidia-ml-py when it is
importable. Discovery is injectable: a :class:`Host` takes a root folder (a fake ``/proc`` tree in
tests) and a command runner (a fake ``nvidia-smi`` on PATH), and keeps the raw texts it read, so
``ngcws doctor --format json`` saved on a real GPU host is a fixture the parsers can be fed later.
The parsers are pure functions.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: ``(argv) -> (exit status, stdout)``; an absent program is exit status 127.
Runner = Callable[[list[str]], tuple[int, str]]

GPU_FIELDS = (
    "index", "name", "uuid", "driver_version", "compute_cap", "memory.total", "memory.used",
    "utilization.gpu", "pci.bus_id",
)  # fmt: skip
#: Drivers before R510 do not know ``compute_cap``: asked again without it.
GPU_FIELDS_OLD = tuple(f for f in GPU_FIELDS if f != "compute_cap")
APP_FIELDS = ("gpu_uuid", "pid", "process_name", "used_memory")


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    uuid: str
    compute_capability: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    utilization_pct: int | None = None
    pci_bus_id: str | None = None


@dataclass(frozen=True)
class GpuProcess:
    gpu_uuid: str
    pid: int
    name: str
    used_memory_mib: int | None = None
    container_id: str | None = None  # the Docker container the process runs in, when the host says


@dataclass(frozen=True)
class HostInfo:
    """What discovery found; ``raw`` keeps the texts it was parsed from (fixtures for the parsers)."""

    os_name: str = ""
    arch: str = ""
    kernel: str = ""
    driver_version: str | None = None
    driver_source: str | None = None  # proc | nvidia-smi | nvml
    cuda_driver_version: str | None = None  # the CUDA version the driver supports (nvidia-smi / NVML)
    gpus: tuple[Gpu, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    problems: tuple[str, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostInfo:
        return cls(
            **{
                **data,
                "gpus": tuple(Gpu(**g) for g in data.get("gpus", ())),
                "processes": tuple(GpuProcess(**p) for p in data.get("processes", ())),
                "problems": tuple(data.get("problems", ())),
                "raw": dict(data.get("raw", {})),
            }
        )

    def gpu(self, ident: str) -> Gpu | None:
        """A GPU by index or UUID."""
        for gpu in self.gpus:
            if ident == str(gpu.index) or ident.lower() == gpu.uuid.lower():
                return gpu
        return None


# --- parsers (pure) -----------------------------------------------------------------------------

_PROC_VERSION = re.compile(r"^NVRM version:.*?\s(\d+\.\d+(?:\.\d+)?)\s", re.MULTILINE)
_SMI_CUDA = re.compile(r"CUDA Version:\s*(\d+\.\d+)")


def parse_proc_version(text: str) -> str | None:
    """``/proc/driver/nvidia/version`` → the kernel module's version, e.g. ``535.104.05``."""
    match = _PROC_VERSION.search(text)
    return match.group(1) if match else None


def parse_smi_cuda_version(text: str) -> str | None:
    """The ``CUDA Version: 12.2`` of plain ``nvidia-smi``'s header."""
    match = _SMI_CUDA.search(text)
    return match.group(1) if match else None


def _value(text: str) -> str | None:
    text = text.strip()
    if not text or text.startswith("[") or text in ("N/A", "Not Supported"):
        return None  # [N/A], [Not Supported], [Insufficient Permissions]
    return text


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None


def parse_smi_gpus(text: str, fields: tuple[str, ...] = GPU_FIELDS) -> tuple[tuple[Gpu, ...], str | None]:
    """``nvidia-smi --query-gpu=FIELDS --format=csv,noheader,nounits`` → (GPUs, driver version)."""
    gpus = []
    driver = None
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(fields):
            raise ValueError(f"expected {len(fields)} fields from nvidia-smi, got {line!r}")
        row = {name: _value(cell) for name, cell in zip(fields, cells, strict=True)}
        index = _int(row["index"])
        if index is None:
            raise ValueError(f"nvidia-smi gave no GPU index: {line!r}")
        driver = driver or row.get("driver_version")
        gpus.append(
            Gpu(
                index=index,
                name=row["name"] or "",
                uuid=row["uuid"] or "",
                compute_capability=row.get("compute_cap"),
                memory_total_mib=_int(row["memory.total"]),
                memory_used_mib=_int(row["memory.used"]),
                utilization_pct=_int(row["utilization.gpu"]),
                pci_bus_id=row.get("pci.bus_id"),
            )
        )
    return tuple(gpus), driver


def parse_smi_apps(text: str) -> tuple[GpuProcess, ...]:
    """``nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory ...`` → processes."""
    out = []
    for line in text.splitlines():
        if not line.strip() or "No running" in line:
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < len(APP_FIELDS):
            raise ValueError(f"expected {len(APP_FIELDS)} fields from nvidia-smi, got {line!r}")
        uuid, pid, *name, memory = cells  # a process name may contain commas
        pid_value = _int(pid)
        if pid_value is None:
            continue
        out.append(GpuProcess(uuid, pid_value, ",".join(name), _int(_value(memory))))
    return tuple(out)


_CONTAINER_IN_CGROUP = re.compile(r"(?:docker[-/]|/docker/)([0-9a-f]{64})")


def parse_cgroup_container(text: str) -> str | None:
    """``/proc/PID/cgroup`` → the Docker container id the process runs in (cgroup v1 and v2)."""
    match = _CONTAINER_IN_CGROUP.search(text)
    return match.group(1) if match else None


def parse_os_release(text: str) -> str:
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.lstrip().startswith("#"))
    return values.get("PRETTY_NAME", values.get("NAME", "")).strip().strip('"')


# --- discovery (I/O, injectable) ---------------------------------------------------------------


def run_command(argv: list[str]) -> tuple[int, str]:
    """The default runner: the program from PATH, 20 s at most, stdout only."""
    program = shutil.which(argv[0])
    if program is None:
        return 127, ""
    import subprocess  # here, not above: ``ngcws ps`` on a host without nvidia-smi runs nothing

    try:
        done = subprocess.run(
            [program, *argv[1:]], capture_output=True, text=True, timeout=20, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, done.stdout if done.returncode == 0 else (done.stdout + done.stderr)


class Host:
    """Discovery on one host: ``root`` is ``/`` (or a fake tree), ``run`` runs its programs."""

    def __init__(self, root: Path | str = "/", run: Runner = run_command, use_nvml: bool = True) -> None:
        self.root = Path(root)
        self.run = run
        self.use_nvml = use_nvml

    def read(self, path: str) -> str | None:
        try:
            return (self.root / path.lstrip("/")).read_text(errors="replace")
        except OSError:
            return None

    def discover(self, processes: bool = True) -> HostInfo:
        raw: dict[str, str] = {}
        problems: list[str] = []
        uname = os.uname()  # platform.uname() without importing platform: the same fields
        os_release = self.read("/etc/os-release")
        kernel = (self.read("/proc/sys/kernel/osrelease") or uname.release).strip()
        proc_text = self.read("/proc/driver/nvidia/version")
        driver = source = None
        if proc_text is not None:
            raw["proc_version"] = proc_text
            driver = parse_proc_version(proc_text)
            source = "proc" if driver else None
        gpus: tuple[Gpu, ...] = ()
        cuda = None
        apps: tuple[GpuProcess, ...] = ()
        status, text = self.run(["nvidia-smi", f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,noheader,nounits"])
        fields: tuple[str, ...] = GPU_FIELDS
        if status != 0 and "compute_cap" in text:
            fields = GPU_FIELDS_OLD
            status, text = self.run(["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"])
        if status == 0:
            raw["smi_gpus"] = text
            raw["smi_fields"] = ",".join(fields)
            try:
                gpus, smi_driver = parse_smi_gpus(text, fields)
            except ValueError as exc:
                problems.append(f"nvidia-smi: {exc}")
                smi_driver = None
            if smi_driver and not driver:
                driver, source = smi_driver, "nvidia-smi"
            status, header = self.run(["nvidia-smi"])
            if status == 0:
                raw["smi_header"] = "\n".join(header.splitlines()[:6])
                cuda = parse_smi_cuda_version(header)
            if processes:
                status, text = self.run(
                    ["nvidia-smi", f"--query-compute-apps={','.join(APP_FIELDS)}", "--format=csv,noheader,nounits"]
                )
                if status == 0:
                    raw["smi_apps"] = text
                    try:
                        apps = self._with_containers(parse_smi_apps(text))
                    except ValueError as exc:
                        problems.append(f"nvidia-smi: {exc}")
        elif status != 127:
            problems.append(f"nvidia-smi failed (exit {status}): {text.strip()[:300]}")
        if not gpus and self.use_nvml:
            nvml = nvml_discover()
            if nvml is not None:
                gpus, nvml_driver, cuda = nvml
                if nvml_driver and not driver:
                    driver, source = nvml_driver, "nvml"
        return HostInfo(
            os_name=parse_os_release(os_release) if os_release else f"{uname.sysname} {uname.version}",
            arch=uname.machine,
            kernel=kernel,
            driver_version=driver,
            driver_source=source,
            cuda_driver_version=cuda,
            gpus=gpus,
            processes=apps,
            problems=tuple(problems),
            raw=raw,
        )

    def _with_containers(self, apps: tuple[GpuProcess, ...]) -> tuple[GpuProcess, ...]:
        out = []
        for app in apps:
            cgroup = self.read(f"/proc/{app.pid}/cgroup")
            container = parse_cgroup_container(cgroup) if cgroup else None
            out.append(GpuProcess(app.gpu_uuid, app.pid, app.name, app.used_memory_mib, container))
        return tuple(out)


def nvml_discover() -> tuple[tuple[Gpu, ...], str | None, str | None] | None:
    """GPUs, driver and CUDA version through NVML (nvidia-ml-py), or None when it is unavailable."""
    try:
        import pynvml  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError: no driver, no library
        return None
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        cuda_int = int(pynvml.nvmlSystemGetCudaDriverVersion())
        cuda = f"{cuda_int // 1000}.{cuda_int % 1000 // 10}"
        gpus = []
        for index in range(int(pynvml.nvmlDeviceGetCount())):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            util = pynvml.nvmlDeviceGetUtilizationRates(handle)
            gpus.append(
                Gpu(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    compute_capability=f"{major}.{minor}",
                    memory_total_mib=int(memory.total) // 2**20,
                    memory_used_mib=int(memory.used) // 2**20,
                    utilization_pct=int(util.gpu),
                )
            )
        return tuple(gpus), driver, cuda
    except Exception:
        return None
    finally:
        pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def which_on_path(names: tuple[str, ...], path: str | None = None) -> dict[str, str | None]:
    """Where each program is on ``path`` (default: this process's PATH)."""
    search = os.environ.get("PATH", "") if path is None else path
    return {name: shutil.which(name, path=search) for name in names}


# --- the engine's daemon, when it runs on this host ---------------------------------------------

CAP_SYS_RESOURCE = 24


@dataclass(frozen=True)
class DaemonFacts:
    """What limits dockerd (and so its containers) runs with: the memlock prediction's inputs."""

    pid: int
    memlock_hard: int | None  # bytes; -1 = unlimited; None = unknown
    cap_sys_resource: bool
    path: str  # dockerd's PATH: where it looked for the NVIDIA hook at start


def parse_limit(limits_text: str, name: str = "Max locked memory") -> int | None:
    """The hard limit of ``/proc/PID/limits`` line ``name``: bytes, -1 (unlimited), None if absent."""
    for line in limits_text.splitlines():
        if line.startswith(name):
            hard = line[len(name) :].split()[1]
            return -1 if hard == "unlimited" else int(hard)
    return None


def parse_cap_eff(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def daemon_facts(host: Host, socket_path: str) -> DaemonFacts | None:
    """The dockerd serving ``socket_path`` on this host (found by its command line), or None."""
    default = socket_path in ("/var/run/docker.sock", "/run/docker.sock")
    candidates = []
    for entry in (host.root / "proc").glob("[0-9]*"):
        cmdline = host.read(f"/proc/{entry.name}/cmdline")
        if not cmdline:
            continue
        args = cmdline.split("\0")
        if os.path.basename(args[0]) != "dockerd":
            continue
        hosts = [a for a in args if a.startswith(("-H", "--host"))]
        if (socket_path in cmdline) or (default and not hosts):
            candidates.append(int(entry.name))
    if len(candidates) != 1:
        return None
    pid = candidates[0]
    limits = host.read(f"/proc/{pid}/limits") or ""
    status = host.read(f"/proc/{pid}/status") or ""
    environ = host.read(f"/proc/{pid}/environ") or ""
    path = next((v[5:] for v in environ.split("\0") if v.startswith("PATH=")), "")
    return DaemonFacts(
        pid=pid,
        memlock_hard=parse_limit(limits),
        cap_sys_resource=bool(parse_cap_eff(status) & (1 << CAP_SYS_RESOURCE)),
        path=path,
    )
