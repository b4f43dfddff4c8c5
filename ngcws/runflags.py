"""The one table of ngcws.yaml fields and the ``docker run`` flags they replace.

Each row names a workspace field, the ``docker run`` flag(s) that mean the same, and where the
value lands in the Engine API create request. ``docs/configuration.md`` documents every row (a
unit test checks it), the parity tests against the docker CLI take their cases from it, and a
``docker run`` → ngcws.yaml translator or an exporter can walk it instead of keeping its own list.
Pure data: no imports from the rest of ngcws.
"""

from __future__ import annotations

from typing import NamedTuple


class RunFlag(NamedTuple):
    field: str  # the ngcws.yaml workspace field
    flags: tuple[str, ...]  # the docker run flag(s) it replaces
    engine: tuple[str, ...]  # where it lands in the create request (Config.X / HostConfig.X)


_HEALTH_FLAGS = (
    "--health-cmd", "--health-interval", "--health-timeout", "--health-retries", "--health-start-period",
    "--no-healthcheck",
)  # fmt: skip

RUN_FLAGS: tuple[RunFlag, ...] = (
    RunFlag("image", ("IMAGE",), ("Config.Image",)),
    RunFlag("command", ("IMAGE COMMAND...",), ("Config.Cmd",)),
    RunFlag("gpus", ("--gpus",), ("HostConfig.DeviceRequests",)),
    RunFlag("capabilities", ("--gpus all,capabilities=",), ("HostConfig.DeviceRequests",)),
    RunFlag("shm_size", ("--shm-size",), ("HostConfig.ShmSize",)),
    RunFlag("ipc", ("--ipc",), ("HostConfig.IpcMode",)),
    RunFlag("ulimits", ("--ulimit",), ("HostConfig.Ulimits",)),
    RunFlag("mounts", ("-v", "--volume", "--mount"), ("HostConfig.Mounts",)),
    RunFlag("env", ("-e", "--env"), ("Config.Env",)),
    RunFlag("env_file", ("--env-file",), ("Config.Env",)),
    RunFlag("working_dir", ("-w", "--workdir"), ("Config.WorkingDir",)),
    RunFlag("user", ("-u", "--user"), ("Config.User",)),
    RunFlag("ports", ("-p", "--publish"), ("HostConfig.PortBindings", "Config.ExposedPorts")),
    RunFlag("restart", ("--restart",), ("HostConfig.RestartPolicy",)),
    RunFlag("init", ("--init",), ("HostConfig.Init",)),
    RunFlag("labels", ("-l", "--label"), ("Config.Labels",)),
    RunFlag("network_mode", ("--network", "--net"), ("HostConfig.NetworkMode",)),
    RunFlag("networks", ("--network",), ("HostConfig.NetworkMode", "NetworkingConfig.EndpointsConfig")),
    RunFlag("devices", ("--device",), ("HostConfig.Devices",)),
    RunFlag("cap_add", ("--cap-add",), ("HostConfig.CapAdd",)),
    RunFlag("cap_drop", ("--cap-drop",), ("HostConfig.CapDrop",)),
    RunFlag("security_opt", ("--security-opt",), ("HostConfig.SecurityOpt",)),
    RunFlag("privileged", ("--privileged",), ("HostConfig.Privileged",)),
    RunFlag("entrypoint", ("--entrypoint",), ("Config.Entrypoint",)),
    RunFlag("hostname", ("-h", "--hostname"), ("Config.Hostname",)),
    RunFlag("extra_hosts", ("--add-host",), ("HostConfig.ExtraHosts",)),
    RunFlag("dns", ("--dns",), ("HostConfig.Dns",)),
    RunFlag("cpus", ("--cpus",), ("HostConfig.NanoCpus",)),
    RunFlag("cpuset", ("--cpuset-cpus",), ("HostConfig.CpusetCpus",)),
    RunFlag("mem_limit", ("-m", "--memory"), ("HostConfig.Memory",)),
    RunFlag("memswap_limit", ("--memory-swap",), ("HostConfig.MemorySwap",)),
    RunFlag("pids_limit", ("--pids-limit",), ("HostConfig.PidsLimit",)),
    RunFlag("tmpfs", ("--tmpfs",), ("HostConfig.Tmpfs",)),
    RunFlag("sysctls", ("--sysctl",), ("HostConfig.Sysctls",)),
    RunFlag("group_add", ("--group-add",), ("HostConfig.GroupAdd",)),
    RunFlag("read_only", ("--read-only",), ("HostConfig.ReadonlyRootfs",)),
    RunFlag("stop_signal", ("--stop-signal",), ("Config.StopSignal",)),
    RunFlag("stop_grace_period", ("--stop-timeout",), ("Config.StopTimeout",)),
    RunFlag("runtime", ("--runtime",), ("HostConfig.Runtime",)),
    RunFlag("healthcheck", _HEALTH_FLAGS, ("Config.Healthcheck",)),
)

BY_FIELD = {row.field: row for row in RUN_FLAGS}

#: Workspace fields of ngcws's own, which no docker run flag spells.
NGCWS_OWN = ("pull", "gpu_request", "ignore_changes", "distributed", "restart_on")
