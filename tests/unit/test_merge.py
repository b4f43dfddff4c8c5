"""Override files: Compose's merge rules, errors that name the file a value came from, the files
taking part, and the cache following every one of them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ngcws.errors import ConfigError, ConfigNotFound
from ngcws.load import load
from ngcws.state import load_state

BASE = """\
name: lab
workspaces:
  train:
    image: nvcr.io/nvidia/pytorch:23.08-py3
    gpus: [0, 1]
    shm_size: 1g
    mounts: ["./data:/data", ".:/workspace"]
    ports: ["8888:8888", "6006:6006/udp"]
    env: {A: "1", B: "2"}
    devices: [/dev/null]
    cap_add: [IPC_LOCK]
    tmpfs: [/scratch]
    command: [sleep, infinity]
    ulimits: {memlock: -1, stack: 67108864}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "ngcws.yaml").write_text(BASE)
    return tmp_path


def merged(folder: Path, override: str) -> Any:
    (folder / "ngcws.override.yaml").write_text("workspaces:\n  train:\n" + override)
    return load(cwd=folder, environ={}).workspaces["train"]


@pytest.mark.parametrize(
    ("override", "field", "expected"),
    [
        ("    shm_size: 16g\n", "shm_size", 16 * 2**30),  # scalars replace
        ("    gpus: [2]\n", "gpus", ["2"]),  # other lists replace
        ("    command: [python, train.py]\n", "command", ["python", "train.py"]),
        ("    ulimits: {stack: 1024}\n", "ulimits", {"memlock": (-1, -1), "stack": (1024, 1024)}),  # maps by key
        ("    env: {B: '3', C: '4'}\n", "env", {"A": "1", "B": "3", "C": "4"}),  # env by name
        ("    env: [B=3, C=4]\n", "env", {"A": "1", "B": "3", "C": "4"}),  # ... in either spelling
        ("    mounts: ['./other:/data:ro']\n", "mounts", [("other", "/data", True), ("", "/workspace", False)]),
        ("    ports: ['9999:8888', 6006]\n", "ports", [(9999, 8888, "tcp"), (6006, 6006, "udp"), (None, 6006, "tcp")]),
        (
            "    devices: ['/dev/zero:/dev/null']\n",
            "devices",
            [{"source": "/dev/zero", "target": "/dev/null", "permissions": "rwm"}],
        ),
        ("    cap_add: [SYS_ADMIN, IPC_LOCK]\n", "cap_add", ["CAP_IPC_LOCK", "CAP_SYS_ADMIN"]),  # appended, unique
        ("    tmpfs: ['/scratch:size=1g', /cache]\n", "tmpfs", {"/scratch": "size=1g", "/cache": ""}),
        ("    ports: !reset []\n", "ports", []),  # removing what the shared file says
        ("    shm_size: !reset null\n", "shm_size", None),
        ("    mounts: !override ['./other:/data']\n", "mounts", [("other", "/data", False)]),
        ("    env: !override {C: '4'}\n", "env", {"C": "4"}),
    ],
)
def test_merge_rules(folder: Path, override: str, field: str, expected: Any) -> None:
    value = getattr(merged(folder, override), field)
    if field == "ulimits":
        value = {k: (u.soft, u.hard) for k, u in value.items()}
    elif field == "mounts":
        value = [
            (os.path.relpath(m.source, folder) if m.source != str(folder) else "", m.target, m.read_only) for m in value
        ]
    elif field == "ports":
        value = [(p["host_port"], p["container_port"], p["protocol"]) for p in value]
    assert value == expected


def test_odd_values_are_replaced_and_named_not_merged(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ngcws\.override\.yaml:3:10: workspaces\.train\.env: expected a string"):
        merged(folder, "    env: {A: [1]}\n")


def test_maps_and_lists_of_entries_merge_by_name(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE + "    networks: [a]\n    extra_hosts: ['gw:10.0.0.1']\n")
    ws = merged(folder, "    networks: {b: {}}\n    extra_hosts: {db: 10.0.0.9}\n")
    assert (ws.networks, ws.extra_hosts) == (["a", "b"], ["gw:10.0.0.1", "db:10.0.0.9"])


def test_without_an_override_nothing_changes(folder: Path) -> None:
    assert load(cwd=folder, environ={}).workspaces["train"].shm_size == 2**30


def test_errors_name_the_file_and_line_the_value_came_from(folder: Path) -> None:
    with pytest.raises(ConfigError, match=r"^ngcws\.override\.yaml:3:15: workspaces\.train\.shm_size: expected a size"):
        merged(folder, "    shm_size: lots\n")
    (folder / "ngcws.override.yaml").write_text("workspaces:\n  train:\n    gpus: [2]\n")
    (folder / "ngcws.yaml").write_text(BASE.replace("shm_size: 1g", "shm_size: 1q"))
    with pytest.raises(ConfigError, match=r"^ngcws\.yaml:6:15: workspaces\.train\.shm_size"):
        load(cwd=folder, environ={})
    (folder / "ngcws.yaml").write_text(BASE)
    with pytest.raises(
        ConfigError, match=r"^ngcws\.override\.yaml:3:11: workspaces\.train\.gpus: .*\$\{GPUS\} is not set"
    ):
        merged(folder, "    gpus: ${GPUS}\n")


def test_a_long_form_entry_merged_by_key_keeps_its_positions(folder: Path) -> None:
    override = (
        "    mounts:\n      - type: bind\n        source: ./other\n        target: /data\n        read_only: maybe\n"
    )
    with pytest.raises(ConfigError, match=r"^ngcws\.override\.yaml:7:20: workspaces\.train\.mounts\[0\]\.read_only: "):
        merged(folder, override)


def test_a_conflict_across_files_names_both(folder: Path) -> None:
    with pytest.raises(ConfigError) as info:
        merged(folder, "    network_mode: host\n")
    assert info.value.message.startswith("ngcws.yaml:8:12: workspaces.train.ports: ports cannot be published")
    assert "(network_mode at ngcws.override.yaml:3:19)" in info.value.message


def test_later_f_files_win_and_the_override_is_not_added(folder: Path) -> None:
    (folder / "ngcws.override.yaml").write_text("workspaces:\n  train:\n    shm_size: 2g\n")
    (folder / "box.yaml").write_text("workspaces:\n  train:\n    shm_size: 4g\n")
    (folder / "big.yaml").write_text("workspaces:\n  train:\n    shm_size: 8g\n")
    assert (
        load(["ngcws.yaml", "box.yaml", "big.yaml"], cwd=folder, environ={}).workspaces["train"].shm_size == 8 * 2**30
    )
    assert load(["ngcws.yaml", "box.yaml"], cwd=folder, environ={}).workspaces["train"].shm_size == 4 * 2**30
    assert load(cwd=folder, environ={}).workspaces["train"].shm_size == 2 * 2**30
    with pytest.raises(ConfigNotFound, match=r"nope\.yaml: no such file"):
        load(["ngcws.yaml", "nope.yaml"], cwd=folder, environ={})


def test_ngcws_file_is_a_list_and_f_repeats(folder: Path) -> None:
    (folder / "box.yaml").write_text("workspaces:\n  train:\n    shm_size: 4g\n")
    env = {**os.environ, "NGCWS_FILE": f"ngcws.yaml{os.pathsep}box.yaml"}
    run = [sys.executable, "-m", "ngcws", "config", "--format", "json"]
    out = subprocess.run(run, cwd=folder, env=env, capture_output=True, text=True, check=True).stdout
    assert '"shm_size": 4294967296' in out
    env.pop("NGCWS_FILE")
    out = subprocess.run(
        [*run[:3], "-f", "ngcws.yaml", "-f", "box.yaml", *run[3:]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"shm_size": 4294967296' in out


def test_config_sources_and_files(folder: Path) -> None:
    (folder / "ngcws.override.yaml").write_text("workspaces:\n  train:\n    shm_size: 2g\n    env_file: vars.env\n")
    (folder / "vars.env").write_text("X=1\n")
    run = [sys.executable, "-m", "ngcws", "config"]
    out = subprocess.run([*run, "--sources"], cwd=folder, capture_output=True, text=True, check=True).stdout
    lines = {line.split(":")[0]: line for line in out.splitlines()}
    assert lines["workspaces.train.shm_size"].endswith("# ngcws.override.yaml:3:15")
    assert lines["workspaces.train.image"].endswith("# ngcws.yaml:4:12")
    out = subprocess.run([*run, "--files"], cwd=folder, capture_output=True, text=True, check=True).stdout
    names = [Path(line).name for line in out.splitlines()]
    assert sorted(names) == sorted(["ngcws.yaml", "ngcws.override.yaml", ".env", "vars.env"])


def test_the_state_cache_follows_every_file(folder: Path) -> None:
    assert load_state().containers["train"].essence["shm_size"] == 2**30
    (folder / "ngcws.override.yaml").write_text("workspaces:\n  train:\n    shm_size: 2g\n")  # appears
    assert load_state().containers["train"].essence["shm_size"] == 2 * 2**30
    (folder / "ngcws.override.yaml").write_text("workspaces:\n  train:\n    shm_size: 4g\n")  # changes
    assert load_state().containers["train"].essence["shm_size"] == 4 * 2**30
    (folder / "ngcws.override.yaml").unlink()  # goes away
    assert load_state().containers["train"].essence["shm_size"] == 2**30


def test_a_workspace_with_everything_commented_out_changes_nothing(folder: Path) -> None:
    assert merged(folder, "").shm_size == 2**30  # `train:` alone is null


def test_init_override_writes_this_machines_specifics(folder: Path) -> None:
    from ngcws.hostinfo import Host
    from ngcws.init import machine_gpus, write_override

    uuid = "GPU-3a23c669-1f2e-4b5c-8d9e-0a1b2c3d4e5f"
    row = f"0, NVIDIA A100-SXM4-80GB, {uuid}, 535.104.05, 8.0, 81920, 0, 0, 00000000:07:00.0\n"

    def smi(argv: list[str]) -> tuple[int, str]:
        return (0, row) if any(a.startswith("--query-gpu=") for a in argv) else (0, "")

    gpus = machine_gpus(Host(folder / "no-proc", run=smi, use_nvml=False))
    assert gpus == [uuid]
    (folder / ".git").mkdir()
    path = write_override(folder, False, gpus, infiniband=True)
    assert path.name == "ngcws.override.yaml"
    ws = load(cwd=folder, environ={}).workspaces["train"]
    assert (ws.gpus, ws.network_mode, ws.cap_add) == ([uuid], "host", ["CAP_IPC_LOCK"])
    assert {"source": "/dev/infiniband", "target": "/dev/infiniband", "permissions": "rwm"} in ws.devices
    assert ws.ports == []  # the shared file's ports cannot go with host networking: the override drops them
    assert "ngcws.override.yaml" in (folder / ".gitignore").read_text().splitlines()
    with pytest.raises(Exception, match="already exists"):
        write_override(folder, False, None, infiniband=False)
    write_override(folder, True, None, infiniband=False)  # nothing found: everything stays a comment
    assert load(cwd=folder, environ={}).workspaces["train"].gpus == ["0", "1"]


def test_markers_in_a_single_file_are_resolved(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(
        BASE.replace("shm_size: 1g", "shm_size: !reset 1g").replace("gpus: [0, 1]", "gpus: !override [3]")
    )
    ws = load(cwd=folder, environ={}).workspaces["train"]
    assert (ws.shm_size, ws.gpus) == (None, ["3"])


def test_sources_redact_secrets_as_config_does(folder: Path) -> None:
    (folder / "ngcws.override.yaml").write_text(
        "workspaces:\n  train:\n    env: [HF_TOKEN=hf_planted_value, LR=1e-3]\n"
    )
    run = [sys.executable, "-m", "ngcws", "config", "--sources"]
    out = subprocess.run(run, cwd=folder, capture_output=True, text=True, check=True).stdout
    assert "hf_planted_value" not in out and '"HF_TOKEN=<redacted>"' in out
    assert '"LR=1e-3"' in out and '"A=1"' in out  # map entries merged with a list keep their text
    shown = subprocess.run([*run, "--show-secrets"], cwd=folder, capture_output=True, text=True, check=True).stdout
    assert "hf_planted_value" in shown


def test_values_merged_from_a_map_stay_as_written(folder: Path) -> None:
    (folder / "ngcws.yaml").write_text(BASE.replace('env: {A: "1", B: "2"}', "env: {LR: 1e-3, MASK: 017}"))
    assert merged(folder, "    env: [B=3]\n").env == {"LR": "1e-3", "MASK": "017", "B": "3"}
