"""Risky settings are named with why; ordinary NGC settings are not. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from ngcws.risky import findings

PROJECT = "/home/ada/lab"
HOME = "/home/ada"


def essence(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"mounts": [], "ipc": None, "user": None}
    return {**base, **fields}


def bind(source: str, target: str = "/mnt", read_only: bool = False) -> dict[str, Any]:
    return {"type": "bind", "source": source, "target": target, "read_only": read_only}


def test_an_ordinary_workspace_is_not_risky() -> None:
    ordinary = essence(mounts=[bind(PROJECT, "/workspace"), bind(f"{HOME}/datasets", "/data", True)], user="1000:1000")
    assert findings(ordinary, PROJECT, HOME) == []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"mounts": [bind("/", "/host", True)]}, "whole filesystem"),
        ({"mounts": [bind("/etc", "/host-etc", True)]}, "/etc"),
        ({"mounts": [bind(HOME, "/home/me")]}, "home folder read-write"),
        ({"mounts": [bind("/var/run/docker.sock", "/var/run/docker.sock", True)]}, "Docker socket"),
        ({"ipc": "host"}, "ipc: host"),
        ({"privileged": True}, "privileged"),
        ({"network_mode": "host"}, "network_mode: host"),
        ({"user": "root", "mounts": [bind(PROJECT, "/workspace")]}, "become root's"),
        ({"user": "0:0", "mounts": [bind("/home/ada", "/h", True), bind(PROJECT, "/workspace")]}, "become root's"),
        ({"command": ["python", "secret:hmac-sha256:ab"]}, "command holds a secret variable's value"),
        ({"labels": {"a": "secret:hmac-sha256:ab"}, "command": ["x"]}, "labels holds a secret"),
    ],
)
def test_risky_settings_are_named_once_with_why(fields: dict[str, Any], words: str) -> None:
    found = findings(essence(**fields), PROJECT, HOME)
    assert len(found) == 1 and words in found[0], found


@pytest.mark.parametrize(
    "fields",
    [
        {"mounts": [bind(HOME, "/home/me", True)]},  # home read-only
        {"user": "root", "mounts": [bind(PROJECT, "/workspace", True)]},  # root, project read-only
        {"user": "1000", "mounts": [bind(PROJECT, "/workspace")]},
        {"ipc": "shareable", "privileged": False, "network_mode": "bridge"},
    ],
)
def test_safe_variants_are_not_named(fields: dict[str, Any]) -> None:
    assert findings(essence(**fields), PROJECT, HOME) == []
