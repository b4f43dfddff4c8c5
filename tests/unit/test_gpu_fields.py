"""gpus, capabilities and the NVIDIA_* env they set: a file that says two things is refused, in its
own terms (file:line), never silently overridden; gpus: 0 is refused (docker's Count 0 or GPU 0?)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ngcws.errors import ConfigError
from ngcws.load import load

HEAD = "name: lab\nworkspaces:\n  train:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def loads(tmp_path: Path, body: str) -> str | None:
    """The loader's error message for this workspace body, or None when it loads."""
    (tmp_path / "ngcws.yaml").write_text(HEAD + body)
    try:
        load(cwd=tmp_path, environ={})
    except ConfigError as error:
        return error.message
    return None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "    gpus: none\n    env: {NVIDIA_VISIBLE_DEVICES: all}\n",
            "ngcws.yaml:6:10: workspaces.train.env: env NVIDIA_VISIBLE_DEVICES=all contradicts gpus: none,"
            " which sets NVIDIA_VISIBLE_DEVICES=void",
        ),
        (
            "    gpus: [0]\n    env: {NVIDIA_VISIBLE_DEVICES: '1,2'}\n",
            "env NVIDIA_VISIBLE_DEVICES=1,2 contradicts gpus: [0], which asks the engine for 0: say the GPUs once,"
            " in gpus: (gpus: [1, 2])",
        ),
        (
            "    env: {NVIDIA_VISIBLE_DEVICES: '1'}\n",
            "contradicts gpus: all (the default), which asks the engine for all",
        ),
        (
            "    gpus: none\n    capabilities: [utility]\n",
            "capabilities: [utility] asks for GPU driver capabilities, but gpus: none",
        ),
        (
            "    capabilities: [utility]\n    env: {NVIDIA_DRIVER_CAPABILITIES: compute}\n",
            "env NVIDIA_DRIVER_CAPABILITIES=compute contradicts capabilities: [utility]",
        ),
        ("    gpus: 0\n", "gpus: 0 is a count (no GPU, as docker's --gpus 0), not GPU 0: write [0] for GPU 0, or none"),
        ("    gpus: {count: 0}\n", "not GPU 0"),
    ],
)
def test_contradictions_are_refused_in_the_files_terms(tmp_path: Path, body: str, message: str) -> None:
    said = loads(tmp_path, body)
    assert said is not None and message in said, said


@pytest.mark.parametrize(
    "body",
    [
        "    gpus: [0, 1]\n    env: {NVIDIA_VISIBLE_DEVICES: '0,1'}\n",  # says the same twice
        "    gpus: none\n    env: {NVIDIA_VISIBLE_DEVICES: void}\n",
        "    env: {NVIDIA_VISIBLE_DEVICES: all}\n",
        "    capabilities: [utility, compute]\n    env: {NVIDIA_DRIVER_CAPABILITIES: 'compute,utility'}\n",
        "    gpus: none\n",
    ],
)
def test_agreeing_settings_load(tmp_path: Path, body: str) -> None:
    assert loads(tmp_path, body) is None
