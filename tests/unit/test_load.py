"""The loader: valid files resolve to canonical models; every mistake names file:line:col and the field."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ngcws.errors import ConfigError, ConfigNotFound, UsageError
from ngcws.load import load


def write(folder: Path, text: str, name: str = "ngcws.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load_text(tmp_path: Path, text: str, **kwargs: object) -> object:
    write(tmp_path, text)
    return load(cwd=tmp_path, environ=kwargs.pop("environ", {}), **kwargs)  # type: ignore[arg-type]


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text, environ=environ or {})
    assert info.value.exit_code == 2
    return info.value.message


MINIMAL = "workspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"


def test_minimal_file_gets_defaults_and_folder_name(tmp_path: Path) -> None:
    folder = tmp_path / "ResNet Lab!"
    folder.mkdir()
    project = load_text(folder, MINIMAL)
    assert project.name == "resnetlab"  # type: ignore[attr-defined]
    ws = project.workspaces["train"]  # type: ignore[attr-defined]
    assert (ws.gpus, ws.capabilities, ws.pull, ws.init, ws.restart) == ("all", None, "missing", True, "no")


def test_full_example_resolves(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write(tmp_path, "WANDB_MODE=offline\nEXTRA=1\n", ".env.train")
    project = load_text(
        tmp_path,
        """\
name: resnet-lab
workspaces:
  train:
    image: nvcr.io#nvidia/pytorch:23.08-py3
    gpus: [0, "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"]
    capabilities: [utility, compute, utility]
    shm_size: 16g
    ipc: private
    ulimits: {memlock: -1, stack: 67108864, nofile: {soft: 1024, hard: 4096}}
    mounts:
      - .:/workspace
      - ./data:/data:ro
      - {type: volume, source: cache, target: /root/.cache}
    env: [WANDB_MODE=online, "A=${A_VAR:-fallback}"]
    env_file: .env.train
    working_dir: /workspace
    user: "1000:1000"
    command: python serve.py --port 8888
    ports: ["8888:8888", 6006]
    restart: unless-stopped
    labels: {team: vision}
""",
    )
    ws = project.workspaces["train"]  # type: ignore[attr-defined]
    assert ws.image == "nvcr.io/nvidia/pytorch:23.08-py3"
    assert ws.gpus == ["0", "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"]
    assert ws.capabilities == ["compute", "utility"]
    assert ws.shm_size == 16 * 1024**3
    assert ws.ulimits["memlock"].soft == -1 and ws.ulimits["nofile"].hard == 4096
    assert [m.source for m in ws.mounts] == [str(tmp_path), str(tmp_path / "data"), "cache"]
    assert ws.mounts[1].read_only and ws.mounts[2].type == "volume"
    assert ws.env == {"WANDB_MODE": "online", "EXTRA": "1", "A": "fallback"}  # env wins over env_file
    assert ws.command == ["python", "serve.py", "--port", "8888"]
    assert ws.ports[1] == {"host_ip": "", "host_port": None, "container_port": 6006, "protocol": "tcp"}


def test_equivalent_spellings_give_equal_models(tmp_path: Path) -> None:
    a = load_text(
        tmp_path, MINIMAL + "    shm_size: 16g\n    gpus: '\"device=0,1\"'\n".replace("'\"", "'").replace("\"'", "'")
    )
    b = load_text(tmp_path, MINIMAL + "    shm_size: 17179869184\n    gpus: [0, 1]\n")
    assert a.workspaces == b.workspaces  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    gpus: al\n",
            r"ngcws.yaml:4:11: workspaces.train.gpus: expected all, none, a count or a list of GPU ids, got 'al' \(did you mean 'all'\?\)",
        ),
        (
            "    gpus: {count: 2, device_ids: [0]}\n",
            r":4:11: workspaces.train.gpus: a count and GPU ids cannot be combined",
        ),
        ("    gpus: [0, GPU-abc]\n", r":4:11: workspaces.train.gpus: 'GPU-abc' is not a GPU id"),
        (
            "    capabilities: [utilities]\n",
            r":4:19: workspaces.train.capabilities: unknown capability 'utilities'.*did you mean 'utility'",
        ),
        ("    shm_size: 16x\n", r":4:15: workspaces.train.shm_size: expected a size"),
        ("    shm: 16g\n", r":4:10: workspaces.train.shm: unknown key 'shm' \(did you mean 'shm_size'\?\)"),
        ("    ipc: hots\n", r":4:10: workspaces.train.ipc: .*got 'hots' \(did you mean 'host'\?\)"),
        ("    ulimits: {stak: 1}\n", r"workspaces.train.ulimits: unknown ulimit 'stak' \(did you mean 'stack'\?\)"),
        (
            "    mounts: [./x:relative]\n",
            r":4:14: workspaces.train.mounts\[0\].target: the mount target must be an absolute path",
        ),
        (
            "    mounts: ['~/datsets-ngcws-test:/data']\n",
            r"workspaces.train.mounts\[0\]: the bind-mount source '.*datsets-ngcws-test' does not exist",
        ),
        ("    env_file: missing.env\n", r":4:15: workspaces.train.env_file: env_file '.*missing.env' does not exist"),
        (
            "    env: {A: ${NOPE_UNDEFINED}}\n".replace("{A: ${NOPE_UNDEFINED}}", "\n      A: ${NOPE_UNDEFINED}"),
            r":5:10: workspaces.train.env.A: variable \$\{NOPE_UNDEFINED\} is not set",
        ),
        ("    labels: {ngcws.project: x}\n", r"the ngcws. prefix is reserved"),
        ("    restart: sometimes\n", r"workspaces.train.restart: expected no, always, on-failure or unless-stopped"),
        ("    working_dir: workspace\n", r"working_dir must be an absolute path"),
        ("    gpus: [GPU-3a23c669]\n", r"'GPU-3a23c669' is not a GPU id: use .* a full UUID"),
        ("    gpus: ['0:x']\n", r"'0:x' is not a GPU id"),
        ("    gpu_request: cdi\n    capabilities: [utility]\n", r"capabilities do not apply to gpu_request: cdi"),
        ("    gpu_request: runtime\n    env: {NVIDIA_VISIBLE_DEVICES: '0'}\n", r"write gpus: \[0, 1\] instead"),
        ("    gpu_request: legacy\n", r"workspaces.train.gpu_request: expected auto, device-requests, runtime or cdi"),
    ],
)
def test_mistakes_name_file_line_column_and_field(tmp_path: Path, body: str, expected: str) -> None:
    assert re.search(expected, error_of(tmp_path, MINIMAL + body)), error_of(tmp_path, MINIMAL + body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", r"ngcws.yaml:1:1: the file is empty"),
        ("- a\n- b\n", r"ngcws.yaml:1:1: the top level must be a mapping"),
        ("name: x\n", r"workspaces: this field is required"),
        ("workspaces: {}\n", r"workspaces: define at least one workspace"),
        ("workspaces:\n  train:\n\timage: x\n", r"ngcws.yaml:3:1: a tab indents this line"),
        ("workspaces:\n  train:\n    image: [unclosed\n", r"ngcws.yaml:4:1: invalid YAML"),
        (
            "workspaces:\n  a:\n    image: x\n  a:\n    image: y\n",
            r"ngcws.yaml:4:3: workspaces.a: duplicate key \(first defined on line 3\)",
        ),
        (
            "workspaces:\n  train:\n    image: Not/Valid\n",
            r"workspaces.train.image: 'Not/Valid' is not a valid image reference",
        ),
        ("workspace:\n  train: {image: x}\n", r"unknown key 'workspace' \(did you mean 'workspaces'\?\)"),
    ],
)
def test_document_level_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text)
    assert re.search(expected, message), message


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    message = error_of(tmp_path, "\n".join(lines) + "\nworkspaces: {t: {image: x}}\n")
    assert "expands to more than" in message


def test_anchors_and_extension_fields_are_allowed(tmp_path: Path) -> None:
    project = load_text(
        tmp_path,
        "x-common: &common\n  image: nvcr.io/nvidia/pytorch:23.08-py3\n  shm_size: 1g\n"
        "workspaces:\n  a: *common\n  b:\n    <<: *common\n    shm_size: 2g\n",
    )
    ws = project.workspaces  # type: ignore[attr-defined]
    assert (ws["a"].shm_size, ws["b"].shm_size) == (1024**3, 2 * 1024**3)


def test_interpolation_uses_dotenv_and_environment_wins(tmp_path: Path) -> None:
    write(tmp_path, "TAG=23.08-py3\nSHM=1g\n", ".env")
    project = load_text(
        tmp_path,
        "workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:${TAG}\n    shm_size: ${SHM}\n    env:\n      D: $${NOT_A_VAR}\n",
        environ={"SHM": "2g"},
    )
    ws = project.workspaces["t"]  # type: ignore[attr-defined]
    assert (ws.image, ws.shm_size, ws.env["D"]) == ("nvcr.io/nvidia/pytorch:23.08-py3", 2 * 1024**3, "${NOT_A_VAR}")


def test_found_in_parent_folder_and_by_flag(tmp_path: Path) -> None:
    write(tmp_path, MINIMAL)
    nested = tmp_path / "src" / "deep"
    nested.mkdir(parents=True)
    assert load(cwd=nested, environ={}).config_file == tmp_path / "ngcws.yaml"
    other = write(nested, MINIMAL.replace("train", "other"), "custom.yaml")
    assert list(load(str(other), cwd=tmp_path, environ={}).workspaces) == ["other"]


def test_no_file_suggests_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NGCWS_FILE", raising=False)
    with pytest.raises(ConfigNotFound) as info:
        load(cwd=tmp_path, environ={})
    assert "ngcws init" in str(info.value)


def test_project_name_override_and_validation(tmp_path: Path) -> None:
    write(tmp_path, "name: declared\n" + MINIMAL)
    assert load(cwd=tmp_path, environ={}).name == "declared"
    assert load(project_override="other", cwd=tmp_path, environ={}).name == "other"
    with pytest.raises(UsageError):
        load(project_override="Bad Name", cwd=tmp_path, environ={})


def test_user_host_and_create_host_path(tmp_path: Path) -> None:
    project = load_text(
        tmp_path,
        MINIMAL + "    user: host\n    mounts:\n      - {source: ./later, target: /later, create_host_path: true}\n",
    )
    ws = project.workspaces["train"]  # type: ignore[attr-defined]
    assert ws.user == "host" and ws.mounts[0].source == str(tmp_path / "later")
    assert not os.path.exists(tmp_path / "later")  # loading never writes
