"""A :class:`ClusterJob` → the sbatch script that runs it on Slurm. Pure.

Two runtimes, one shape: ``#SBATCH`` lines (one task per node for torchrun, one per process for
the srun launcher), the rendezvous address of the first node, then one ``srun`` step whose task
starts the workspace's container on its node.

* ``pyxis``: the container is started by srun's pyxis flags (``--container-image`` with enroot's
  ``REGISTRY#IMAGE`` spelling, mounts, workdir, env) and lives in the job's cgroups.
* ``docker``: each task runs ``docker run --network host`` on its node's engine, with the global
  GPU ids Slurm allocated (``SLURM_STEP_GPUS``). The container lives in dockerd's cgroup, outside
  Slurm's control, so the job takes whole nodes and the task removes the container itself when
  it ends, fails or is cancelled.

Per-node values (``SLURM_NODEID``, the node's address) are expanded inside the task, never in
the batch script, which runs on the first node only. What an engine cannot honour is returned
as a note (and written as a comment into the script), never dropped silently.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from ngcws.clusters.job import ClusterJob, launch_command, unhandled
from ngcws.values import format_size

#: Labels on the docker runtime's containers (not ``ngcws.project``: they are no workspace's).
JOB_PROJECT = "ngcws.job-project"
JOB_PROJECT_DIR = "ngcws.job-project-dir"
JOB_WORKSPACE = "ngcws.job-workspace"
SLURM_JOB = "ngcws.slurm-job"
SLURM_NODE = "ngcws.slurm-node"

#: docker ``--ulimit`` names → (bash ``ulimit`` flag, bytes per unit of that flag)
BASH_ULIMITS: dict[str, tuple[str, int]] = {
    "core": ("-c", 1024),
    "cpu": ("-t", 1),
    "data": ("-d", 1024),
    "fsize": ("-f", 1024),
    "locks": ("-x", 1),
    "memlock": ("-l", 1024),
    "msgqueue": ("-q", 1),
    "nice": ("-e", 1),
    "nofile": ("-n", 1),
    "nproc": ("-u", 1),
    "rss": ("-m", 1024),
    "rtprio": ("-r", 1),
    "rttime": ("-R", 1),
    "sigpending": ("-i", 1),
    "stack": ("-s", 1024),
}

_HEAD = """\
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
head_addr=$(scontrol show node "$head_node" | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p')
"""
_NODE_ADDR = "node_addr=$(scontrol show node \"$SLURMD_NODENAME\" | sed -n 's/.*NodeAddr=\\([^ ]*\\).*/\\1/p')\n"


#: Single quotes are literal on purpose: values from ngcws.yaml, and commands each task expands.
_SINGLE_QUOTED = "# shellcheck disable=SC2016"
_CLEANUP = (
    f'ids=$(docker ps -aq --filter "label={SLURM_JOB}=$SLURM_JOB_ID"); '
    'if [ -n "$ids" ]; then docker rm -f $ids >/dev/null; fi'
)


@dataclass(frozen=True)
class BatchScript:
    """The script, the notes on what the runtime cannot honour, and (docker) the per-task script."""

    text: str
    runtime: str
    notes: list[str] = field(default_factory=list)
    task: str = ""


def enroot_image(image: str) -> str:
    """``nvcr.io/nvidia/pytorch:23.08-py3`` → ``nvcr.io#nvidia/pytorch:23.08-py3`` (every enroot reads it)."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return f"{first}#{rest}"
    return image


def ulimit_lines(ulimits: dict[str, dict[str, int]], what: str) -> list[str]:
    """bash ``ulimit`` commands for docker-style ulimits (bytes → KiB where bash counts KiB)."""
    lines = []
    for name, limit in ulimits.items():
        flag, unit = BASH_ULIMITS[name]
        for kind, which, value in (("-H", "hard", limit["hard"]), ("-S", "soft", limit["soft"])):
            amount = "unlimited" if value == -1 else str(-(-value // unit))
            warn = f"ngcws: cannot set {name} {which}={amount} ({what})"
            lines.append(f'ulimit {kind} {flag} {amount} || echo "{warn}" >&2')
    return lines


def _q(word: str) -> str:
    return shlex.quote(word)


def _header(job: ClusterJob, runtime: str, output: str) -> list[str]:
    tasks = 1 if job.launcher == "torchrun" else job.procs_per_node
    exclusive = job.slurm.exclusive if job.slurm.exclusive is not None else runtime == "docker"
    lines = [
        "#!/bin/bash",
        _SINGLE_QUOTED,
        f"# ngcws: workspace {job.workspace} of {job.config_file}, {job.nodes} node(s), {runtime} runtime.",
        "# Written by `ngcws submit`; change ngcws.yaml rather than this file.",
        f"#SBATCH --job-name={job.name}",
        f"#SBATCH --nodes={job.nodes}",
        f"#SBATCH --ntasks-per-node={tasks}",
    ]
    if job.gpus_per_node:
        lines.append(f"#SBATCH --gres=gpu:{job.gpus_per_node}")
    lines.append(f"#SBATCH --time={job.slurm.time}")
    if exclusive:
        lines.append("#SBATCH --exclusive")
    if job.slurm.partition:
        lines.append(f"#SBATCH --partition={job.slurm.partition}")
    if job.slurm.account:
        lines.append(f"#SBATCH --account={job.slurm.account}")
    for key, value in job.slurm.sbatch.items():
        lines.append(f"#SBATCH --{key}" + (f"={value}".replace("#", "\\#") if value else ""))
    lines += [
        f"#SBATCH --output={output}",
        f"#SBATCH --chdir={job.project_dir}",
        "set -euo pipefail",
    ]
    if job.secret_env:
        names = ", ".join(sorted(job.secret_env))
        lines.append(f"# Secrets, from the environment `ngcws submit` gave sbatch (never written here): {names}")
    return lines


def _rendezvous(job: ClusterJob) -> list[str]:
    lines = _HEAD.splitlines()
    if job.launcher == "torchrun":
        lines.append(f'export NGCWS_RDZV="${{head_addr:-$head_node}}:{job.rdzv_port}"')
    else:
        lines.append(f'export MASTER_ADDR="${{head_addr:-$head_node}}" MASTER_PORT={job.rdzv_port}')
    return lines


def _step(job: ClusterJob) -> str:
    tasks = 1 if job.launcher == "torchrun" else job.procs_per_node
    return f"srun --kill-on-bad-exit=1 --nodes={job.nodes} --ntasks-per-node={tasks}"


# --- docker on each node --------------------------------------------------------------------------


def _pull_task(image: str, policy: str) -> str:
    if policy == "always":
        return f"docker pull -q {_q(image)} >/dev/null"
    if policy == "never":
        return (
            f"docker image inspect {_q(image)} >/dev/null 2>&1 || "
            f'{{ echo "ngcws: {image} is not on $SLURMD_NODENAME and pull: never" >&2; exit 1; }}'
        )
    return f"docker image inspect {_q(image)} >/dev/null 2>&1 || docker pull -q {_q(image)} >/dev/null"


def _docker_args(job: ClusterJob, notes: list[str]) -> list[str]:
    e = job.essence
    args = [
        "--rm",
        '--name "$name"',
        "--network host",
        f"--label {_q(f'{JOB_PROJECT}={job.project}')}",
        f"--label {_q(f'{JOB_PROJECT_DIR}={job.project_dir}')}",
        f"--label {_q(f'{JOB_WORKSPACE}={job.workspace}')}",
        f'--label "{SLURM_JOB}=$SLURM_JOB_ID"',
        f'--label "{SLURM_NODE}=$SLURMD_NODENAME"',
    ]
    args += [f"--label {_q(f'{k}={v}')}" for k, v in e["labels"].items()]
    if e["init"]:
        args.append("--init")
    if job.gpus_per_node:
        args.append('"${gpu_args[@]}"')
    if e["ipc"] is not None:
        args.append(f"--ipc {e['ipc']}")
    if e["shm_size"] is not None:
        args.append(f"--shm-size {e['shm_size']}")
    for name, limit in e["ulimits"].items():
        args.append(f"--ulimit {name}={limit['soft']}:{limit['hard']}")
    for m in e["mounts"]:
        spec = f"type={m['type']}"
        if m["source"]:
            spec += f",source={m['source']}"
        spec += f",target={m['target']}" + (",readonly" if m["read_only"] else "")
        args.append(f"--mount {_q(spec)}")
        if m["type"] == "volume":
            notes.append(f"mounts: the named volume {m['source']} is a separate volume on each node")
    if e["user"] is not None:
        args.append(f"--user {_q(e['user'])}")
    if job.user_is_host:
        notes.append(f"user: host runs as {e['user']} without the passwd entry and home folder ngcws up writes")
    if e["working_dir"] is not None:
        args.append(f"-w {_q(e['working_dir'])}")
    env = dict(e["env"])
    if e["gpus"] == "none" or not job.gpus_per_node:
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    # A secret's value is never written here: `-e NAME` takes it from the task's environment, which
    # Slurm copied from sbatch's (ngcws submit puts it there).
    args += [f"-e {k}" if k in job.secret_env else f"-e {_q(f'{k}={v}')}" for k, v in sorted(env.items())]
    passed = ["SLURM_JOB_ID", "SLURM_NNODES", "SLURM_NODEID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS"]
    if job.launcher == "torchrun":
        passed += ["NGCWS_RDZV"]
        args += [f"-e {v}" for v in passed]
        args += ['-e NGCWS_IS_HOST="$is_host"', '-e NGCWS_NODE_ADDR="$node_addr"']
    else:
        args += [f"-e {v}" for v in passed]
        args += [
            "-e MASTER_ADDR",
            "-e MASTER_PORT",
            '-e RANK="$SLURM_PROCID"',
            '-e LOCAL_RANK="$SLURM_LOCALID"',
            '-e WORLD_SIZE="$SLURM_NTASKS"',
            f"-e LOCAL_WORLD_SIZE={job.procs_per_node}",
        ]
    if e["ports"]:
        notes.append("ports: not published: the containers use the host network (--network host)")
    if e["restart"] != "no":
        notes.append(f"restart: {e['restart']} is not applied: a job's container ends with the job")
    return args


def _docker_task(job: ClusterJob, notes: list[str]) -> str:
    e = job.essence
    suffix = "-${SLURM_NODEID}" + ("-${SLURM_LOCALID}" if job.launcher == "srun" else "")
    lines = [
        _SINGLE_QUOTED,
        "set -euo pipefail",
        f'name="{job.name}-${{SLURM_JOB_ID}}{suffix}"',
        "# dockerd runs the container outside the job's cgroups: remove it on exit, failure and cancel.",
        'cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; }',
        "trap cleanup EXIT",
        "trap 'exit 143' TERM",
        "trap 'exit 130' INT",
    ]
    if job.gpus_per_node:
        caps = ",".join(e["capabilities"] or [])
        cap_field = f',\\"capabilities={caps}\\"' if caps else ""
        lines += [
            "# The global ids of the GPUs Slurm gave this step (not CUDA_VISIBLE_DEVICES, which is renumbered).",
            "gpus=${SLURM_STEP_GPUS:-${SLURM_JOB_GPUS:-}}",
            'if [ -z "$gpus" ]; then',
            f'  echo "ngcws: Slurm allocated no GPUs on $SLURMD_NODENAME (asked gres gpu:{job.gpus_per_node})" >&2',
            "  exit 1",
            "fi",
            f'gpu_args=(--gpus "\\"device=$gpus\\"{cap_field}")',
        ]
    if job.launcher == "torchrun":
        lines += [_NODE_ADDR.rstrip("\n"), "is_host=0", 'if [ "$SLURM_NODEID" = 0 ]; then is_host=1; fi']
        inner = launch_command(
            job, is_host="$NGCWS_IS_HOST", rdzv="$NGCWS_RDZV", rdzv_id="$SLURM_JOB_ID", local_addr="$NGCWS_NODE_ADDR"
        )
    else:
        inner = launch_command(job, is_host="", rdzv="", rdzv_id="")
    args = _docker_args(job, notes)
    run = ["docker run"] + [f"  {a}" for a in args] + [f"  {_q(e['image'])} bash -c {_q(inner)} &"]
    lines += [" \\\n".join(run), "wait $!"]
    return "\n".join(lines) + "\n"


def _render_docker(job: ClusterJob, output: str) -> BatchScript:
    notes: list[str] = []
    e = job.essence
    task = _docker_task(job, notes)
    notes += [f"{k}: not carried over to the docker runtime on Slurm" for k in unhandled(e)]
    lines = _header(job, "docker", output)
    lines += [f"# ngcws note: {n}" for n in notes]
    lines += _rendezvous(job)
    lines += [
        f"# The image on each node ({job.pull}), with the credentials of the user running the job there.",
        f"srun --nodes={job.nodes} --ntasks={job.nodes} --ntasks-per-node=1"
        f" bash -c {_q(_pull_task(e['image'], job.pull))}",
        "# One task per node (torchrun) or per process (srun launcher): its container on its node.",
        "read -r -d '' NGCWS_TASK <<'NGCWS_TASK' || true",
        task.rstrip("\n"),
        "NGCWS_TASK",
        "status=0",
        f'{_step(job)} bash -c "$NGCWS_TASK" || status=$?',
        "# A task killed outright (SIGKILL: its neighbour failed, --kill-on-bad-exit) cannot remove its",
        "# container; this step does, on every node.",
        f"srun --nodes={job.nodes} --ntasks={job.nodes} --ntasks-per-node=1 bash -c {_q(_CLEANUP)} || true",
        'exit "$status"',
    ]
    return BatchScript("\n".join(lines) + "\n", "docker", notes, task)


# --- pyxis ----------------------------------------------------------------------------------------


def _pyxis_mount(m: dict[str, Any], notes: list[str]) -> str | None:
    if m["type"] == "volume":
        notes.append(f"mounts: the named volume {m['source'] or '(anonymous)'} → {m['target']} has no pyxis form")
        return None
    source = "tmpfs" if m["type"] == "tmpfs" else m["source"]
    return f"{source}:{m['target']}" + (":ro" if m["read_only"] else "")


def _render_pyxis(job: ClusterJob, output: str) -> BatchScript:
    e = job.essence
    notes: list[str] = []
    if e["shm_size"] is not None:
        notes.append(
            f"shm_size: {format_size(e['shm_size'])} is not enforceable under pyxis: the node's /dev/shm is used"
            " (as with ipc: host)"
        )
    if e["ipc"] not in (None, "host"):
        notes.append(f"ipc: {e['ipc']} is not applied under pyxis: the node's /dev/shm is shared")
    if e["user"] not in (None, "root") and not job.user_is_host:
        notes.append(f"user: {e['user']} is not applied: pyxis runs the container as the submitting user")
    if e["ports"]:
        notes.append("ports: not published: pyxis containers share the node's network")
    if e["restart"] != "no":
        notes.append(f"restart: {e['restart']} is not applied: a job's container ends with the job")
    if e["labels"]:
        notes.append("labels: enroot containers have no labels")
    if e["init"]:
        notes.append("init: no init process under pyxis (enroot shares the node's PID namespace)")
    env = dict(e["env"])
    if e["gpus"] == "none" or not job.gpus_per_node:
        env["NVIDIA_VISIBLE_DEVICES"] = "void"
    if e["capabilities"]:
        env["NVIDIA_DRIVER_CAPABILITIES"] = ",".join(e["capabilities"])
    mounts = [m for m in (_pyxis_mount(m, notes) for m in e["mounts"]) if m]
    notes += [f"{k}: not carried over to pyxis" for k in unhandled(e)]

    lines = _header(job, "pyxis", output)
    lines += [f"# ngcws note: {n}" for n in notes]
    if e["ulimits"]:
        lines.append("# ulimits: pyxis sets none; Slurm propagates the batch shell's limits to the tasks.")
        lines += ulimit_lines(e["ulimits"], "capped by the node's hard limit")
    lines += _rendezvous(job)
    public = {k: v for k, v in sorted(env.items()) if k not in job.secret_env}
    if public:
        lines.append("export " + " ".join(_q(f"{k}={v}") for k, v in public.items()))
    passed = sorted(env) + (["NGCWS_RDZV"] if job.launcher == "torchrun" else ["MASTER_ADDR", "MASTER_PORT"])
    step = [
        _step(job),
        f"--container-image={_q(enroot_image(e['image']))}",
        f'--container-name="{job.name}-${{SLURM_JOB_ID}}"',
    ]
    if mounts:
        step.append(f"--container-mounts={_q(','.join(mounts))}")
    if e["working_dir"]:
        step.append(f"--container-workdir={_q(e['working_dir'])}")
    step.append(f"--container-env={','.join(passed)}")
    step.append("--no-container-mount-home")
    if e["user"] == "root":
        step.append("--container-remap-root")
    if job.launcher == "torchrun":
        inner = 'is_host=0; if [ "$SLURM_NODEID" = 0 ]; then is_host=1; fi; ' + launch_command(
            job, is_host="$is_host", rdzv="$NGCWS_RDZV", rdzv_id="$SLURM_JOB_ID"
        )
    else:
        inner = (
            'export RANK="$SLURM_PROCID" LOCAL_RANK="$SLURM_LOCALID" WORLD_SIZE="$SLURM_NTASKS"'
            f" LOCAL_WORLD_SIZE={job.procs_per_node}; " + launch_command(job, is_host="", rdzv="", rdzv_id="")
        )
    step.append(f"bash -c {_q(inner)}")
    lines.append(" \\\n  ".join(step))
    return BatchScript("\n".join(lines) + "\n", "pyxis", notes)


def render(job: ClusterJob, runtime: str, output: str) -> BatchScript:
    """The batch script of ``job`` for ``runtime`` (pyxis or docker), writing its output to ``output``."""
    if runtime == "pyxis":
        script = _render_pyxis(job, output)
    elif runtime == "docker":
        script = _render_docker(job, output)
    else:
        raise ValueError(f"unknown runtime {runtime!r}")
    script.notes.extend(job.secret_notes("the batch script"))
    return script
