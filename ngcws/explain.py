"""Engine and runtime messages NGC users meet, each with the fix a person can act on. Pure.

The engine's own message is always kept beside the explanation (for reference and for searching).
"""

from __future__ import annotations

INSTALL_TOOLKIT = (
    "install nvidia-container-toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/"
    "latest/install-guide.html), then restart dockerd (`sudo systemctl restart docker`): dockerd looks for "
    "the NVIDIA hook only when it starts; or set `gpus: none`"
)
MEMLOCK_FIX = (
    "`ulimits: memlock: -1` needs dockerd with CAP_SYS_RESOURCE and a high hard RLIMIT_MEMLOCK (systemd "
    "`LimitMEMLOCK=infinity`, as on a normal GPU server); this host does not allow it: lower or remove the "
    "memlock ulimit here"
)
CAPS_FIX = (
    "this host forbids the capabilities asked for (`privileged: true` and `cap_add: [ALL]` ask for every one): "
    "dockerd runs inside a container (Docker in Docker, a CI runner, a dev container) or on a restricted host "
    "(rootless Docker, user namespaces, a locked-down cluster node) and does not hold them itself. Ask only for "
    "the capabilities the work needs (e.g. `cap_add: [SYS_PTRACE]` for debuggers, `IPC_LOCK` for RDMA) and drop "
    "`privileged`, or run on a host whose dockerd has full root. The container was created but not started; the "
    "next `ngcws up` after the fix recreates it, `ngcws down` removes it"
)
#: What ``gpu_request: cdi`` needs of the engine: doctor/preflight and the translated engine error say it alike.
CDI_PREDATES = "this engine predates CDI (Docker 25, API 1.44), so `gpu_request: cdi` cannot work"
CDI_ENGINE_FIX = "upgrade Docker to 25 or later, or use `gpu_request: device-requests` (`--gpus`)"
CDI_DISABLED_FIX = 'enable it in /etc/docker/daemon.json (`"features": {"cdi": true}`), then restart dockerd'
CDI_SPEC_FIX = "generate one: `sudo nvidia-ctk cdi generate --output=/var/run/cdi/nvidia.yaml`"
RUNTIME_FIX = (
    "configure the nvidia runtime: `sudo nvidia-ctk runtime configure --runtime=docker`, then restart dockerd; "
    "or use `gpu_request: device-requests`"
)


_KEY_PHRASES = (
    r'could not select device driver "[^"]*" with capabilities: \[\[[^\]]*\]\]',
    r"error setting rlimit type \d+: [^:]+",
    r"unsatisfied condition: [^,:]+",
    r"Bind for \S+ failed: port is already allocated",
    r"no space left on device",
    r"[Uu]nknown runtime specified \S+",
    r"unable to apply caps: operation not permitted",
)


def key_phrase(message: str) -> str:
    """The part of a long engine/runtime message that says what went wrong (else its first line)."""
    import re

    for pattern in _KEY_PHRASES:
        match = re.search(pattern, message)
        if match:
            return match.group(0)
    return first_line(message)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def explain_start_failure(message: str) -> str | None:
    """The fix for a start/create failure NGC users meet, or None."""
    lowered = message.lower()
    if 'could not select device driver "cdi"' in lowered:  # an engine before Docker 25 has no CDI driver
        return f"{CDI_PREDATES}: {CDI_ENGINE_FIX}"
    if "unresolvable cdi devices" in lowered:
        return f"the engine found no CDI spec for these devices: {CDI_SPEC_FIX}; or use `gpu_request: device-requests`"
    if "cdi" in lowered and "not enabled" in lowered:
        return f"CDI is disabled in this engine: {CDI_DISABLED_FIX}; or use `gpu_request: device-requests`"
    if "could not select device driver" in lowered:
        return INSTALL_TOOLKIT
    if "rlimit type 8" in lowered or ("rlimit" in lowered and "memlock" in lowered):
        return MEMLOCK_FIX
    if "unsatisfied condition: cuda" in lowered:
        return "the host's NVIDIA driver is older than this image needs: update the driver, or use an older image tag"
    if "port is already allocated" in lowered or "address already in use" in lowered:
        return "another container or program uses that host port: stop it, or map another host port in `ports:`"
    if "no space left on device" in lowered:
        return (
            "the disk holding Docker's data root (or the volume) is full: free space "
            "(`docker system df` shows what Docker keeps)"
        )
    if "unable to apply caps" in lowered or ("capabilit" in lowered and "operation not permitted" in lowered):
        return CAPS_FIX
    if "unknown runtime specified nvidia" in lowered or "unknown or invalid runtime name: nvidia" in lowered:
        return RUNTIME_FIX
    if "invoking the nvidia container runtime hook directly" in lowered:
        return "the NVIDIA runtime is in CDI mode: set `gpu_request: runtime` (or `cdi`) for this workspace"
    return None
