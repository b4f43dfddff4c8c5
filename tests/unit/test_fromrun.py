"""`ngcws init --from-docker-run`: NVIDIA's guide's commands and the README's example, as a table.

The guide's placeholders are filled in (`<xx.xx>` a tag, `container_dir` an absolute path, as docker wants).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ngcws.fromrun import FromRunError, translate
from ngcws.model import Workspace

README_EXAMPLE = """docker run --gpus '"device=0,1"' --ipc=host --ulimit memlock=-1 --ulimit stack=67108864 \\
  -v $PWD:/workspace -it --rm nvcr.io/nvidia/pytorch:23.08-py3"""
PYT = "nvcr.io/nvidia/pytorch:23.08-py3"

# (the pasted line, the workspace it becomes)
CASES: list[tuple[str, dict[str, Any]]] = [
    (
        README_EXAMPLE,
        {
            "image": PYT,
            "gpus": [0, 1],
            "ipc": "host",
            "ulimits": {"memlock": -1, "stack": 67108864},
            "mounts": [".:/workspace"],
            "init": False,
        },
    ),
    (
        f"docker run --gpus all -it --rm -v ./local_dir:/container_dir {PYT}",
        {"image": PYT, "gpus": "all", "mounts": ["./local_dir:/container_dir"], "init": False},
    ),
    (
        f"nvidia-docker run -it --rm -v ./local_dir:/container_dir {PYT}",
        {
            "image": PYT,
            "gpus": "all",
            "mounts": ["./local_dir:/container_dir"],
            "init": False,
            "gpu_request": "runtime",
        },
    ),
    (
        f"docker run --gpus all -it --rm -v ./local_dir:/container_dir {PYT} python train.py --epochs 3",
        {
            "image": PYT,
            "gpus": "all",
            "mounts": ["./local_dir:/container_dir"],
            "init": False,
            "command": ["python", "train.py", "--epochs", "3"],
        },
    ),
    (
        "docker run --gpus all nvidia/cuda nvidia-smi",
        {"image": "nvidia/cuda", "gpus": "all", "init": False, "command": ["nvidia-smi"]},
    ),
    (
        "docker run --gpus 2 nvidia/cuda nvidia-smi",
        {"image": "nvidia/cuda", "gpus": 2, "init": False, "command": ["nvidia-smi"]},
    ),
    (
        "docker run --gpus device=1,2 nvidia/cuda nvidia-smi",
        {"image": "nvidia/cuda", "gpus": [1, 2], "init": False, "command": ["nvidia-smi"]},
    ),
    (
        """docker run --gpus '"device=1,2"' nvidia/cuda nvidia-smi""",
        {"image": "nvidia/cuda", "gpus": [1, 2], "init": False, "command": ["nvidia-smi"]},
    ),
    (
        "docker run --gpus device=GPU-3a1b2c3d-0000-1111-2222-333344445555,1 nvidia/cuda nvidia-smi",
        {
            "image": "nvidia/cuda",
            "gpus": ["GPU-3a1b2c3d-0000-1111-2222-333344445555", 1],
            "init": False,
            "command": ["nvidia-smi"],
        },
    ),
    (
        "docker run --gpus all,capabilities=utility --rm debian:stretch nvidia-smi",
        {
            "image": "debian:stretch",
            "gpus": "all",
            "capabilities": ["utility"],
            "init": False,
            "command": ["nvidia-smi"],
        },
    ),
    (
        """docker run --gpus '"count=2","capabilities=compute,utility"' img""",
        {"image": "img", "gpus": 2, "capabilities": ["compute", "utility"], "init": False},
    ),
    (
        "docker run --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=0,1 -e K=v img",
        {"image": "img", "env": {"K": "v"}, "gpus": [0, 1], "init": False, "gpu_request": "runtime"},
    ),
    (
        "docker run --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=void img",
        {"image": "img", "gpus": "none", "init": False, "gpu_request": "runtime"},
    ),
    ("docker run img", {"image": "img", "gpus": "none", "init": False}),
    (
        "sudo docker run -d --init --shm-size=16g --name trainer -w /workspace -u 1000:1000 -p 8888:8888 img",
        {
            "image": "img",
            "gpus": "none",
            "shm_size": "16g",
            "working_dir": "/workspace",
            "user": "1000:1000",
            "ports": ["8888:8888"],
            "init": True,
        },
    ),
    (
        "docker run --env-file .env --mount type=bind,source=/tmp,target=/data,readonly img",
        {
            "image": "img",
            "gpus": "none",
            "env_file": [".env"],
            "init": False,
            "mounts": [{"type": "bind", "source": "/tmp", "target": "/data", "read_only": True}],
        },
    ),
    (
        "docker run --network=host --device=/dev/infiniband --cap-add=IPC_LOCK --privileged "
        "--security-opt seccomp=unconfined --entrypoint /bin/sh --cpus 1.5 -m 8g --tmpfs /scratch img -c true",
        {
            "image": "img",
            "gpus": "none",
            "init": False,
            "network_mode": "host",
            "devices": ["/dev/infiniband"],
            "cap_add": ["IPC_LOCK"],
            "security_opt": ["seccomp=unconfined"],
            "privileged": True,
            "entrypoint": ["/bin/sh"],
            "cpus": 1.5,
            "mem_limit": "8g",
            "tmpfs": ["/scratch"],
            "command": ["-c", "true"],
        },
    ),
    (
        "docker run -h node1 --net=bridge img",
        {"image": "img", "gpus": "none", "init": False, "network_mode": "bridge", "hostname": "node1"},
    ),
    (
        "docker run --health-cmd 'curl -f localhost' --health-retries 3 --restart unless-stopped -l a=b img",
        {
            "image": "img",
            "gpus": "none",
            "restart": "unless-stopped",
            "init": False,
            "labels": {"a": "b"},
            "healthcheck": {"test": "curl -f localhost", "retries": 3},
        },
    ),
]


@pytest.mark.parametrize(("line", "expected"), CASES, ids=[c[0][:60] for c in CASES])
def test_translates(line: str, expected: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # where the relative paths are checked
    (tmp_path / "local_dir").mkdir()
    (tmp_path / ".env").write_text("A=b\n")
    workspace = translate(line).workspace
    assert workspace == expected
    Workspace.model_validate(workspace)  # the file ngcws init writes is valid


def test_name_and_notes() -> None:
    t = translate("docker run -it --rm --name trainer img")
    assert t.name == "trainer"
    assert [n.split(":")[0] for n in t.notes] == ["-i", "-t", "--rm", "--name"]
    assert t.untranslated == []


@pytest.mark.parametrize(
    ("line", "untranslated"),
    [
        ("docker run --restart on-failure:3 img", ["--restart on-failure:3"]),
        (
            "docker run -e HOME --log-driver=none --oom-kill-disable img",
            ["-e HOME", "--log-driver none", "--oom-kill-disable"],
        ),
        (
            "docker run --mount type=bind,src=/a,dst=/b,bind-propagation=shared img",
            ["--mount type=bind,src=/a,dst=/b,bind-propagation=shared"],
        ),
    ],
)
def test_untranslated_are_listed(line: str, untranslated: list[str]) -> None:
    assert translate(line).untranslated == untranslated


@pytest.mark.parametrize(
    "line",
    [
        "docker ps",
        "docker run -it",
        "podman run img",
        "docker run 'unclosed img",
        "docker run --gpus foo img",
        "docker run --gpus all,driver=x img",
        "docker run --cpus abc img",
        "docker run --ulimit nofile=x img",
    ],
)
def test_not_a_run_line(line: str) -> None:
    with pytest.raises(FromRunError):
        translate(line)


def _ngcws(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ngcws", *args], cwd=tmp_path, capture_output=True, text=True, input=stdin
    )


def test_cli_reads_the_pasted_lines_from_stdin(tmp_path: Path) -> None:
    result = _ngcws(tmp_path, "init", "--from-docker-run", "-", "--print", stdin=README_EXAMPLE + "\n")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["workspaces"]["main"]["gpus"] == [0, 1]
    # the original command, as a comment that pastes back as the same command
    assert """--gpus '"device=0,1"' --ipc=host""" in result.stdout


def test_a_secret_is_kept_out_of_the_file(tmp_path: Path) -> None:
    line = "docker run -e NGC_API_KEY=s3cr3t-value -e HF_TOKEN=hf_abc -e A=b img"
    assert translate(line).workspace["env"] == {"NGC_API_KEY": "${NGC_API_KEY}", "HF_TOKEN": "${HF_TOKEN}", "A": "b"}
    result = _ngcws(tmp_path, "init", "--from-docker-run", line, "--print")
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-value" not in result.stdout + result.stderr and "hf_abc" not in result.stdout + result.stderr
    assert "NGC_API_KEY=<redacted>" in result.stdout


def test_cli_writes_prints_and_refuses_overwrite(tmp_path: Path) -> None:
    line = "docker run --gpus 2 --log-driver=none -it img python a.py"
    printed = _ngcws(tmp_path, "init", "--from-docker-run", line, "-")
    assert printed.returncode == 0 and not (tmp_path / "ngcws.yaml").exists()
    assert printed.stdout.startswith("# yaml-language-server: $schema=./.ngcws.schema.json")
    assert "NOT TRANSLATED" in printed.stdout and "--log-driver none" in printed.stdout
    assert "not translated (no ngcws.yaml field; listed in the file): --log-driver none" in printed.stderr
    assert yaml.safe_load(printed.stdout)["workspaces"]["main"]["gpus"] == 2
    assert _ngcws(tmp_path, "init", "--from-docker-run", line).returncode == 0
    assert (tmp_path / "ngcws.yaml").read_text() == printed.stdout
    assert (tmp_path / ".ngcws.schema.json").is_file()
    again = _ngcws(tmp_path, "init", "--from-docker-run", "docker run other")
    assert again.returncode == 2 and "--force" in again.stderr
    assert _ngcws(tmp_path, "init", "--from-docker-run", "docker run other", "--force").returncode == 0
    assert "other" in (tmp_path / "ngcws.yaml").read_text()


def test_cli_refuses_what_the_model_refuses(tmp_path: Path) -> None:
    # NVIDIA's guide spells `capabilities=utilities`; there is no such capability: said, not guessed.
    result = _ngcws(
        tmp_path, "init", "--from-docker-run", "docker run --gpus all,capabilities=utilities img", "--print"
    )
    assert result.returncode == 2 and "did you mean 'utility'" in result.stderr and "Traceback" not in result.stderr
