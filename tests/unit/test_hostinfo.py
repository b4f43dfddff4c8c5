"""Discovery against a fake /proc tree and a fake nvidia-smi on PATH (no GPU on this machine).

The samples follow the formats of the real sources (the NVIDIA kernel module's version file,
``nvidia-smi --query-gpu ... --format=csv,noheader,nounits``, ``--query-compute-apps``); they are
written by hand, not captured. ``tests/fixtures/hosts/*.json`` holds ``ngcws doctor --format json``
outputs: a file saved on a real GPU host can be dropped in there and is re-parsed by the last test.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ngcws.hostinfo import (
    GPU_FIELDS,
    GPU_FIELDS_OLD,
    Host,
    HostInfo,
    daemon_facts,
    parse_cgroup_container,
    parse_proc_version,
    parse_smi_apps,
    parse_smi_gpus,
    run_command,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hosts"
PROC_PROPRIETARY = (
    "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n"
    "GCC version:  gcc version 11.4.0 (Ubuntu 11.4.0-1ubuntu1~22.04)\n"
)
PROC_OPEN = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build  (dvs-builder@U16-T02-35-3)"
    "  Tue Mar  5 22:15:33 UTC 2024\nGCC version:  gcc version 12.3.0 (Ubuntu 12.3.0-1ubuntu1~22.04)\n"
)
UUID0 = "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"
UUID1 = "GPU-7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0e"
SMI_GPUS = (
    f"0, NVIDIA A100-SXM4-80GB, {UUID0}, 535.104.05, 8.0, 81920, 12034, 87, 00000000:07:00.0\n"
    f"1, NVIDIA A100-SXM4-80GB, {UUID1}, 535.104.05, 8.0, 81920, 4, 0, 00000000:0F:00.0\n"
)
SMI_HEADER = """Tue Nov 28 22:00:00 2026
+---------------------------------------------------------------------------------------+
| NVIDIA-SMI 535.104.05             Driver Version: 535.104.05   CUDA Version: 12.2     |
|-----------------------------------------+----------------------+----------------------+
"""
CONTAINER = "4f1c" + "0" * 60


def test_proc_version_proprietary_and_open_modules() -> None:
    assert parse_proc_version(PROC_PROPRIETARY) == "535.104.05"
    assert parse_proc_version(PROC_OPEN) == "550.54.15"
    assert parse_proc_version("something else\n") is None


def test_smi_gpus_with_unavailable_values() -> None:
    text = (
        SMI_GPUS + f"2, Tesla T4, {UUID0[:-1]}9, 535.104.05, [N/A], 15360, [N/A], [Not Supported], 00000000:3B:00.0\n"
    )
    gpus, driver = parse_smi_gpus(text)
    assert driver == "535.104.05"
    assert [(g.index, g.compute_capability, g.memory_used_mib, g.utilization_pct) for g in gpus] == [
        (0, "8.0", 12034, 87),
        (1, "8.0", 4, 0),
        (2, None, None, None),
    ]
    assert gpus[0].name == "NVIDIA A100-SXM4-80GB" and gpus[0].uuid == UUID0 and gpus[0].memory_total_mib == 81920


def test_smi_gpus_refuses_a_row_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="expected 9 fields"):
        parse_smi_gpus("0, A100\n")


def test_smi_apps_and_process_names_with_commas() -> None:
    apps = parse_smi_apps(f"{UUID0}, 4242, python, 11020\n{UUID1}, 77, /usr/bin/a,b, [N/A]\n")
    assert [(a.gpu_uuid, a.pid, a.name, a.used_memory_mib) for a in apps] == [
        (UUID0, 4242, "python", 11020),
        (UUID1, 77, "/usr/bin/a,b", None),
    ]


@pytest.mark.parametrize(
    "cgroup",
    [
        f"12:memory:/docker/{CONTAINER}\n11:cpu:/docker/{CONTAINER}\n",  # cgroup v1, cgroupfs
        f"0::/system.slice/docker-{CONTAINER}.scope\n",  # cgroup v2, systemd
    ],
)
def test_cgroup_names_the_container(cgroup: str) -> None:
    assert parse_cgroup_container(cgroup) == CONTAINER
    assert parse_cgroup_container("0::/user.slice/session-1.scope\n") is None


def fake_host(tmp_path: Path, smi: str | None, proc_version: str | None = PROC_PROPRIETARY) -> Host:
    """A fake root (proc tree) and, if ``smi`` is given, a fake nvidia-smi (a shell script) on PATH."""
    root = tmp_path / "root"
    (root / "proc" / "sys" / "kernel").mkdir(parents=True)
    (root / "proc" / "sys" / "kernel" / "osrelease").write_text("5.15.0-91-generic\n")
    (root / "etc").mkdir()
    (root / "etc" / "os-release").write_text('NAME="Ubuntu"\nPRETTY_NAME="Ubuntu 22.04.3 LTS"\n')
    if proc_version is not None:
        (root / "proc" / "driver" / "nvidia").mkdir(parents=True)
        (root / "proc" / "driver" / "nvidia" / "version").write_text(proc_version)
    (root / "proc" / "4242").mkdir()
    (root / "proc" / "4242" / "cgroup").write_text(f"0::/system.slice/docker-{CONTAINER}.scope\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if smi is not None:
        script = bin_dir / "nvidia-smi"
        script.write_text(smi)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return Host(root, use_nvml=False)


SMI_SCRIPT = f"""#!/bin/sh
case "$1" in
  --query-gpu=*) printf '%s' '{SMI_GPUS}' ;;
  --query-compute-apps=*) printf '%s\\n' '{UUID0}, 4242, python, 11020' ;;
  "") printf '%s' '{SMI_HEADER}' ;;
  *) exit 2 ;;
esac
"""


def test_discovery_from_a_fake_proc_tree_and_a_fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = fake_host(tmp_path, SMI_SCRIPT)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    info = host.discover()
    assert info.problems == ()
    assert (info.os_name, info.kernel) == ("Ubuntu 22.04.3 LTS", "5.15.0-91-generic")
    assert (info.driver_version, info.driver_source, info.cuda_driver_version) == ("535.104.05", "proc", "12.2")
    assert [g.uuid for g in info.gpus] == [UUID0, UUID1]
    assert info.gpu(UUID1.lower()) == info.gpus[1] and info.gpu("0") == info.gpus[0]
    [app] = info.processes
    assert (app.pid, app.name, app.container_id) == (4242, "python", CONTAINER)
    assert info.raw["smi_gpus"] == SMI_GPUS and info.raw["proc_version"] == PROC_PROPRIETARY


def test_old_driver_without_compute_cap_is_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old_row = f"0, Tesla V100-SXM2-16GB, {UUID0}, 470.57.02, 16160, 0, 0, 00000000:07:00.0"
    script = f"""#!/bin/sh
case "$1" in
  --query-gpu={",".join(GPU_FIELDS)}) echo 'Field "compute_cap" is not a valid field to query.'; exit 2 ;;
  --query-gpu={",".join(GPU_FIELDS_OLD)}) echo '{old_row}' ;;
  *) exit 2 ;;
esac
"""
    host = fake_host(tmp_path, script, proc_version=None)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    info = host.discover()
    assert (info.driver_version, info.driver_source) == ("470.57.02", "nvidia-smi")
    assert [(g.name, g.compute_capability) for g in info.gpus] == [("Tesla V100-SXM2-16GB", None)]


def test_no_driver_no_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = fake_host(tmp_path, None, proc_version=None)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    info = host.discover()
    assert (info.driver_version, info.gpus, info.problems) == (None, (), ())


def test_a_failing_nvidia_smi_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = (
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'\nexit 9\n"
    )
    host = fake_host(tmp_path, script, proc_version=None)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    info = host.discover()
    assert info.driver_version is None
    assert "could not communicate with the NVIDIA driver" in info.problems[0]


def test_the_runner_reports_a_missing_program() -> None:
    assert run_command(["ngcws-no-such-program"]) == (127, "")


def test_daemon_facts_from_a_fake_proc_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = root / "proc" / "900"
    proc.mkdir(parents=True)
    (proc / "cmdline").write_text("/usr/bin/dockerd\0--containerd=/run/containerd/containerd.sock\0")
    (proc / "limits").write_text(
        "Limit                     Soft Limit           Hard Limit           Units     \n"
        "Max locked memory         8388608              8388608              bytes     \n"
    )
    (proc / "status").write_text("Name:\tdockerd\nCapEff:\t000001fffeffffff\n")
    (proc / "environ").write_text("HOME=/root\0PATH=/opt/hook:/usr/bin\0")
    other = root / "proc" / "901"
    other.mkdir()
    (other / "cmdline").write_text("dockerd\0--host=unix:///run/other.sock\0")
    facts = daemon_facts(Host(root), "/var/run/docker.sock")
    assert facts is not None
    assert (facts.pid, facts.memlock_hard, facts.cap_sys_resource, facts.path) == (
        900,
        8388608,
        False,
        "/opt/hook:/usr/bin",
    )
    other_facts = daemon_facts(Host(root), "/run/other.sock")
    assert other_facts is not None and other_facts.pid == 901
    assert daemon_facts(Host(root), "/run/none.sock") is None


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_saved_doctor_output_reparses_to_the_same_host(fixture: Path) -> None:
    """A `ngcws doctor --format json` file: its raw texts parse to the host facts it reports."""
    saved = HostInfo.from_json(json.loads(fixture.read_text())["host"])
    raw = saved.raw
    if "proc_version" in raw:
        assert parse_proc_version(raw["proc_version"]) == saved.driver_version or saved.driver_source != "proc"
    if "smi_gpus" in raw:
        gpus, _ = parse_smi_gpus(raw["smi_gpus"], tuple(raw["smi_fields"].split(",")))
        assert gpus == saved.gpus
    if "smi_apps" in raw:
        assert [(a.pid, a.name) for a in parse_smi_apps(raw["smi_apps"])] == [(a.pid, a.name) for a in saved.processes]


def test_nvml_values_are_converted(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML's answers (as nvidia-ml-py returns them; no driver here, so the module is a stand-in)."""
    import sys
    import types

    calls: list[str] = []
    fake = types.ModuleType("pynvml")
    memory = types.SimpleNamespace(total=85899345920, used=12618563584)
    fake.nvmlInit = lambda: calls.append("init")  # type: ignore[attr-defined]
    fake.nvmlShutdown = lambda: calls.append("shutdown")  # type: ignore[attr-defined]
    fake.nvmlSystemGetDriverVersion = lambda: b"535.104.05"  # type: ignore[attr-defined]  # bytes before 11.5
    fake.nvmlSystemGetCudaDriverVersion = lambda: 12020  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: f"h{i}"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCudaComputeCapability = lambda h: (9, 0)  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda h: memory  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=42)  # type: ignore[attr-defined]
    fake.nvmlDeviceGetName = lambda h: "NVIDIA H100 80GB HBM3"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUUID = lambda h: UUID0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    from ngcws.hostinfo import nvml_discover

    found = nvml_discover()
    assert found is not None
    gpus, driver, cuda = found
    assert (driver, cuda) == ("535.104.05", "12.2")
    assert [(g.name, g.compute_capability, g.memory_total_mib, g.memory_used_mib, g.utilization_pct) for g in gpus] == [
        ("NVIDIA H100 80GB HBM3", "9.0", 81920, 12034, 42)
    ]
    assert calls == ["init", "shutdown"]
