"""What each field of ngcws.yaml accepts, in words: the "expected ..." of every error message that
is not a parser's own (pydantic's type and choice errors, and any error about a secret value,
whose text is never shown). Pure; keyed by the field's path in the file."""

from __future__ import annotations

from ngcws.values import CAPABILITIES, GPU_EXPECTED

MAP_OR_LIST = "a map of NAME: value, or a list of NAME=value strings"

WORKSPACE_FIELDS = {
    "image": "an image reference such as nvcr.io/nvidia/pytorch:23.08-py3",
    "gpus": GPU_EXPECTED.removeprefix("expected "),
    "capabilities": f"a list of NVIDIA driver capabilities ({', '.join(CAPABILITIES)} or all)",
    "shm_size": "a size such as 16g, 512m or a number of bytes",
    "ipc": "private, shareable, host or none",
    "ulimits": "a map of limit names to a limit (a whole number, -1 for unlimited) or {soft: N, hard: N}",
    "mounts": 'a list of mounts, each "SOURCE:TARGET[:ro|rw]" or {type, source, target, read_only}',
    "env": MAP_OR_LIST,
    "env_file": "a path or a list of paths",
    "working_dir": "an absolute path inside the container",
    "user": 'root, host, a user name or "UID[:GID]"',
    "command": "a command as one string or a list of strings",
    "ports": 'a list of ports such as 8888, "8888:8888" or "127.0.0.1:8888:8888/tcp"',
    "restart": "no, always, on-failure or unless-stopped",
    "pull": "missing, always or never",
    "init": "true or false",
    "labels": MAP_OR_LIST,
    "gpu_request": "auto, device-requests, runtime or cdi",
    "ignore_changes": "a list of paths in the container ('/opt/scratch') or names ('*.log')",
    "distributed": "a map with nodes, gpus_per_node, procs_per_node, launcher, command, rdzv_port, slurm, kubernetes",
    "restart_on": "a list of paths or globs relative to ngcws.yaml's folder, such as ['src/**/*.py']",
    "cap_add": "a list of Linux capability names such as [IPC_LOCK, SYS_ADMIN]",
    "cap_drop": "a list of Linux capability names such as [NET_RAW]",
    "cpus": "a number of CPUs such as 1.5",
    "cpuset": 'the CPUs allowed, such as "0-3,8"',
    "devices": 'a list of devices, each "/dev/HOST[:/dev/CONTAINER][:rwm]"',
    "dns": "a list of IP addresses",
    "entrypoint": "a command as one string or a list of strings",
    "extra_hosts": 'a list of "HOST:IP" or a map of HOST: IP',
    "group_add": "a list of group names or ids",
    "healthcheck": "a map with test, interval, timeout, start_period, retries or disable",
    "hostname": "a host name",
    "mem_limit": "a size such as 16g, 512m or a number of bytes",
    "memswap_limit": "a size such as 16g, 512m or a number of bytes, or -1 for unlimited",
    "network_mode": "bridge, host, none or container:NAME",
    "networks": "a list of network names, or a map of network names to settings",
    "pids_limit": "a number of processes, or -1 for unlimited",
    "privileged": "true or false",
    "read_only": "true or false",
    "runtime": "a runtime name such as runc or nvidia",
    "security_opt": 'a list of options such as "no-new-privileges" or "seccomp=PROFILE.json"',
    "stop_grace_period": "a duration in whole seconds such as 10s or 1m30s",
    "stop_signal": "a signal name such as SIGINT or SIGTERM",
    "sysctls": MAP_OR_LIST,
    "tmpfs": 'a path or a list of "PATH[:OPTIONS]"',
}
HEALTHCHECK_FIELDS = {
    "test": 'a shell command, or ["CMD", ...] / ["CMD-SHELL", "..."] / ["NONE"]',
    "interval": "a duration such as 10s, 1m30s or 500ms",
    "timeout": "a duration such as 10s, 1m30s or 500ms",
    "start_period": "a duration such as 10s, 1m30s or 500ms",
    "start_interval": "a duration such as 10s, 1m30s or 500ms",
    "retries": "a whole number, 0 or more",
    "disable": "true or false",
}
MOUNT_FIELDS = {
    "type": "bind, volume or tmpfs",
    "source": "a host path (bind) or a volume name (volume)",
    "target": "an absolute path inside the container",
    "read_only": "true or false",
    "create_host_path": "true or false",
}
MOUNT = 'a mount: "SOURCE:TARGET[:ro|rw]" or {type, source, target, read_only, create_host_path}'
LIMIT = "a whole number, -1 for unlimited"


#: pydantic's error types, in words: for a field that has no entry above yet.
KINDS = {
    "string_type": "a string",
    "string_too_short": "a string that is not empty",
    "list_type": "a list",
    "too_short": "a list that is not empty",
    "dict_type": "a map",
    "model_type": "a map",
    "model_attributes_type": "a map",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


#: The ``distributed:`` block (top level or in a workspace), by path inside it.
DISTRIBUTED_FIELDS = {
    ("nodes",): "a whole number, 1 or more",
    ("gpus_per_node",): "a whole number, 0 or more",
    ("procs_per_node",): "a whole number, 1 or more",
    ("launcher",): "torchrun or srun",
    ("command",): "a command as one string or a list of strings",
    ("rdzv_port",): "a port number, 1 to 65535",
    ("slurm",): "a map with runtime, partition, account, time, exclusive, sbatch",
    ("slurm", "runtime"): "auto, pyxis or docker",
    ("slurm", "partition"): "a partition name",
    ("slurm", "account"): "an account name",
    ("slurm", "time"): 'minutes (90), "HH:MM:SS" or "D-HH:MM:SS"',
    ("slurm", "exclusive"): "true or false",
    ("slurm", "sbatch"): "a map of sbatch long option names to values",
    ("kubernetes",): "a map with kind, namespace, image_pull_secret, volumes",
    ("kubernetes", "kind"): "indexed-job or jobset",
    ("kubernetes", "namespace"): "a Kubernetes name: lower-case letters, digits and -",
    ("kubernetes", "image_pull_secret"): "a Kubernetes name: lower-case letters, digits and -",
    ("kubernetes", "volumes"): "a map of host paths to {pvc: NAME} or {host_path: PATH}",
}


def expected(loc: tuple[str | int, ...], key: bool = False) -> str | None:
    """The accepted forms of the value at ``loc`` (of its name, with ``key``), in words; None for a
    field this table does not know (the caller says it from the error's kind)."""
    if "distributed" in loc:
        inner = tuple(str(part) for part in loc[loc.index("distributed") + 1 :])
        return WORKSPACE_FIELDS["distributed"] if not inner else DISTRIBUTED_FIELDS.get(inner[:2])
    if loc == ("name",):
        return "a project name: lower-case letters, digits, _ and -, starting with a letter or a digit"
    if loc[:1] != ("workspaces",) or len(loc) == 1:
        return "a map with workspaces: (and optionally name: and x- extension keys)"
    if len(loc) == 2:
        if key:
            return "a workspace name: letters, digits, _, . and -, starting with a letter or a digit"
        return "a workspace: a map of settings with at least image:"
    field, rest = str(loc[2]), loc[3:]
    if field == "mounts" and rest:
        return MOUNT_FIELDS.get(str(rest[1]), MOUNT) if len(rest) > 1 else MOUNT
    if field == "healthcheck" and rest:
        return HEALTHCHECK_FIELDS.get(str(rest[0]), WORKSPACE_FIELDS["healthcheck"])
    if field == "ulimits" and rest:
        return LIMIT if len(rest) > 1 else f"{LIMIT}, or {{soft: N, hard: N}}"
    return WORKSPACE_FIELDS.get(field)
