"""Doctor: is this host ready for the workspaces? Each check is a pure function of facts.

A check gives one :class:`Check`: a verdict (pass / warn / fail / skip), one plain sentence, and
for anything not passing the fix. The facts are gathered elsewhere (:mod:`ngcws.preflight` asks
the engine, :mod:`ngcws.hostinfo` the host), so every verdict is tested as a table here.
The checks that would make container creation or start fail are also run by ``up`` and ``run``
before anything is stopped (preflight).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ngcws.explain import (
    CDI_DISABLED_FIX,
    CDI_ENGINE_FIX,
    CDI_PREDATES,
    CDI_SPEC_FIX,
    INSTALL_TOOLKIT,
    MEMLOCK_FIX,
    explain_start_failure,
    key_phrase,
)
from ngcws.hostinfo import DaemonFacts, HostInfo

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

#: Docker's default /dev/shm (moby daemon/config DefaultShmSize).
DEFAULT_SHM = 64 * 2**20
MIN_API_DEVICE_REQUESTS = (1, 40)  # Docker 19.03: --gpus, HostConfig.DeviceRequests
MIN_API_CDI = (1, 44)  # Docker 25: CDI device requests
NVIDIA_HOOKS = ("nvidia-container-runtime-hook", "nvidia-cdi-hook")
TOOLKIT_PROGRAMS = ("nvidia-container-runtime-hook", "nvidia-cdi-hook", "nvidia-ctk", "nvidia-container-cli")
CDI_DIRS = ("/etc/cdi", "/var/run/cdi")


# Data-center GPUs (CUDA forward compatibility works on these, not on GeForce/most RTX cards).
_DATA_CENTER = re.compile(
    r"\b(Tesla|[ABH]\d{2,3}[A-Z]?|GH\d{3}|GB\d{3}|L4|L40S?|L20|T4|V100|P100|P40|P4|A2|A10G?|A16|A30|A40|DGX)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Check:
    name: str
    verdict: str
    summary: str
    fix: str | None = None
    workspace: str | None = None
    detail: str | None = None  # the data behind the verdict
    engine_message: str | None = None  # what the engine itself said, kept for reference

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def failed(checks: Sequence[Check]) -> list[Check]:
    return [c for c in checks if c.verdict == FAIL]


def version_tuple(text: str | None) -> tuple[int, ...]:
    """``535.104.05`` → (535, 104, 5); anything unparsable → ()."""
    if not text:
        return ()
    parts = re.findall(r"\d+", text.split("-")[0])
    return tuple(int(p) for p in parts)


# --- engine and host ------------------------------------------------------------------------------


def check_endpoint(description: str) -> Check:
    """Which engine ngcws talks to, and what chose it (--context, DOCKER_HOST, DOCKER_CONTEXT, ...)."""
    return Check("endpoint", PASS, description)


def check_engine(version: Mapping[str, Any] | None, error: str | None, hint: str | None, podman: bool = False) -> Check:
    if version is None:
        said = error or "no answer"
        text = said if said.startswith("the Docker engine") else f"the Docker engine does not answer: {said}"
        return Check("engine", FAIL, text, hint or "start Docker")
    server = str(version.get("Version", "?"))
    api = str(version.get("ApiVersion", "?"))
    kind = "Podman (Docker-compatible API)" if podman else "Docker engine"
    summary = f"{kind} {server} (API {api}, {version.get('Os', '?')}/{version.get('Arch', '?')})"
    if version_tuple(api) < MIN_API_DEVICE_REQUESTS:
        return Check(
            "engine",
            WARN,
            summary + " predates --gpus (Docker 19.03, API 1.40): GPUs are asked with --runtime=nvidia",
            "upgrade Docker to 19.03 or later, or keep `gpu_request: runtime` with the nvidia runtime configured",
        )
    return Check("engine", PASS, summary)


def check_host(host: HostInfo) -> Check:
    summary = f"{host.os_name or 'unknown OS'}, {host.arch}, kernel {host.kernel}"
    if version_tuple(host.kernel)[:2] and version_tuple(host.kernel)[:2] <= (3, 10):
        return Check("host", FAIL, summary + ": NGC containers need a kernel newer than 3.10", "upgrade the kernel")
    return Check("host", PASS, summary)


def check_driver(host: HostInfo, gpus_wanted: bool, local: bool) -> Check:
    if not local:
        return Check("driver", SKIP, "the engine is on another host: its driver cannot be seen from here")
    if host.driver_version:
        cuda = f", CUDA {host.cuda_driver_version}" if host.cuda_driver_version else ""
        return Check("driver", PASS, f"NVIDIA driver {host.driver_version}{cuda} (from {host.driver_source})")
    problems = f" ({'; '.join(host.problems)})" if host.problems else ""
    return Check(
        "driver",
        FAIL if gpus_wanted else WARN,
        "no NVIDIA driver found (no /proc/driver/nvidia/version, no nvidia-smi, no NVML)" + problems,
        "install the NVIDIA driver (https://www.nvidia.com/Download/index.aspx), or set `gpus: none`",
    )


def check_gpus(host: HostInfo, local: bool) -> Check:
    if not local or not host.driver_version:
        return Check("gpus", SKIP, "no GPUs can be listed on this host")
    if not host.gpus:
        return Check(
            "gpus",
            WARN,
            "the driver is loaded but lists no GPU",
            "check `nvidia-smi`; the GPU may have fallen off the bus",
        )
    lines = []
    for g in host.gpus:
        memory = f", {g.memory_total_mib / 1024:.0f} GiB" if g.memory_total_mib else ""
        cc = f", compute capability {g.compute_capability}" if g.compute_capability else ""
        lines.append(f"GPU {g.index}: {g.name} ({g.uuid}{cc}{memory})")
    return Check("gpus", PASS, f"{len(host.gpus)} GPU{'s' if len(host.gpus) > 1 else ''}", detail="\n".join(lines))


@dataclass(frozen=True)
class GpuSupport:
    """What the engine says about NVIDIA support."""

    runtimes: tuple[str, ...] = ()
    default_runtime: str = ""
    cdi_spec_dirs: tuple[str, ...] | None = None  # None: the engine predates CDI (API < 1.44)
    cdi_specs: tuple[str, ...] = ()  # NVIDIA CDI spec files found on this host
    hooks_on_daemon_path: dict[str, str | None] | None = None  # None: the daemon's PATH is unknown
    toolkit_on_path: dict[str, str | None] | None = None
    probe: str | None = None  # "" the engine accepted a GPU request; a message: it refused; None: not probed
    podman: bool = False  # Podman's service: only CDI devices (through its libpod API) reach containers


def check_gpu_support(support: GpuSupport, mode: str = "device-requests") -> Check:
    """Can the engine give containers GPUs the way ``mode`` asks?"""
    found = [n for n, p in (support.toolkit_on_path or {}).items() if p]
    tools = f"; toolkit programs on PATH: {', '.join(found) or 'none'}" if support.toolkit_on_path is not None else ""
    runtimes = f"runtimes: {', '.join(support.runtimes) or '?'}" + (
        f" (default {support.default_runtime})" if support.default_runtime else ""
    )
    on_daemon = ""
    if support.hooks_on_daemon_path is not None:
        listed = [f"{n} ({p})" for n, p in support.hooks_on_daemon_path.items() if p]
        on_daemon = f"; on dockerd's PATH: {', '.join(listed) or 'no NVIDIA hook'}"
    if support.cdi_spec_dirs is None:
        cdi = "; CDI: not in this engine (Docker 25+)"
    else:
        cdi = f"; CDI folders: {', '.join(support.cdi_spec_dirs) or 'disabled'}"
        cdi += f", NVIDIA specs: {', '.join(support.cdi_specs) or 'none'}"
    detail = runtimes + on_daemon + tools + cdi
    if support.podman and mode != "cdi":
        return Check(
            "gpu-support",
            FAIL,
            f"Podman ignores `gpu_request: {mode}` (--gpus / --runtime=nvidia through its Docker API): "
            "the container would get no GPU",
            "leave `gpu_request` at auto (or set `cdi`): ngcws asks Podman for CDI devices nvidia.com/gpu=N",
            detail=detail,
        )
    if mode == "runtime":
        if "nvidia" in support.runtimes:
            return Check("gpu-support", PASS, "the engine has the nvidia runtime", detail=detail)
        return Check(
            "gpu-support",
            FAIL,
            "the engine has no nvidia runtime, so `gpu_request: runtime` (--runtime=nvidia) cannot work",
            "install nvidia-container-toolkit, run `sudo nvidia-ctk runtime configure --runtime=docker`, "
            "then restart dockerd",
            detail=detail,
        )
    if mode == "cdi":
        if support.cdi_spec_dirs is None:
            return Check(
                "gpu-support",
                FAIL,
                CDI_PREDATES,
                CDI_ENGINE_FIX,
                detail=detail,
            )
        if not support.cdi_spec_dirs:
            return Check(
                "gpu-support",
                FAIL,
                "CDI is disabled in this engine",
                CDI_DISABLED_FIX,
                detail=detail,
            )
        if not support.cdi_specs:
            return Check(
                "gpu-support",
                FAIL,
                f"no NVIDIA CDI spec in {', '.join(support.cdi_spec_dirs)}",
                CDI_SPEC_FIX,
                detail=detail,
            )
        return Check("gpu-support", PASS, f"CDI specs: {', '.join(support.cdi_specs)}", detail=detail)
    if support.probe == "":
        return Check("gpu-support", PASS, "the engine accepts GPU requests (--gpus)", detail=detail)
    if support.probe is not None:
        if "could not select device driver" in support.probe:
            return Check(
                "gpu-support",
                FAIL,
                "the engine cannot give containers GPUs: it registered no NVIDIA device driver "
                '(`could not select device driver "" with capabilities: [[gpu]]`)',
                INSTALL_TOOLKIT,
                detail=detail,
                engine_message=support.probe,
            )
        return Check(
            "gpu-support",
            FAIL,
            f"the engine refused a GPU request: `{key_phrase(support.probe)}`",
            explain_start_failure(support.probe) or INSTALL_TOOLKIT,
            detail=detail,
            engine_message=support.probe,
        )
    hooks = support.hooks_on_daemon_path
    if hooks is not None:
        if any(hooks.values()):
            on = ", ".join(n for n, p in hooks.items() if p)
            return Check("gpu-support", PASS, f"dockerd found {on} on its PATH at start", detail=detail)
        return Check(
            "gpu-support",
            FAIL,
            "dockerd has no NVIDIA hook on its PATH, so `--gpus` fails with "
            '`could not select device driver "" with capabilities: [[gpu]]`',
            INSTALL_TOOLKIT,
            detail=detail,
        )
    return Check(
        "gpu-support",
        WARN,
        "could not tell whether the engine accepts GPU requests (no local image to probe with)",
        "pull an image (`ngcws pull`) and run `ngcws doctor` again",
        detail=detail,
    )


# --- per workspace --------------------------------------------------------------------------------


def image_env(config: Mapping[str, Any] | None) -> dict[str, str]:
    """An image inspect's ``Config.Env`` as a map."""
    env = ((config or {}).get("Config") or {}).get("Env") or []
    return dict(e.split("=", 1) for e in env if "=" in e)


def is_data_center(name: str) -> bool:
    return bool(_DATA_CENTER.search(name)) and "geforce" not in name.lower()


def check_image_driver(workspace: str, image: str, env: Mapping[str, str] | None, host: HostInfo) -> Check:
    """The host driver against what the image was built for (CUDA_DRIVER_VERSION, NVIDIA_REQUIRE_CUDA)."""
    name = "driver-vs-image"
    if env is None:
        return Check(name, SKIP, f"{image} is not present locally", "pull it: `ngcws pull`", workspace)
    if not host.driver_version:
        return Check(name, SKIP, "no host driver to compare with", workspace=workspace)
    wanted = env.get("CUDA_DRIVER_VERSION")
    cuda = env.get("CUDA_VERSION")
    have = version_tuple(host.driver_version)
    built = f"{image} (CUDA {cuda or '?'}) was built for driver {wanted}" if wanted else ""
    if env.get("NVIDIA_DISABLE_REQUIRE", "").lower() not in ("1", "t", "true"):
        requirement = env.get("NVIDIA_REQUIRE_CUDA")
        if requirement and requirement_satisfied(requirement, host) is False:
            return Check(
                name,
                FAIL,
                f"the image requires {requirement!r}; this host's driver {host.driver_version} "
                f"supports CUDA {host.cuda_driver_version or '?'}",
                "update the NVIDIA driver, or use an older image tag",
                workspace,
            )
    if not wanted:
        return Check(
            name, PASS, f"{image} names no minimum driver (no CUDA_DRIVER_VERSION); host has {host.driver_version}",
            workspace=workspace,
        )  # fmt: skip
    if have[:1] >= version_tuple(wanted)[:1]:
        return Check(name, PASS, f"{built}; host has {host.driver_version}", workspace=workspace)
    data_center = bool(host.gpus) and all(is_data_center(g.name) for g in host.gpus)
    if data_center:
        return Check(
            name,
            WARN,
            f"{built}; host has {host.driver_version}: the image will use CUDA forward compatibility, which "
            "data-center GPUs support on the driver branches its release notes list",
            "if the container prints `compatibility mode is UNAVAILABLE`, "
            f"update the driver to R{version_tuple(wanted)[0]}+",
            workspace,
        )
    return Check(
        name,
        FAIL,
        f"{built}; host has {host.driver_version}, and CUDA forward compatibility works only on data-center GPUs",
        f"update the NVIDIA driver to R{version_tuple(wanted)[0]} or later, or use an older image tag",
        workspace,
    )


def requirement_satisfied(expression: str, host: HostInfo) -> bool | None:
    """libnvidia-container's NVIDIA_REQUIRE_* language: space-separated terms ORed, commas ANDed.

    None when the host cannot say (no CUDA/driver version, or a key this check does not evaluate).
    """
    facts: dict[str, tuple[int, ...]] = {}
    if host.cuda_driver_version:
        facts["cuda"] = version_tuple(host.cuda_driver_version)
    if host.driver_version:
        facts["driver"] = version_tuple(host.driver_version)
    unknown = False
    for term in expression.split():
        results: list[bool | None] = []
        for condition in term.split(","):
            match = re.match(r"^([a-zA-Z]+)\s*(>=|<=|!=|=|<|>)\s*([\w.]+)$", condition.strip())
            if not match or match.group(1).lower() not in facts:
                results.append(None)
                continue
            key, op, value = match.group(1).lower(), match.group(2), version_tuple(match.group(3))
            have = facts[key][: len(value)]
            results.append(
                {"=": have == value, "!=": have != value, "<": have < value, "<=": have <= value,
                 ">": have > value, ">=": have >= value}[op]
            )  # fmt: skip
        if all(r is True for r in results):
            return True
        if any(r is None for r in results) and not any(r is False for r in results):
            unknown = True
    return None if unknown else False


def minimum_compute_capability(image: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """(minimum, why) for an NGC release: CC 6.0 up to 24.10, 7.5 from 25.03 and for CUDA 13."""
    release = None
    for key in ("NVIDIA_PYTORCH_VERSION", "NVIDIA_TENSORFLOW_VERSION", "NGC_VERSION"):
        if env.get(key):
            release = env[key]
    tag = re.search(r":(\d{2})\.(\d{2})-", image)
    if release is None and tag:
        release = f"{tag.group(1)}.{tag.group(2)}"
    cuda = version_tuple(env.get("CUDA_VERSION"))
    if cuda[:1] >= (13,):
        return "7.5", f"CUDA {env['CUDA_VERSION']} images need compute capability 7.5+"
    parsed = version_tuple(release)
    if parsed[:2] >= (25, 3):
        return "7.5", f"NGC release {release} needs compute capability 7.5+"
    if parsed[:2] and parsed[:2] <= (24, 10):
        return "6.0", f"NGC release {release} needs compute capability 6.0+"
    if parsed[:2]:
        return "6.0", f"NGC release {release}: 6.0+ (7.5 from 25.03; the exact release is not documented)"
    if cuda[:1] == (12,):
        return "5.0", f"CUDA {env['CUDA_VERSION']} needs compute capability 5.0+"
    return None


def check_compute_capability(
    workspace: str, image: str, env: Mapping[str, str] | None, host: HostInfo, wanted: Sequence[str] | str
) -> Check:
    name = "compute-capability"
    if env is None or not host.gpus:
        return Check(name, SKIP, "no image or no GPUs to compare", workspace=workspace)
    minimum = minimum_compute_capability(image, env)
    if minimum is None:
        return Check(name, SKIP, f"{image}: no known compute capability minimum", workspace=workspace)
    need, why = minimum
    chosen = [g for g in host.gpus if wanted == "all" or str(g.index) in wanted or g.uuid in wanted]
    low = [g for g in chosen if g.compute_capability and version_tuple(g.compute_capability) < version_tuple(need)]
    if low:
        names = ", ".join(f"GPU {g.index} {g.name} ({g.compute_capability})" for g in low)
        return Check(
            name, FAIL, f"{why}; {names} is older", "use an older image tag, or other GPUs (`gpus: [...]`)", workspace
        )
    return Check(name, PASS, why, workspace=workspace)


def deep_learning_image(env: Mapping[str, str] | None) -> bool:
    """Is the image NGC- or PyTorch-shaped (its config sets NVIDIA_*, PYTORCH* or CUDA* variables)?"""
    return any(k.startswith(("NVIDIA_", "PYTORCH", "CUDA")) for k in env or {})


def check_shm(workspace: str, essence: Mapping[str, Any], image_env: Mapping[str, str] | None = None) -> Check:
    """/dev/shm, where it matters: a GPU workspace, or an NGC/PyTorch-shaped image (``image_env``:
    the image config's env, None when the image is not local)."""
    if essence.get("ipc") == "host":
        return Check("shm", PASS, "ipc: host shares the host's /dev/shm", workspace=workspace)
    size = essence.get("shm_size")
    matters = essence.get("gpus", "all") != "none" or deep_learning_image(image_env)
    if (size is None or size <= DEFAULT_SHM) and not matters:
        return Check(
            "shm",
            PASS,
            "/dev/shm is Docker's 64 MB: enough here (no GPU, and the image is not a deep-learning one"
            + (" as far as can be told: it is not local)" if image_env is None else ")"),
            workspace=workspace,
        )
    if size is None or size <= DEFAULT_SHM:
        return Check(
            "shm",
            WARN,
            "/dev/shm stays at Docker's 64 MB: PyTorch DataLoader workers die with a bus error",
            "set `shm_size: 16g` (or `ipc: host`, as NVIDIA recommends)",
            workspace,
        )
    return Check("shm", PASS, f"/dev/shm is {size // 2**20} MB", workspace=workspace)


def memlock_wanted(essence: Mapping[str, Any]) -> int | None:
    """The hard memlock limit a workspace asks for (-1 unlimited), or None."""
    limit = (essence.get("ulimits") or {}).get("memlock")
    return None if limit is None else int(limit["hard"])


def check_memlock(
    workspace: str, essence: Mapping[str, Any], probe: str | None, daemon: DaemonFacts | None
) -> Check | None:
    """Can ``ulimits.memlock`` be honoured? ``probe``: "" the engine started a container with it."""
    want = memlock_wanted(essence)
    if want is None:
        return None
    shown = "unlimited" if want == -1 else f"{want} bytes"
    if probe == "":
        return Check("memlock", PASS, f"the engine can set memlock to {shown}", workspace=workspace)
    if probe:
        why = (
            f" (dockerd's hard limit is {daemon.memlock_hard} bytes, without CAP_SYS_RESOURCE)"
            if (daemon and daemon.memlock_hard not in (None, -1) and not daemon.cap_sys_resource)
            else ""
        )
        return Check(
            "memlock",
            FAIL,
            f"memlock {shown} cannot be honoured: the engine cannot raise RLIMIT_MEMLOCK{why} "
            f"(`{key_phrase(probe)}`), so the container would be created and then "
            "fail to start",
            MEMLOCK_FIX,
            workspace,
            engine_message=probe,
        )
    if daemon is not None and daemon.memlock_hard is not None:
        fits = daemon.memlock_hard == -1 or (want != -1 and want <= daemon.memlock_hard)
        if fits or daemon.cap_sys_resource:
            return Check("memlock", PASS, f"dockerd may set memlock to {shown}", workspace=workspace)
        return Check(
            "memlock",
            FAIL,
            f"memlock {shown} cannot be honoured: dockerd's hard limit is {daemon.memlock_hard} bytes and it "
            "lacks CAP_SYS_RESOURCE",
            MEMLOCK_FIX,
            workspace,
        )
    return Check("memlock", WARN, f"could not tell whether memlock {shown} can be honoured", workspace=workspace)


def check_host_memlock(probe: str | None, daemon: DaemonFacts | None) -> Check:
    """With no workspace asking for memlock (or no project): can this engine honour NGC's
    ``--ulimit memlock=-1`` at all? A warning at most: nothing asks for it yet."""
    found = check_memlock("", {"ulimits": {"memlock": {"soft": -1, "hard": -1}}}, probe, daemon)
    assert found is not None
    return Check(
        "memlock",
        WARN if found.verdict == FAIL else found.verdict,
        f"for NGC's `--ulimit memlock=-1` (`ulimits: {{memlock: -1}}`): {found.summary}",
        found.fix,
        detail=found.detail,
        engine_message=found.engine_message,
    )


def check_credentials(
    workspace: str,
    registry: str,
    has_login: bool,
    ngc_api_key: bool,
    image_present: bool,
    verified: str | None = None,
    detail: str = "",
) -> Check:
    """The login a pull would send; ``verified``: what the registry said of it
    (:mod:`ngcws.registrycheck`: ok, rejected, not verified, anonymous; None: not asked)."""
    name = "credentials"
    source = said = redo = ""
    if registry == "nvcr.io" and ngc_api_key:
        source, said = "NGC_API_KEY", "nvcr.io: NGC_API_KEY is set"
        redo = "check NGC_API_KEY (an NGC API key), or unset it to use your docker login"
    elif has_login:
        source, said = "docker login", f"{registry}: logged in (docker login)"
        user = "'$oauthtoken'" if registry == "nvcr.io" else "USER"
        redo = f"log in again: `docker login {registry} -u {user}`"
    if source:
        if verified == "rejected":
            return Check(
                name,
                WARN if image_present else FAIL,
                f"{registry}: the stored login ({source}) was rejected by the registry ({detail})",
                redo + (" (the image is already local, so only a new pull needs it)" if image_present else ""),
                workspace,
            )
        if verified == "ok":
            return Check(name, PASS, f"{said}; the registry accepted it", workspace=workspace)
        if verified == "anonymous":
            return Check(name, PASS, f"{said}; the registry asks for no login", workspace=workspace)
        if verified is None:
            return Check(name, PASS, said, workspace=workspace)
        text = f"{said}; not verified" + (f" ({detail})" if detail else "")
        if not image_present:
            return Check(name, WARN, text, "check the registry's address and your network", workspace)
        return Check(name, PASS, text, workspace=workspace)
    if image_present:
        return Check(name, PASS, f"{registry}: not logged in, but the image is already local", workspace=workspace)
    if registry == "nvcr.io":
        fix = "`docker login nvcr.io -u '$oauthtoken'` (password: your NGC API key), or export NGC_API_KEY"
    else:
        fix = f"`docker login {registry}` if the image is not public"
    return Check(name, WARN, f"{registry}: not logged in; only public images can be pulled", fix, workspace)


def check_gpu_sharing(line: str) -> Check:
    """One set of GPUs several containers hold (:func:`ngcws.gpuset.sharing`)."""
    return Check(
        "gpu-sharing",
        WARN,
        line,
        "Docker does no GPU scheduling: give each workspace its own GPUs (`gpus: [2, 3]`) if they must not share",
    )
