"""``ngcws init --from-docker-run``: a pasted ``docker run`` line translated into ngcws.yaml.

Pure: the flags come from the one table, :mod:`ngcws.runflags`; what has no field is reported
(untranslated) or dropped with a note (``-it``, ``--rm``, ``-d``), never silently.
"""

from __future__ import annotations

import csv
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from ngcws.redact import looks_secret
from ngcws.runflags import RUN_FLAGS

#: docker run flags that mean nothing for a workspace: dropped, each with this note.
DROPPED = {
    "-i": "a workspace has no attached stdin; `ngcws exec`/`ngcws shell` are interactive",
    "--interactive": "a workspace has no attached stdin; `ngcws exec`/`ngcws shell` are interactive",
    "-t": "`ngcws exec`/`ngcws shell` allocate a terminal",
    "--tty": "`ngcws exec`/`ngcws shell` allocate a terminal",
    "--rm": "a workspace stays until `ngcws down`; `ngcws run CMD` is the one-off, removed form",
    "-d": "`ngcws up` always starts workspaces in the background",
    "--detach": "`ngcws up` always starts workspaces in the background",
}
#: Flags without a value (the rest of docker run's flags take one).
_BOOLEAN = {"--init", "--privileged", "--read-only", "--no-healthcheck", "-P", "--publish-all", "--oom-kill-disable",
            "--sig-proxy", "--disable-content-trust", "-q", "--quiet", *DROPPED}  # fmt: skip
_SHORT_BOOLEAN = {"i", "t", "d", "P", "q"}
_FIELD_OF = {flag: row.field for row in reversed(RUN_FLAGS) for flag in row.flags if flag.startswith("-")}
_NETWORK_MODES = ("bridge", "host", "none", "default")
_HEALTH_KEYS = {"--health-cmd": "test", "--health-interval": "interval", "--health-timeout": "timeout",
                "--health-retries": "retries", "--health-start-period": "start_period"}  # fmt: skip
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass
class Translation:
    name: str
    workspace: dict[str, Any]
    notes: list[str] = field(default_factory=list)  # dropped on purpose
    untranslated: list[str] = field(default_factory=list)  # no field: the user must decide
    secrets: list[str] = field(default_factory=list)  # values kept out of the file (and its comments)


class FromRunError(ValueError):
    """The line is not a docker run command ngcws can read."""


def split_command(line: str) -> list[str]:
    """The shell words of a pasted line (``\\`` line continuations included)."""
    try:
        return shlex.split(re.sub(r"\\\r?\n", " ", line), comments=False)
    except ValueError as exc:
        raise FromRunError(f"cannot split the command as a shell would: {exc}") from None


def translate(line: str) -> Translation:
    words = split_command(line)
    while words and (words[0] == "sudo" or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0])):
        words = words[1:]
    nvidia_docker = bool(words) and words[0].endswith("nvidia-docker")
    if words[:3] in (["docker", "container", "run"], ["docker", "container", "create"]):
        rest = words[3:]
    elif (
        len(words) >= 2 and words[0].rsplit("/", 1)[-1] in ("docker", "nvidia-docker") and words[1] in ("run", "create")
    ):
        rest = words[2:]
    else:
        raise FromRunError("expected `docker run [OPTIONS] IMAGE [COMMAND...]` (or nvidia-docker run)")
    options, image, command = _options(rest)
    if image is None:
        raise FromRunError("no image in the command")
    out = Translation(name="main", workspace={"image": image})
    collected: dict[str, Any] = {}
    for flag, value in options:
        _apply(flag, value, collected, out)
    _gpus(collected, out, nvidia_docker)
    for key in [f for f in ("image", *(row.field for row in RUN_FLAGS), "gpu_request") if f in collected]:
        out.workspace[key] = collected[key]
    out.workspace.setdefault("init", False)  # docker run's default; ngcws's own default is true
    if command:
        out.workspace["command"] = command
    return out


def _options(words: list[str]) -> tuple[list[tuple[str, str | None]], str | None, list[str]]:
    options: list[tuple[str, str | None]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if not word.startswith("-") or word == "-":
            break
        if word.startswith("--"):
            flag, eq, value = word.partition("=")
            if eq:
                options.append((flag, value))
            elif flag in _BOOLEAN:
                options.append((flag, None))
            else:
                if i + 1 >= len(words):
                    raise FromRunError(f"{flag} needs a value")
                options.append((flag, words[i + 1]))
                i += 1
        elif len(word) > 2 and set(word[1:]) <= _SHORT_BOOLEAN:
            options.extend((f"-{c}", None) for c in word[1:])
        elif len(word) > 2:
            options.append((word[:2], word[2:].removeprefix("=")))
        elif word in _BOOLEAN:
            options.append((word, None))
        else:
            if i + 1 >= len(words):
                raise FromRunError(f"{word} needs a value")
            options.append((word, words[i + 1]))
            i += 1
        i += 1
    if i >= len(words):
        return options, None, []
    return options, words[i], words[i + 1 :]


def _flag_text(flag: str, value: str | None) -> str:
    return flag if value is None else f"{flag} {shlex.quote(value)}"


def _true(value: str | None) -> bool:
    return value is None or value.lower() in ("true", "1")


def _apply(flag: str, value: str | None, ws: dict[str, Any], out: Translation) -> None:
    if flag in DROPPED:
        out.notes.append(f"{flag}: dropped ({DROPPED[flag]})")
        return
    if flag == "--name" and value is not None:
        if _NAME.match(value):
            out.name = value
        else:
            out.notes.append(f"--name {value}: not a workspace name ([a-z0-9_-]); the workspace is `main`")
        out.notes.append("--name: ngcws names the container <project>-<workspace>")
        return
    name = _FIELD_OF.get(flag)
    key, eq, secret = (value or "").partition("=")
    if name == "env" and eq and looks_secret(key):
        ws.setdefault("env", {})[key] = f"${{{key}}}"
        out.secrets.append(secret)
        out.notes.append(f"-e {key}=<redacted>: a secret is not written into the file; it says ${{{key}}}: "
                         f"export {key} or put it in .env (out of git)")  # fmt: skip
        return
    try:
        handled = name is not None and _field(name, flag, value, ws)
    except (ValueError, IndexError):
        raise FromRunError(f"{_flag_text(flag, value)}: not a value docker run accepts there") from None
    if not handled:
        out.untranslated.append(_flag_text(flag, value))


def _pairs(value: str) -> list[str]:
    return next(csv.reader([value]))


def _field(name: str, flag: str, value: str | None, ws: dict[str, Any]) -> bool:
    """Put one flag into the workspace fields ``ws``; False when it has no faithful translation."""
    if name in ("init", "privileged", "read_only"):
        ws[name] = _true(value)
        return True
    if name == "healthcheck":
        check = ws.setdefault("healthcheck", {})
        if flag == "--no-healthcheck":
            check["disable"] = _true(value)
        else:
            check[_HEALTH_KEYS[flag]] = int(value or "") if flag == "--health-retries" else value
        return True
    if value is None:
        return False
    if name in ("gpus", "capabilities"):
        ws.setdefault("_gpus", []).append(value)
        return True
    if name in ("network_mode", "networks"):
        if value in _NETWORK_MODES or value.startswith("container:"):
            ws["network_mode"] = "bridge" if value == "default" else value
        else:
            ws.setdefault("networks", []).append(value)
        return True
    if name == "env":
        key, eq, val = value.partition("=")
        if not eq:
            return False  # taken from the caller's environment: the user decides (`KEY: ${KEY}`)
        ws.setdefault("env", {})[key] = val
        return True
    if name in ("labels", "sysctls"):
        key, eq, val = value.partition("=")
        ws.setdefault(name, {})[key] = val
        return True
    if name == "ulimits":
        key, _, limits = value.partition("=")
        soft, colon, hard = limits.partition(":")
        ws.setdefault("ulimits", {})[key] = {"soft": int(soft), "hard": int(hard)} if colon else int(soft)
        return True
    if name == "mounts":
        mount = _mount(value) if flag == "--mount" else _here(value)
        if mount is None:
            return False
        ws.setdefault("mounts", []).append(mount)
        return True
    if name == "entrypoint":
        ws["entrypoint"] = [value]
        return True
    if name == "restart":
        if value not in ("no", "always", "on-failure", "unless-stopped"):
            return False
        ws["restart"] = value
        return True
    if name in ("pids_limit", "stop_grace_period"):
        ws[name] = int(value)
        return True
    if name == "memswap_limit" and value == "-1":
        ws[name] = -1
        return True
    if name in ("cpus",):
        ws[name] = float(value)
        return True
    if name in ("devices", "cap_add", "cap_drop", "security_opt", "extra_hosts", "dns", "group_add", "ports",
                "env_file", "tmpfs"):  # fmt: skip
        ws.setdefault(name, []).append(value)
        return True
    ws[name] = value  # the scalar fields: shm_size, ipc, working_dir, user, hostname, cpuset, mem_limit, ...
    return True


_MOUNT_KEYS = {"type": "type", "source": "source", "src": "source", "target": "target", "destination": "target",
               "dst": "target", "readonly": "read_only", "ro": "read_only"}  # fmt: skip


def _here(volume: str) -> str:
    """``$PWD:/workspace`` (the shell's current folder) is ``.``: ngcws.yaml's folder."""
    return re.sub(r"^(\$PWD|\$\{PWD\}|\$\(pwd\)|`pwd`)(?=[:/])", ".", volume)


def _mount(value: str) -> dict[str, Any] | None:
    """The long form of a ``--mount``; None when it says what ngcws.yaml has no key for."""
    mount: dict[str, Any] = {}
    for item in _pairs(value):
        key, eq, val = item.partition("=")
        if key not in _MOUNT_KEYS:
            return None
        mount[_MOUNT_KEYS[key]] = _true(val if eq else None) if _MOUNT_KEYS[key] == "read_only" else val
    if mount.get("type", "volume") == "volume" and "source" not in mount:
        return None  # an anonymous volume
    mount.setdefault("type", "volume")
    return mount


def _gpus(ws: dict[str, Any], out: Translation, nvidia_docker: bool) -> None:
    """--gpus (every form of NVIDIA's guide), or the nvidia-docker era's runtime + NVIDIA_VISIBLE_DEVICES."""
    env = ws.get("env", {})
    runtime = nvidia_docker or ws.get("runtime") == "nvidia"
    try:
        _gpu_values(ws)
    except FromRunError:
        raise
    except ValueError:
        raise FromRunError(f"--gpus {' '.join(ws.get('_gpus', []))}: not a form docker run accepts") from None
    if runtime and "gpus" not in ws:
        ws.pop("runtime", None)
        ws["gpu_request"] = "runtime"
        visible = env.pop("NVIDIA_VISIBLE_DEVICES", "all")
        ws["gpus"] = (
            "none"
            if visible in ("void", "none", "")
            else "all"
            if visible == "all"
            else [int(d) if d.isdigit() else d for d in visible.split(",")]
        )
        caps = env.pop("NVIDIA_DRIVER_CAPABILITIES", None)
        if caps and caps != "all":
            ws["capabilities"] = caps.split(",")
        if not env:
            ws.pop("env", None)
        out.notes.append("--runtime=nvidia / nvidia-docker: gpus from NVIDIA_VISIBLE_DEVICES, gpu_request: runtime")
    ws.setdefault("gpus", "none")


def _gpu_values(ws: dict[str, Any]) -> None:
    for value in ws.get("_gpus", []):
        devices: list[int | str] | None = None
        for item in _pairs(value.strip("'")):
            key, eq, val = item.partition("=")
            if not eq and devices is not None and item != "all":
                devices.append(int(item) if item.isdigit() else item)  # `--gpus device=1,2` unquoted, as pasted
            elif not eq:
                ws["gpus"] = "all" if item == "all" else int(item)
            elif key == "count":
                ws["gpus"] = "all" if val == "all" else int(val)
            elif key == "device":
                devices = ws["gpus"] = [int(d) if d.isdigit() else d for d in val.split(",")]
            elif key == "capabilities":
                ws["capabilities"] = val.split(",")
            else:
                raise FromRunError(f"--gpus {value}: unknown option {key!r}")
    ws.pop("_gpus", None)


def render(translation: Translation, source: str, schema: str) -> str:
    """The ngcws.yaml text: the schema modeline, where it came from, the fields, what was not translated."""
    import yaml

    one_line = shlex.join(split_command(source))
    for secret in filter(None, translation.secrets):
        one_line = one_line.replace(secret, "<redacted>")
    head = [
        f"# yaml-language-server: $schema=./{schema}",
        "# ngcws.yaml: this project's NGC workspace. `ngcws up`, `ngcws exec python train.py`, `ngcws down`.",
        "# Translated by `ngcws init --from-docker-run` from:",
        f"#   {one_line}",
    ]
    head += [f"# note: {note}" for note in translation.notes]
    head += [
        f"# NOT TRANSLATED (no ngcws.yaml field; add it by hand or drop it): {flag}"
        for flag in translation.untranslated
    ]
    body = yaml.safe_dump({"workspaces": {translation.name: translation.workspace}}, sort_keys=False, width=1000)
    return "\n".join(head) + "\n" + body
