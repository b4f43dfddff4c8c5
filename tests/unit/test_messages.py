"""Error messages are in the project's words, say which forms are accepted, and never hold a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from ngcws.errors import ConfigError
from ngcws.load import load

HEAD = "workspaces:\n  t:\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n"

#: A bad value for every field (and nested field) of ngcws.yaml, of every wrong kind.
BAD = {
    "name number": "name: 5\n" + HEAD,
    "name list": "name: [a]\n" + HEAD,
    "workspaces list": "workspaces: [a]\n",
    "workspaces string": "workspaces: a\n",
    "workspace string": "workspaces:\n  t: nvcr.io/nvidia/pytorch:23.08-py3\n",
    "workspace name": "workspaces:\n  'bad name':\n    image: nvcr.io/nvidia/pytorch:23.08-py3\n",
    "ulimit underscore": HEAD + "    ulimits: {nofile: 1_000}\n",
    "ulimit list": HEAD + "    ulimits: {nofile: [1]}\n",
    "ulimit float": HEAD + "    ulimits: {nofile: 1.5}\n",
    "ulimit bool": HEAD + "    ulimits: {nofile: true}\n",
    "ulimit soft text": HEAD + "    ulimits: {nofile: {soft: x, hard: 2}}\n",
    "ulimit soft list": HEAD + "    ulimits: {nofile: {soft: [], hard: 2}}\n",
    "ulimit missing hard": HEAD + "    ulimits: {nofile: {soft: 1}}\n",
    "ulimits list": HEAD + "    ulimits: [nofile]\n",
    "ipc typo": HEAD + "    ipc: hots\n",
    "ipc number": HEAD + "    ipc: 1\n",
    "restart bool": HEAD + "    restart: true\n",
    "pull list": HEAD + "    pull: [always]\n",
    "init text": HEAD + "    init: maybe\n",
    "init list": HEAD + "    init: [true]\n",
    "working_dir number": HEAD + "    working_dir: 5\n",
    "working_dir map": HEAD + "    working_dir: {a: 1}\n",
    "user list": HEAD + "    user: [root]\n",
    "user float": HEAD + "    user: 1.5\n",
    "mounts string": HEAD + "    mounts: /a:/b\n",
    "mounts map": HEAD + "    mounts: {a: b}\n",
    "mount number": HEAD + "    mounts: [5]\n",
    "mount list": HEAD + "    mounts: [[a]]\n",
    "mount type": HEAD + "    mounts: [{type: nfs, target: /a}]\n",
    "mount read_only": HEAD + "    mounts: [{type: tmpfs, target: /a, read_only: yes}]\n",
    "mount target list": HEAD + "    mounts: [{type: tmpfs, target: [a]}]\n",
    "mount source number": HEAD + "    mounts: [{type: volume, source: 5, target: /a}]\n",
    "mount no target": HEAD + "    mounts: [{type: tmpfs}]\n",
    "env number": HEAD + "    env: 5\n",
    "env_file number": HEAD + "    env_file: 5\n",
    "labels string": HEAD + "    labels: a\n",
    "command map": HEAD + "    command: {a: b}\n",
    "ports map": HEAD + "    ports: {a: b}\n",
    "capabilities map": HEAD + "    capabilities: {a: b}\n",
    "gpus map key": HEAD + "    gpus: {counts: 1}\n",
    "gpus float": HEAD + "    gpus: 1.5\n",
    "shm_size list": HEAD + "    shm_size: [1]\n",
    "image number": "workspaces:\n  t:\n    image: 5\n",
    "image missing": "workspaces:\n  t:\n    gpus: all\n",
    "gpu_request typo": HEAD + "    gpu_request: legacy\n",
    "ignore_changes string": HEAD + "    ignore_changes: /a\n",
    "ignore_changes empty": HEAD + "    ignore_changes: ['']\n",
    "privileged text": HEAD + "    privileged: maybe\n",
    "healthcheck list": HEAD + "    healthcheck: [a]\n",
    "healthcheck retries": HEAD + "    healthcheck: {test: 'true', retries: -1}\n",
    "healthcheck interval": HEAD + "    healthcheck: {test: 'true', interval: [1]}\n",
    "network_mode number": HEAD + "    network_mode: 5\n",
    "cpus list": HEAD + "    cpus: [1]\n",
    "hostname list": HEAD + "    hostname: [a]\n",
    "runtime map": HEAD + "    runtime: {a: b}\n",
    "sysctls string": HEAD + "    sysctls: a\n",
    "networks number": HEAD + "    networks: 5\n",
    "group_add map": HEAD + "    group_add: {a: b}\n",
}
RAW_WORDINGS = ("Input should be", "instance of", "valid dictionary", "Field required", "Value error")


@pytest.mark.parametrize("text", BAD.values(), ids=BAD.keys())
def test_every_message_is_in_the_projects_words(tmp_path: Path, text: str) -> None:
    (tmp_path / "ngcws.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load(cwd=tmp_path, environ={})
    message = info.value.message
    assert not any(raw in message for raw in RAW_WORDINGS), message
    assert "ngcws.yaml:" in message


def test_an_ulimit_says_which_forms_it_accepts(tmp_path: Path) -> None:
    (tmp_path / "ngcws.yaml").write_text(BAD["ulimit underscore"])
    with pytest.raises(ConfigError, match=r"ulimits\.nofile: expected a limit \(a whole number, -1 for unlimited\)"):
        load(cwd=tmp_path, environ={})


SECRET = "hf_SECRETvalue123"


@pytest.mark.parametrize(
    ("dotenv", "yaml", "env_file"),
    [
        (f'HF_TOKEN="{SECRET}${{X/a/b}}"\n', HEAD, None),  # a bad interpolation in .env
        (f"A={SECRET}${{X/a/b}}\n", HEAD, None),  # ... in any .env line
        (f"A={SECRET}${{\n", HEAD, None),  # an unclosed ${
        ("", HEAD + "    env_file: vars.env\n", f"A={SECRET}${{X/a/b}}\n"),  # ... in an env_file line
        ("", HEAD + f"    env:\n      A: {SECRET}${{X/a/b}}\n", None),  # ... in an env value
        ("", HEAD + f"    env:\n      A: {SECRET}${{}}\n", None),
        (f"NGC_API_KEY={SECRET}\n", HEAD + "    shm_size: ${NGC_API_KEY}\n", None),  # a field refuses a secret
        (f"NGC_API_KEY={SECRET}\n", HEAD + "    user: ${NGC_API_KEY}\n", None),
        (f"NGC_API_KEY={SECRET}\n", HEAD + "    mounts: ['${NGC_API_KEY}']\n", None),
        (f"NGC_API_KEY={SECRET}\nINDIRECT=x${{NGC_API_KEY}}\n", HEAD + "    gpus: ${INDIRECT}\n", None),  # tainted
        (f"NGC_API_KEY={SECRET}\n", HEAD + "    ulimits: {nofile: '${NGC_API_KEY}'}\n", None),
        (f"NGC_API_KEY={SECRET}\n", HEAD + "    ports: ['${NGC_API_KEY}']\n", None),
        ("", HEAD + f"    env: [{{HF_TOKEN: {SECRET}}}]\n", None),  # secret by name, not interpolated
        ("", HEAD + f"    env: HF_TOKEN={SECRET}\n", None),
    ],
)
def test_no_error_shows_a_secret(tmp_path: Path, dotenv: str, yaml: str, env_file: str | None) -> None:
    (tmp_path / ".env").write_text(dotenv)
    (tmp_path / "ngcws.yaml").write_text(yaml)
    if env_file is not None:
        (tmp_path / "vars.env").write_text(env_file)
    with pytest.raises(ConfigError) as info:
        load(cwd=tmp_path, environ={})
    message = str(info.value.message) + str(info.value.hint or "")
    assert "SECRET" not in message, message
    assert "line 1" in message or "ngcws.yaml:" in message  # it still says where


def test_a_secret_value_refused_by_a_field_says_the_form_and_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"NGC_API_KEY={SECRET}\n")
    (tmp_path / "ngcws.yaml").write_text(HEAD + "    shm_size: ${NGC_API_KEY}\n")
    with pytest.raises(
        ConfigError, match=r"shm_size: expected a size such as 16g.*secret \(it uses \$\{NGC_API_KEY\}\)"
    ):
        load(cwd=tmp_path, environ={})


def test_every_field_has_words_for_what_it_accepts() -> None:
    from ngcws.forms import HEALTHCHECK_FIELDS, MOUNT_FIELDS, WORKSPACE_FIELDS
    from ngcws.model import Healthcheck, Mount, Workspace

    assert set(Workspace.model_fields) <= set(WORKSPACE_FIELDS), "add the new field to ngcws/forms.py"
    assert set(Mount.model_fields) <= set(MOUNT_FIELDS), "add the new field to ngcws/forms.py"
    assert set(Healthcheck.model_fields) <= set(HEALTHCHECK_FIELDS), "add the new field to ngcws/forms.py"
