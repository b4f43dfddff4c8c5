"""`ngcws submit` on a real two-node Slurm (the test bed's slurmctld + `slurmd -N n1`/`-N n2`),
docker runtime: real PyTorch, torchrun with c10d rendezvous, a gloo all-reduce across the two
nodes; and `ngcws jobs cancel` leaving no container behind on either node."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Workspace

ALLREDUCE = """\
import os, sys, time
import torch, torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)
secret = "ok" if os.environ.get("WANDB_API_KEY") == "s3cret-value" else "missing"
print(f"allreduce rank={rank} world={world} sum={t.item():g} node={os.environ['SLURM_NODEID']} secret={secret}", flush=True)
if len(sys.argv) > 1:
    time.sleep(float(sys.argv[1]))
dist.destroy_process_group()
"""


@pytest.fixture
def slurm(testbed: dict[str, str], gpu_sim: None, monkeypatch: pytest.MonkeyPatch) -> str:
    conf = testbed.get("NGCWS_TB_SLURM_CONF", "")
    if not conf or not testbed.get("NGCWS_TB_TORCH"):
        message = "the test bed has no Slurm cluster or no PyTorch image (run scripts/testbed)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv("SLURM_CONF", conf)
    return conf


@pytest.fixture
def job_project(slurm: str, testbed: dict[str, str], tmp_path: Path) -> Iterator[Workspace]:
    name = f"s{uuid.uuid4().hex[:10]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "allreduce.py").write_text(ALLREDUCE)
    ws = Workspace(folder, name)
    ws.write(
        f"""workspaces:
  train:
    image: {testbed["NGCWS_TB_TORCH"]}
    gpus: 1
    shm_size: 256m
    ulimits: {{stack: 67108864}}
    mounts: [".:/workspace"]
    working_dir: /workspace
    env: {{NCCL_DEBUG: WARN, WANDB_API_KEY: s3cret-value}}
distributed:
  nodes: 2
  command: [allreduce.py]
  slurm: {{time: "00:10:00"}}
"""
    )
    yield ws
    for record in (folder / ".ngcws" / "jobs").glob("*.json"):
        subprocess.run(["scancel", json.loads(record.read_text())["job_id"]], capture_output=True)
    for container in _job_containers({"ngcws.job-project": name}):
        from ngcws.engine import Engine

        Engine().remove(str(container["Id"]), force=True)


def _job_containers(labels: dict[str, str]) -> list[dict[str, object]]:
    from ngcws.engine import Engine

    return Engine().list_containers(labels)


def _state(ws: Workspace, job_id: str) -> str:
    rows = json.loads(ws.ok("jobs", "--format", "json"))
    return next(r["state"] for r in rows if r["job_id"] == job_id)


def test_two_node_torchrun_allreduce_on_the_docker_runtime(job_project: Workspace) -> None:
    job_id = job_project.ok("submit", "--runtime", "auto").strip()
    assert job_id.isdigit()
    output = job_project.ok("jobs", "logs", job_id, "-f", timeout=600)
    # Both nodes' ranks took part: world size 2, 1 + 2 summed across the nodes.
    # Both nodes got the secret env value, which no file on disk holds.
    assert "allreduce rank=0 world=2 sum=3 node=0 secret=ok" in output, output
    assert "allreduce rank=1 world=2 sum=3 node=1 secret=ok" in output, output
    assert _state(job_project, job_id) == "COMPLETED"
    assert _job_containers({"ngcws.slurm-job": job_id}) == []
    jobs = job_project.dir / ".ngcws" / "jobs"
    script = jobs / f"ngcws-{job_project.name}-train-{job_id}.sbatch"
    assert (jobs / f"ngcws-{job_project.name}-train-{job_id}.out").is_file()
    assert "--network host" in script.read_text() and "#SBATCH --exclusive" in script.read_text()
    for kept in jobs.iterdir():
        assert "s3cret-value" not in kept.read_text(), kept


def test_cancel_leaves_no_container_on_either_node(job_project: Workspace) -> None:
    text = (job_project.dir / "ngcws.yaml").read_text().replace("[allreduce.py]", "[allreduce.py, '600']")
    (job_project.dir / "ngcws.yaml").write_text(text)
    job_id = job_project.ok("submit").strip()
    running: list[dict[str, object]] = []
    for _ in range(600):  # until both nodes' containers run (a wait, not a timing assertion)
        running = _job_containers({"ngcws.slurm-job": job_id})
        if len(running) == 2 and "sum=3" in job_project.ok("jobs", "logs", job_id):
            break
        time.sleep(0.5)
    nodes = sorted(str(c["Labels"]["ngcws.slurm-node"]) for c in running)  # type: ignore[index]
    assert nodes == ["n1", "n2"]
    from ngcws.engine import Engine

    for container in running:  # what the file says reached each node's engine
        host = (Engine().inspect_container(str(container["Id"])) or {})["HostConfig"]
        assert host["NetworkMode"] == "host" and host["ShmSize"] == 256 * 1024**2
        assert host["DeviceRequests"][0]["DeviceIDs"] == ["0"]  # the global id Slurm gave the step
        assert {"Name": "stack", "Soft": 67108864, "Hard": 67108864} in host["Ulimits"]
        assert any(m["Target"] == "/workspace" and m["Type"] == "bind" for m in host["Mounts"])
    job_project.ok("jobs", "cancel", job_id, timeout=180)
    assert _state(job_project, job_id) == "CANCELLED"
    assert _job_containers({"ngcws.slurm-job": job_id}) == []
    assert _job_containers({"ngcws.job-project": job_project.name}) == []


FAIL_ON_NODE_1 = """\
import os, sys, time
if os.environ["SLURM_NODEID"] == "1":
    print("node 1 fails", flush=True)
    sys.exit(3)
time.sleep(600)
"""


def test_a_failed_node_stops_the_job_and_leaves_no_container(job_project: Workspace) -> None:
    (job_project.dir / "fail.py").write_text(FAIL_ON_NODE_1)
    text = (job_project.dir / "ngcws.yaml").read_text()
    text = text.replace("command: [allreduce.py]", "launcher: srun\n  command: [python, fail.py]")
    (job_project.dir / "ngcws.yaml").write_text(text)
    job_id = job_project.ok("submit").strip()
    output = job_project.ok("jobs", "logs", job_id, "-f", timeout=300)
    assert "node 1 fails" in output
    assert _state(job_project, job_id) == "FAILED"
    # Node 0's task was killed outright (--kill-on-bad-exit); its container did not outlive it.
    assert _job_containers({"ngcws.slurm-job": job_id}) == []


def test_slurm_refusals_are_messages(job_project: Workspace) -> None:
    text = (job_project.dir / "ngcws.yaml").read_text().replace('time: "00:10:00"', 'time: "00:10:00", partition: nope')
    (job_project.dir / "ngcws.yaml").write_text(text)
    refused = job_project.ngcws("submit")
    assert refused.returncode == 1
    assert b"error: sbatch failed (submitting the job)" in refused.stderr and b"partition" in refused.stderr
    assert b"Traceback" not in refused.stderr
    assert list((job_project.dir / ".ngcws" / "jobs").glob("*.sbatch")) == []  # no script left for no job
    unknown = job_project.ngcws("jobs", "cancel", "999999")
    assert unknown.returncode == 2 and b"was not submitted from this project" in unknown.stderr
