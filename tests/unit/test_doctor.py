"""Doctor's verdicts as tables: each check is a pure function of the facts."""

from __future__ import annotations

from typing import Any

import pytest

from ngcws import doctor as D
from ngcws.explain import explain_start_failure
from ngcws.hostinfo import DaemonFacts, Gpu, HostInfo

A100 = Gpu(0, "NVIDIA A100-SXM4-80GB", "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f", "8.0", 81920, 0, 0)
P100 = Gpu(1, "Tesla P100-PCIE-16GB", "GPU-7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0e", "6.0", 16280, 0, 0)
RTX = Gpu(0, "NVIDIA GeForce RTX 3090", "GPU-11111111-2222-3333-4444-555555555555", "8.6", 24576, 0, 0)
NGC_2308 = {"CUDA_VERSION": "12.2.1.009", "CUDA_DRIVER_VERSION": "535.86.10", "NVIDIA_REQUIRE_CUDA": "cuda>=9.0"}


def host(driver: str | None = "535.104.05", cuda: str | None = "12.2", gpus: tuple[Gpu, ...] = (A100,)) -> HostInfo:
    return HostInfo("Ubuntu 22.04", "x86_64", "5.15.0", driver, "proc", cuda, gpus)


@pytest.mark.parametrize(("api", "verdict"), [("1.41", D.PASS), ("1.40", D.PASS), ("1.39", D.WARN), ("1.50", D.PASS)])
def test_engine_version(api: str, verdict: str) -> None:
    assert D.check_engine({"Version": "x", "ApiVersion": api}, None, None).verdict == verdict


def test_engine_unreachable_keeps_the_hint() -> None:
    check = D.check_engine(None, "permission denied", "Add yourself to the docker group")
    assert (check.verdict, check.fix) == (D.FAIL, "Add yourself to the docker group")


@pytest.mark.parametrize(("kernel", "verdict"), [("3.10.0-1160.el7", D.FAIL), ("3.11.0", D.PASS), ("6.1.0", D.PASS)])
def test_kernel_newer_than_3_10(kernel: str, verdict: str) -> None:
    assert D.check_host(HostInfo("CentOS", "x86_64", kernel)).verdict == verdict


def test_no_driver_fails_only_when_a_workspace_wants_gpus() -> None:
    assert D.check_driver(host(driver=None), True, True).verdict == D.FAIL
    assert D.check_driver(host(driver=None), False, True).verdict == D.WARN
    assert D.check_driver(host(), True, True).verdict == D.PASS
    assert D.check_driver(host(driver=None), True, False).verdict == D.SKIP  # remote engine


def test_gpus_are_listed_with_uuid_and_compute_capability() -> None:
    check = D.check_gpus(host(gpus=(A100, P100)), True)
    assert check.verdict == D.PASS and "2 GPUs" in check.summary
    assert check.detail is not None and A100.uuid in check.detail and "compute capability 6.0" in check.detail


@pytest.mark.parametrize(
    ("env", "the_host", "verdict", "words"),
    [
        (NGC_2308, host(), D.PASS, "built for driver 535.86.10"),
        (NGC_2308, host("525.85.12", "12.0"), D.WARN, "forward compatibility"),  # data-center GPU
        (NGC_2308, host("525.85.12", "12.0", (RTX,)), D.FAIL, "only on data-center GPUs"),
        ({**NGC_2308, "NVIDIA_REQUIRE_CUDA": "cuda>=12.4"}, host(), D.FAIL, "requires 'cuda>=12.4'"),
        ({**NGC_2308, "NVIDIA_REQUIRE_CUDA": "cuda>=12.4", "NVIDIA_DISABLE_REQUIRE": "true"}, host(), D.PASS, ""),
        ({"CUDA_VERSION": "12.2"}, host(), D.PASS, "names no minimum driver"),
        (None, host(), D.SKIP, "not present locally"),
        (NGC_2308, host(driver=None), D.SKIP, "no host driver"),
    ],
)
def test_driver_against_the_image(env: Any, the_host: HostInfo, verdict: str, words: str) -> None:
    check = D.check_image_driver("train", "nvcr.io/nvidia/pytorch:23.08-py3", env, the_host)
    assert check.verdict == verdict and words in check.summary, check


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cuda>=9.0", True),
        ("cuda>=12.2", True),
        ("cuda>=12.3", False),
        ("cuda>=12.3 cuda>=11.0,driver>=450", True),  # OR of terms, AND inside one
        ("cuda>=11.0,driver>=536", False),
        ("cuda>=12.0 brand=tesla,driver>=470", True),
        ("brand=tesla,driver>=600", False),
        ("arch=8.0", None),  # not evaluated here: the host cannot say
    ],
)
def test_nvidia_require_language(expression: str, expected: bool | None) -> None:
    assert D.requirement_satisfied(expression, host()) is expected


@pytest.mark.parametrize(
    ("image", "env", "gpus", "verdict"),
    [
        ("nvcr.io/nvidia/pytorch:23.08-py3", {"NVIDIA_PYTORCH_VERSION": "23.08"}, (P100,), D.PASS),
        ("nvcr.io/nvidia/pytorch:25.03-py3", {}, (P100,), D.FAIL),
        ("nvcr.io/nvidia/pytorch:25.03-py3", {}, (A100,), D.PASS),
        ("example/cuda13:1", {"CUDA_VERSION": "13.0.0"}, (P100,), D.FAIL),
        ("example/other:1", {}, (P100,), D.SKIP),
    ],
)
def test_compute_capability_against_the_release(image: str, env: dict[str, str], gpus: Any, verdict: str) -> None:
    assert D.check_compute_capability("train", image, env, host(gpus=gpus), "all").verdict == verdict


def test_compute_capability_only_of_the_chosen_gpus() -> None:
    both = host(gpus=(A100, P100))
    assert D.check_compute_capability("t", "nvcr.io/nvidia/pytorch:25.03-py3", {}, both, ["0"]).verdict == D.PASS
    assert D.check_compute_capability("t", "nvcr.io/nvidia/pytorch:25.03-py3", {}, both, ["1"]).verdict == D.FAIL


@pytest.mark.parametrize(
    ("essence", "verdict"),
    [
        ({"shm_size": None, "ipc": None}, D.WARN),
        ({"shm_size": 64 * 2**20, "ipc": None}, D.WARN),
        ({"shm_size": 2**30, "ipc": None}, D.PASS),
        ({"shm_size": None, "ipc": "host"}, D.PASS),
    ],
)
def test_shm(essence: dict[str, Any], verdict: str) -> None:
    assert D.check_shm("train", essence).verdict == verdict


@pytest.mark.parametrize(
    ("gpus", "env", "verdict"),
    [
        ("none", {"PATH": "/bin"}, D.PASS),  # busybox without GPUs: 64 MB is fine
        ("none", None, D.PASS),  # image not local: nothing says it matters
        ("none", {"NVIDIA_PYTORCH_VERSION": "23.08"}, D.WARN),
        ("none", {"PYTORCH_VERSION": "2.1"}, D.WARN),
        ("none", {"CUDA_VERSION": "12.2"}, D.WARN),
        (["0"], {"PATH": "/bin"}, D.WARN),
    ],
)
def test_shm_matters_for_gpu_workspaces_and_deep_learning_images(gpus: Any, env: Any, verdict: str) -> None:
    assert D.check_shm("train", {"gpus": gpus, "shm_size": None, "ipc": None}, env).verdict == verdict


def test_host_memlock_is_reported_without_a_workspace_asking() -> None:
    refused = D.check_host_memlock(
        "OCI runtime create failed: error setting rlimit type 8: operation not permitted", None
    )
    assert refused.verdict == D.WARN and refused.workspace is None and "cannot be honoured" in refused.summary
    assert refused.fix and "memlock" in refused.fix
    assert D.check_host_memlock("", None).verdict == D.PASS


UNLIMITED = {"ulimits": {"memlock": {"soft": -1, "hard": -1}}}
REFUSED = "OCI runtime create failed: error setting rlimits for ready process: error setting rlimit type 8: operation not permitted: unknown"


@pytest.mark.parametrize(
    ("essence", "probe", "daemon", "verdict"),
    [
        (UNLIMITED, "", None, D.PASS),
        (UNLIMITED, REFUSED, None, D.FAIL),
        (UNLIMITED, None, DaemonFacts(1, 8388608, False, ""), D.FAIL),
        (UNLIMITED, None, DaemonFacts(1, 8388608, True, ""), D.PASS),  # CAP_SYS_RESOURCE may raise it
        (UNLIMITED, None, DaemonFacts(1, -1, False, ""), D.PASS),
        ({"ulimits": {"memlock": {"soft": 4096, "hard": 4096}}}, None, DaemonFacts(1, 8388608, False, ""), D.PASS),
        (UNLIMITED, None, None, D.WARN),
    ],
)
def test_memlock_prediction(essence: dict[str, Any], probe: str | None, daemon: Any, verdict: str) -> None:
    check = D.check_memlock("train", essence, probe, daemon)
    assert check is not None and check.verdict == verdict
    if verdict == D.FAIL:
        assert check.fix and "memlock" in check.fix


def test_no_memlock_no_check() -> None:
    assert D.check_memlock("train", {"ulimits": {}}, None, None) is None


@pytest.mark.parametrize(
    ("registry", "login", "key", "present", "verdict", "words"),
    [
        ("nvcr.io", False, True, False, D.PASS, "NGC_API_KEY"),
        ("nvcr.io", True, False, False, D.PASS, "logged in"),
        ("nvcr.io", False, False, False, D.WARN, "$oauthtoken"),
        ("nvcr.io", False, False, True, D.PASS, "already local"),
        ("localhost:5001", False, True, False, D.WARN, "docker login localhost:5001"),
    ],
)
def test_credentials(registry: str, login: bool, key: bool, present: bool, verdict: str, words: str) -> None:
    check = D.check_credentials("train", registry, login, key, present)
    assert check.verdict == verdict and words in (check.summary + (check.fix or ""))


@pytest.mark.parametrize(
    ("registry", "key", "present", "said", "verdict", "words"),
    [
        (
            "localhost:5001",
            False,
            False,
            "rejected",
            D.FAIL,
            "stored login (docker login) was rejected by the registry",
        ),
        ("localhost:5001", False, False, "rejected", D.FAIL, "log in again: `docker login localhost:5001 -u USER`"),
        ("localhost:5001", False, True, "rejected", D.WARN, "only a new pull needs it"),
        ("nvcr.io", True, False, "rejected", D.FAIL, "check NGC_API_KEY"),
        ("localhost:5001", False, False, "ok", D.PASS, "logged in (docker login); the registry accepted it"),
        ("localhost:5001", False, False, "not verified", D.WARN, "logged in (docker login); not verified (down)"),
        ("localhost:5001", False, True, "not verified", D.PASS, "not verified (down)"),
        ("localhost:5000", False, False, "anonymous", D.PASS, "asks for no login"),
    ],
)
def test_credentials_as_the_registry_judged_them(
    registry: str, key: bool, present: bool, said: str, verdict: str, words: str
) -> None:
    check = D.check_credentials("train", registry, not key, key, present, said, "down" if said != "ok" else "")
    assert check.verdict == verdict and words in (check.summary + "; " + (check.fix or "")), check


@pytest.mark.parametrize(
    ("support", "mode", "verdict", "words"),
    [
        (D.GpuSupport(probe=""), "device-requests", D.PASS, "accepts GPU requests"),
        (
            D.GpuSupport(probe='could not select device driver "" with capabilities: [[gpu]]'),
            "device-requests",
            D.FAIL,
            "nvidia-container-toolkit",
        ),
        (D.GpuSupport(probe="unsatisfied condition: cuda>=12.4, please update"), "device-requests", D.FAIL, "update"),
        (
            D.GpuSupport(hooks_on_daemon_path={"nvidia-container-runtime-hook": None}),
            "device-requests",
            D.FAIL,
            "restart",
        ),
        (
            D.GpuSupport(hooks_on_daemon_path={"nvidia-cdi-hook": "/usr/bin/nvidia-cdi-hook"}),
            "device-requests",
            D.PASS,
            "",
        ),
        (D.GpuSupport(), "device-requests", D.WARN, "ngcws pull"),
        (D.GpuSupport(runtimes=("nvidia", "runc")), "runtime", D.PASS, ""),
        (D.GpuSupport(runtimes=("runc",)), "runtime", D.FAIL, "nvidia-ctk runtime configure"),
        (D.GpuSupport(cdi_spec_dirs=None), "cdi", D.FAIL, "upgrade Docker"),
        (D.GpuSupport(cdi_spec_dirs=()), "cdi", D.FAIL, '"cdi": true'),
        (D.GpuSupport(cdi_spec_dirs=("/etc/cdi",)), "cdi", D.FAIL, "nvidia-ctk cdi generate"),
        (D.GpuSupport(cdi_spec_dirs=("/etc/cdi",), cdi_specs=("/etc/cdi/nvidia.yaml",)), "cdi", D.PASS, ""),
    ],
)
def test_engine_gpu_support(support: D.GpuSupport, mode: str, verdict: str, words: str) -> None:
    check = D.check_gpu_support(support, mode)
    assert check.verdict == verdict and words in (check.summary + (check.fix or "")), check


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ('could not select device driver "" with capabilities: [[gpu]]', "nvidia-container-toolkit"),
        (
            'could not select device driver "cdi" with capabilities: []',
            "upgrade Docker to 25 or later, or use `gpu_request: device-requests`",
        ),
        ("unresolvable CDI devices nvidia.com/gpu=0", "nvidia-ctk cdi generate"),
        ("error setting rlimit type 8: operation not permitted", "memlock"),
        ("nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.8, please update", "driver"),
        (
            "driver failed programming external connectivity: Bind for 0.0.0.0:8888 failed: port is already allocated",
            "ports",
        ),
        ("write /var/lib/docker/tmp/x: no space left on device", "full"),
        ("Unknown runtime specified nvidia", "nvidia-ctk runtime configure"),
        (
            "invoking the NVIDIA Container Runtime Hook directly (e.g. specifying the docker --gpus flag) is not supported",
            "gpu_request",
        ),
        (
            "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container "
            "process: unable to apply caps: operation not permitted: unknown",
            "forbids the capabilities",
        ),
        ("something else entirely", None),
    ],
)
def test_engine_messages_are_explained(message: str, words: str | None) -> None:
    fix = explain_start_failure(message)
    assert (fix is None) if words is None else (fix is not None and words in fix)
