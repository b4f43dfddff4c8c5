"""The Slurm commands: ``submit``, ``jobs``, ``jobs logs``, ``jobs cancel``. I/O lives here.

ngcws does not schedule anything: it writes the batch script (:mod:`ngcws.clusters.slurm`),
hands it to ``sbatch`` and reads ``squeue`` (``sacct`` where accounting exists) back. Each
submitted job leaves a record next to its script and output in ``<project>/.ngcws/jobs/``, so
``ngcws jobs`` knows this project's jobs even after Slurm has forgotten them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ngcws.clusters import slurm
from ngcws.clusters.job import ClusterJob
from ngcws.errors import SchedulerError, UsageError

JOBS_DIR = ".ngcws/jobs"
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING", "SIGNALING"}


@dataclass(frozen=True)
class JobRecord:
    """What ``ngcws submit`` remembers of a job."""

    job_id: str
    name: str
    workspace: str
    runtime: str
    nodes: int
    script: str
    output: str
    submitted: float


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    workspace: str
    name: str
    state: str
    elapsed: str
    nodes: str
    where: str
    output: str


def _run(
    args: list[str], doing: str, *, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)
    except FileNotFoundError:
        raise SchedulerError(
            f"{args[0]} not found: {doing} needs Slurm's commands on PATH",
            hint="run ngcws on a Slurm login node (or install slurm-client and point SLURM_CONF at the cluster)",
        ) from None
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"{args[0]} did not answer within 60 s ({doing})") from None
    if check and done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise SchedulerError(f"{args[0]} failed ({doing}): {message[-1] if message else f'exit {done.returncode}'}")
    return done


def detect_runtime(requested: str) -> str:
    """``auto`` → pyxis when ``srun --help`` lists pyxis's flags, else docker."""
    if requested != "auto":
        return requested
    done = _run(["srun", "--help"], "detecting pyxis", check=False)
    return "pyxis" if "[pyxis]" in done.stdout + done.stderr else "docker"


def jobs_dir(project_dir: str) -> Path:
    return Path(project_dir) / JOBS_DIR


def render(job: ClusterJob, runtime: str) -> slurm.BatchScript:
    output = str(jobs_dir(job.project_dir) / f"{job.name}-%j.out")
    return slurm.render(job, runtime, output)


def submit(job: ClusterJob, script: slurm.BatchScript) -> JobRecord:
    """``sbatch`` the script; keep it, renamed after the job id, beside the job's output."""
    directory = jobs_dir(job.project_dir)
    directory.mkdir(parents=True, exist_ok=True)
    pending = directory / f"{job.name}-submitting-{os.getpid()}.sbatch"
    pending.write_text(script.text)
    try:
        # Secret env values reach the job through sbatch's environment (--export=ALL), not the script.
        env = {**os.environ, **job.secret_values} if job.secret_env else None
        done = _run(["sbatch", "--parsable", "--export=ALL", str(pending)], "submitting the job", env=env)
    except SchedulerError:
        pending.unlink(missing_ok=True)
        raise
    job_id = done.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SchedulerError(f"sbatch printed no job id: {done.stdout.strip()!r}")
    final = directory / f"{job.name}-{job_id}.sbatch"
    pending.rename(final)
    record = JobRecord(
        job_id=job_id,
        name=job.name,
        workspace=job.workspace,
        runtime=script.runtime,
        nodes=job.nodes,
        script=str(final),
        output=str(directory / f"{job.name}-{job_id}.out"),
        submitted=time.time(),
    )
    (directory / f"{job.name}-{job_id}.json").write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


def records(project_dir: str) -> dict[str, JobRecord]:
    """This project's submitted jobs, by job id (oldest first)."""
    out = {}
    for path in sorted(jobs_dir(project_dir).glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            data = json.loads(path.read_text())
            out[str(data["job_id"])] = JobRecord(**data)
        except (ValueError, KeyError, TypeError):
            continue
    return out


def record_of(project_dir: str, job_id: str) -> JobRecord:
    found = records(project_dir).get(job_id.strip())
    if found is None:
        raise UsageError(
            f"job {job_id} was not submitted from this project",
            hint="`ngcws jobs` lists this project's jobs",
        )
    return found


def _squeue(job_ids: list[str]) -> dict[str, dict[str, str]]:
    if not job_ids:
        return {}
    done = _run(
        ["squeue", "-h", "--states=all", "-o", "%i|%T|%M|%D|%R", "-j", ",".join(job_ids)], "listing jobs", check=False
    )
    if done.returncode != 0 and "Invalid job id" not in done.stderr:
        _run(["squeue", "--version"], "listing jobs")  # raises a clear error when Slurm is absent
        raise SchedulerError(f"squeue failed: {done.stderr.strip()}")
    out = {}
    for line in done.stdout.splitlines():
        parts = line.split("|")
        if len(parts) == 5:
            out[parts[0]] = {"state": parts[1], "elapsed": parts[2], "nodes": parts[3], "where": parts[4]}
    if done.returncode != 0 and len(job_ids) > 1:  # one forgotten id fails the whole query: ask one by one
        for job_id in job_ids:
            if job_id not in out:
                out.update(_squeue([job_id]))
    return out


def _sacct(job_ids: list[str]) -> dict[str, dict[str, str]]:
    fields = "JobID,State,Elapsed,NNodes"
    done = _run(["sacct", "-n", "-X", "-P", "-o", fields, "-j", ",".join(job_ids)], "accounting", check=False)
    out = {}
    if done.returncode == 0:
        for line in done.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == 4:
                out[parts[0]] = {"state": parts[1].split()[0], "elapsed": parts[2], "nodes": parts[3], "where": ""}
    return out


def statuses(project_dir: str, only: list[str] | None = None) -> list[JobStatus]:
    """Each recorded job with its state: squeue first, then sacct, else ``FINISHED?``."""
    known = records(project_dir)
    ids = [i for i in known if only is None or i in only]
    found = _squeue(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        found.update(_sacct(missing))
    rows = []
    for job_id in ids:
        rec = known[job_id]
        info = found.get(job_id, {"state": "UNKNOWN", "elapsed": "", "nodes": str(rec.nodes), "where": ""})
        state, elapsed, nodes, where = info["state"], info["elapsed"], info["nodes"], info["where"]
        rows.append(JobStatus(job_id, rec.workspace, rec.name, state, elapsed, nodes, where, rec.output))
    return rows


def state_of(job_id: str) -> str:
    info = _squeue([job_id]).get(job_id) or _sacct([job_id]).get(job_id)
    return info["state"] if info else "UNKNOWN"


def follow_output(record: JobRecord, follow: bool, poll: float = 0.5) -> int:
    """Print the job's output; with ``follow``, until the job has ended."""
    path = Path(record.output)
    offset = 0
    out = sys.stdout.buffer
    while True:
        active = follow and state_of(record.job_id) in ACTIVE
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            if chunk:
                out.write(chunk)
                out.flush()
                offset += len(chunk)
        elif not follow:
            raise UsageError(f"job {record.job_id} has no output yet ({path})")
        if not active:
            return 0
        time.sleep(poll)


def cancel(record: JobRecord, wait: float = 120.0) -> str:
    """``scancel`` the job and wait until Slurm has ended every step (the tasks remove their containers)."""
    _run(["scancel", record.job_id], f"cancelling job {record.job_id}")
    deadline = time.monotonic() + wait
    state = state_of(record.job_id)
    while state in ACTIVE and time.monotonic() < deadline:
        time.sleep(0.5)
        state = state_of(record.job_id)
    if state in ACTIVE:
        raise SchedulerError(f"job {record.job_id} is still {state} {wait:.0f} s after scancel")
    return state


def leftover_filter(record: JobRecord) -> dict[str, str]:
    """The label filter of a docker-runtime job's containers."""
    return {slurm.SLURM_JOB: record.job_id}


def describe(record: JobRecord) -> dict[str, Any]:
    return asdict(record)
