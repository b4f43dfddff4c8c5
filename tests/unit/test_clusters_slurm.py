"""The sbatch scripts of `ngcws submit`, without Slurm: goldens for pyxis and docker, `bash -n` and
shellcheck, the invariants from the research (docs/clusters.md), and the pyxis contract through a
fake `srun` that parses the --container-* flags by pyxis's grammar."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ngcws.clusters import slurm
from ngcws.clusters.job import ClusterJob, resolve
from ngcws.errors import ConfigError, UsageError
from ngcws.load import load
from tests.unit.clusters_helpers import ALICE, LLM, golden, job_of

FAKES = Path(__file__).resolve().parents[1] / "fakes" / "pyxis"
OUT = "/PROJECT/.ngcws/jobs/ngcws-llm-train-%j.out"


def script(job: ClusterJob, runtime: str) -> slurm.BatchScript:
    return slurm.render(job, runtime, OUT)


@pytest.mark.parametrize("runtime", ["pyxis", "docker"])
def test_golden_scripts(tmp_path: Path, runtime: str) -> None:
    golden(f"llm-{runtime}.sbatch", script(job_of(tmp_path), runtime).text, tmp_path)


@pytest.mark.parametrize("launcher", ["torchrun", "srun"])
@pytest.mark.parametrize("runtime", ["pyxis", "docker"])
def test_scripts_pass_bash_n_and_shellcheck(tmp_path: Path, runtime: str, launcher: str) -> None:
    text = LLM.replace("  gpus_per_node: 8\n", f"  gpus_per_node: 8\n  launcher: {launcher}\n")
    batch = script(job_of(tmp_path, text), runtime)
    files = {"job.sbatch": batch.text}
    if batch.task:
        files["task.sh"] = "#!/bin/bash\n" + batch.task  # the heredoc's text, which shellcheck cannot see
    for name, body in files.items():
        path = tmp_path / name
        path.write_text(body)
        subprocess.run(["bash", "-n", str(path)], check=True)
        if shutil.which("shellcheck") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("shellcheck is not installed (scripts/testbed installs it)")
            pytest.skip("shellcheck is not installed")
        checked = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout


def test_pyxis_invariants(tmp_path: Path) -> None:
    text = script(job_of(tmp_path), "pyxis").text
    sbatch = [line for line in text.splitlines() if line.startswith("#SBATCH")]
    assert not any("container" in line for line in sbatch)  # pyxis flags belong on srun only
    assert "--container-image='nvcr.io#nvidia/pytorch:23.08-py3'" in text
    assert "#SBATCH --time=04:00:00" in sbatch
    assert "--kill-on-bad-exit=1" in text
    assert "ulimit -S -s 65536 " in text  # docker's stack=67108864 bytes is 65536 KiB for bash
    assert "ulimit -S -l unlimited " in text
    assert f"--container-mounts=/PROJECT/data:/data:ro,{tmp_path}:/workspace".replace("/PROJECT", str(tmp_path)) in text
    assert "# ngcws note: shm_size: 16g is not enforceable under pyxis" in text
    # Per-node values stay in single quotes: expanded inside each task, not by the batch shell.
    step = text[text.index("bash -c '") :]
    assert '"$SLURM_NODEID" = 0' in step and "is_host=$is_host" in step


def test_docker_invariants(tmp_path: Path) -> None:
    batch = script(job_of(tmp_path), "docker")
    assert "#SBATCH --exclusive" in batch.text
    assert "--network host" in batch.task
    assert "gpus=${SLURM_STEP_GPUS:-${SLURM_JOB_GPUS:-}}" in batch.task
    assert '--gpus "\\"device=$gpus\\",\\"capabilities=compute,utility\\""' in batch.task
    assert '--name "$name"' in batch.task and "trap cleanup EXIT" in batch.task and "--rm" in batch.task
    assert "--shm-size 17179869184" in batch.task and "--ulimit stack=67108864:67108864" in batch.task
    assert "--user 1000:1000" in batch.task and "-e 'MSG=it'\"'\"'s $HOME'" in batch.task


def test_enroot_image_spelling() -> None:
    assert slurm.enroot_image("nvcr.io/nvidia/pytorch:23.08-py3") == "nvcr.io#nvidia/pytorch:23.08-py3"
    assert slurm.enroot_image("localhost:5000/nvidia/pytorch:23.08-py3") == "localhost:5000#nvidia/pytorch:23.08-py3"
    assert slurm.enroot_image("ubuntu:22.04") == "ubuntu:22.04"
    assert slurm.enroot_image("library/ubuntu") == "library/ubuntu"


def _fake_run(tmp_path: Path, text: str) -> list[dict[str, object]]:
    path = tmp_path / "job.sbatch"
    path.write_text(text)
    log = tmp_path / "srun.jsonl"
    env = {
        **os.environ,
        "PATH": f"{FAKES}:{os.environ['PATH']}",
        "FAKE_SRUN_LOG": str(log),
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NODELIST": "n[1-2]",
        "SLURM_NNODES": "2",
    }
    done = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_pyxis_script_through_a_fake_srun_with_pyxis_grammar(tmp_path: Path) -> None:
    nodes = _fake_run(tmp_path, script(job_of(tmp_path), "pyxis").text)
    assert [n["node"] for n in nodes] == [0, 1]
    container = nodes[0]["container"]
    assert isinstance(container, dict)
    assert container["container-image"] == "nvcr.io#nvidia/pytorch:23.08-py3"
    assert container["container-workdir"] == "/workspace"
    assert container["container-name"] == "ngcws-llm-train-42"
    assert container["container-mounts"] == [
        {"source": str(tmp_path / "data"), "target": "/data", "flags": ["ro"]},
        {"source": str(tmp_path), "target": "/workspace", "flags": []},
    ]
    assert set(str(container["container-env"]).split(",")) >= {"NCCL_DEBUG", "MSG", "NGCWS_RDZV"}
    launch = [str(n["stdout"]) for n in nodes]
    # The rendezvous host is pinned to node 0, whose address the batch shell looked up.
    assert "--rdzv-endpoint=10.0.0.1:29500" in launch[0] and "--rdzv-conf=is_host=1" in launch[0]
    assert "--rdzv-conf=is_host=0" in launch[1] and "--rdzv-id=42" in launch[1]
    assert launch[0].strip().endswith("train.py --cfg cfg.yaml")


@pytest.mark.parametrize(
    "bad",
    [
        "--container-image=nvcr.io/nvidia/pytorch:23.08-py3",  # Docker Hub path for enroot < 4
        "--container-image='nvcr.io#nvidia/pytorch:23.08-py3' --container-mounts=data:/data",
        "--container-image='nvcr.io#nvidia/pytorch:23.08-py3' --container-mounts=/d:/data:readonly",
        "--container-image='nvcr.io#nvidia/pytorch:23.08-py3' --container-workdir=work",
        "--container-image='nvcr.io#nvidia/pytorch:23.08-py3' --container-shm=16g",
        "--container-image='nvcr.io#nvidia/pytorch:23.08-py3' --container-env=UNSET_VARIABLE_X",
    ],
)
def test_the_fake_srun_rejects_what_pyxis_rejects(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "job.sh"
    path.write_text(f"srun --nodes=1 {bad} true\n")
    env = {**os.environ, "PATH": f"{FAKES}:{os.environ['PATH']}", "FAKE_SRUN_LOG": str(tmp_path / "log")}
    done = subprocess.run(["bash", str(path)], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "pyxis" in done.stderr


def test_notes_say_what_pyxis_cannot_honour(tmp_path: Path) -> None:
    text = LLM.replace("    user: host\n", "    user: '1234'\n    ports: ['8888:8888']\n    labels: {team: a}\n")
    notes = "\n".join(script(job_of(tmp_path, text), "pyxis").notes)
    for field in ("shm_size", "user: 1234", "ports", "labels", "init"):
        assert field in notes


def test_srun_launcher_one_task_per_gpu(tmp_path: Path) -> None:
    text = LLM.replace("  gpus_per_node: 8\n", "  gpus_per_node: 8\n  launcher: srun\n").replace(
        "command: [train.py, --cfg, cfg.yaml]", "command: [python, train.py]"
    )
    batch = script(job_of(tmp_path, text), "docker")
    assert "#SBATCH --ntasks-per-node=8" in batch.text
    assert '-e RANK="$SLURM_PROCID"' in batch.task and "-e LOCAL_WORLD_SIZE=8" in batch.task
    assert "torch.distributed.run" not in batch.task and "exec python train.py" in batch.task


def test_nodes_override_and_merge_of_the_top_block(tmp_path: Path) -> None:
    text = LLM.replace("    user: host\n", "    user: host\n    distributed: {slurm: {partition: big}}\n")
    job = job_of(tmp_path, text, nodes=4)
    assert job.nodes == 4 and job.slurm.partition == "big" and job.slurm.account == "proj"
    assert job.world_size == 32


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  gpus_per_node: 8\n", ""), "gpus: all does not say how many GPUs"),
        (("  command: [train.py, --cfg, cfg.yaml]\n", ""), "distributed.command is not set"),
    ],
)
def test_resolution_errors(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        job_of(tmp_path, LLM.replace(*change))


@pytest.mark.parametrize(("written", "emitted"), [("90", "90"), ("1:30:00", "1:30:00"), ('"2-00:00:00"', "2-00:00:00")])
def test_time_limits(tmp_path: Path, written: str, emitted: str) -> None:
    text = LLM.replace('time: "04:00:00"', f"time: {written}")
    assert f"#SBATCH --time={emitted}\n" in script(job_of(tmp_path, text), "docker").text


def test_a_workspace_without_distributed_is_refused(tmp_path: Path) -> None:
    text = "workspaces:\n  a: {image: nvcr.io/nvidia/pytorch:23.08-py3}\n"
    with pytest.raises(UsageError, match="no distributed: block"):
        job_of(tmp_path, text, workspace="a")


@pytest.mark.parametrize(
    ("slurm_block", "message"),
    [
        ('{time: "UNLIMITED"}', "must be finite"),
        ("{time: 1.5}", "whole number of minutes"),
        ("{time: soon}", "expected MINUTES"),
        ("{runtime: docker, exclusive: false}", "needs whole nodes"),
        ("{sbatch: {nodes: 3}}", "set by ngcws"),
        ("{sbatch: {container-image: x}}", "pyxis option"),
        ("{partitio: gpu}", r"unknown key 'partitio' \(did you mean 'partition'"),
    ],
)
def test_slurm_block_validation(tmp_path: Path, slurm_block: str, message: str) -> None:
    text = LLM.replace(
        '  slurm: {partition: gpu, account: proj, time: "04:00:00", sbatch: {qos: high}}', f"  slurm: {slurm_block}"
    )
    with pytest.raises(ConfigError, match=message):
        job_of(tmp_path, text)


def test_a_field_added_to_the_essence_later_is_reported_not_dropped(tmp_path: Path) -> None:
    import dataclasses

    from ngcws.clusters import compose, k8s

    job = job_of(tmp_path)
    newer = dataclasses.replace(job, essence={**job.essence, "cap_add": ["SYS_PTRACE"], "devices": []})
    for runtime in ("pyxis", "docker"):
        assert any(n.startswith("cap_add: not carried over") for n in script(newer, runtime).notes)
        assert not any(n.startswith("devices") for n in script(newer, runtime).notes)  # unset: nothing to say
    assert any(n.startswith("cap_add: not carried over") for n in k8s.render(newer, "indexed-job").notes)
    assert compose.service(newer.essence, "n", notes := [], "train") and notes == [
        "train: cap_add is not carried over to Compose"
    ]


def test_auto_runtime_detects_pyxis_from_srun_help(tmp_path: Path) -> None:
    import sys

    from tests.unit.clusters_helpers import project_file

    project_file(tmp_path)
    env = {**os.environ, "PATH": f"{FAKES}:{os.environ['PATH']}"}
    done = subprocess.run(
        [sys.executable, "-m", "ngcws", "submit", "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "pyxis runtime" in done.stdout and "--container-image='nvcr.io#nvidia/pytorch:23.08-py3'" in done.stdout
    assert "warning: shm_size: 16g is not enforceable under pyxis" in done.stderr


def test_submit_without_slurm_says_so(tmp_path: Path) -> None:
    import sys

    from tests.unit.clusters_helpers import project_file

    project_file(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "ngcws", "submit", "--runtime", "docker"],
        cwd=tmp_path,
        env={**os.environ, "PATH": str(tmp_path / "no-slurm-here")},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "error: sbatch not found: submitting the job needs Slurm's commands on PATH" in done.stderr
    assert "Traceback" not in done.stderr


def test_secret_values_are_never_written(tmp_path: Path) -> None:
    from ngcws.clusters import k8s

    text = LLM.replace('MSG: "it\'s $$HOME"', "MSG: hi, WANDB_API_KEY: s3cret-value")
    job = job_of(tmp_path, text)
    assert job.secret_env == {"WANDB_API_KEY"} and job.secret_values == {"WANDB_API_KEY": "s3cret-value"}
    for runtime in ("pyxis", "docker"):
        batch = script(job, runtime)
        assert "s3cret-value" not in batch.text
        assert "# Secrets, from the environment `ngcws submit` gave sbatch" in batch.text
    assert "-e WANDB_API_KEY \\" in script(job, "docker").task
    assert "WANDB_API_KEY" in script(job, "pyxis").text.split("--container-env=")[1].split()[0]
    manifest = k8s.render(job, "indexed-job")
    assert "s3cret-value" not in manifest.text
    env = manifest.documents[1]["spec"]["template"]["spec"]["containers"][0]["env"]
    secret_ref = {"secretKeyRef": {"name": "ngcws-llm-train-env", "key": "WANDB_API_KEY"}}
    assert {"name": "WANDB_API_KEY", "valueFrom": secret_ref} in env


def test_compose_export_reads_secrets_from_the_environment(tmp_path: Path) -> None:
    import sys

    from tests.unit.clusters_helpers import project_file

    project_file(tmp_path, LLM.replace('MSG: "it\'s $$HOME"', "MSG: hi, WANDB_API_KEY: s3cret-value"))
    done = subprocess.run(
        [sys.executable, "-m", "ngcws", "export", "compose"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "s3cret-value" not in done.stdout and "secret:hmac" not in done.stdout
    import yaml

    env = yaml.safe_load(done.stdout)["services"]["train"]["environment"]
    assert env["WANDB_API_KEY"].startswith("${WANDB_API_KEY:?WANDB_API_KEY is a secret")


def test_a_secret_variable_outside_env_is_a_reference_in_compose_and_a_note_elsewhere(tmp_path: Path) -> None:
    import sys

    import yaml

    from ngcws.clusters import k8s
    from tests.unit.clusters_helpers import project_file

    text = LLM.replace("command: [train.py, --cfg, cfg.yaml]", "command: [train.py, --token, '${HF_TOKEN}']")
    text = text.replace("    user: host\n", "    user: host\n    labels: {auth: 'Bearer ${HF_TOKEN}'}\n")
    project_file(tmp_path, text)
    env = {**os.environ, "HF_TOKEN": "hf-s3cret-value"}
    done = subprocess.run(
        [sys.executable, "-m", "ngcws", "export", "compose"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "hf-s3cret-value" not in done.stdout and "secret:hmac" not in done.stdout
    service = yaml.safe_load(done.stdout)["services"]["train"]
    assert service["labels"]["auth"] == "Bearer ${HF_TOKEN:?HF_TOKEN is a secret: set it in the environment}"
    assert "secret variable HF_TOKEN is written as ${NAME}" in done.stderr, done.stderr
    job = resolve(load(str(tmp_path / "ngcws.yaml"), environ={"HF_TOKEN": "hf-s3cret-value"}), "train", ALICE)
    note = "the value of the secret variable HF_TOKEN (used outside env:) is written into"
    assert any(note in n for n in script(job, "pyxis").notes) and any(
        note in n for n in k8s.render(job, "jobset").notes
    )
    job = job_of(tmp_path, LLM)
    assert job.secret_elsewhere == () and not any("secret" in n for n in script(job, "pyxis").notes)
    # Two variables with one value (.env INDIRECT=${HF_TOKEN}): the reference names the secret one.
    (tmp_path / ".env").write_text("INDIRECT=${HF_TOKEN}\n")
    project_file(tmp_path, text.replace("labels: {auth:", "labels: {a0: '${INDIRECT}', auth:"))
    done = subprocess.run(
        [sys.executable, "-m", "ngcws", "export", "compose"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and "INDIRECT" not in done.stdout and "hf-s3cret-value" not in done.stdout, done.stdout


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("  nodes: 2\n", "  nodes: many\n"), "distributed.nodes: expected a whole number, 1 or more, got 'many'"),
        (("  nodes: 2\n", "  nodes: 2\n  launcher: mpi\n"), "distributed.launcher: expected torchrun or srun"),
        (
            ('time: "04:00:00"', 'time: "04:00:00", runtime: enroot'),
            "distributed.slurm.runtime: expected auto, pyxis or docker",
        ),
    ],
)
def test_distributed_errors_in_words(tmp_path: Path, change: tuple[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(")", r"\)")):
        job_of(tmp_path, LLM.replace(*change))
