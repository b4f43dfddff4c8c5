"""Parsers for the small value languages of ngcws.yaml: sizes, GPU ids, mounts, ports (image
references: :mod:`ngcws.imageref`). Pure functions raising ValueError with a message for a person;
the model wires them in."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

# --- sizes --------------------------------------------------------------------------------------

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(value: Any) -> int:
    """``16g`` / ``512m`` / ``1.5g`` / ``17179869184`` → bytes (binary units, as docker does)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as 16g, 512m or a number of bytes, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    raise ValueError(f"expected a size such as 16g, 512m or a number of bytes, got {value!r}")


def format_size(size: int) -> str:
    """Bytes → the shortest exact spelling (``17179869184`` → ``16g``)."""
    for unit in ("t", "g", "m", "k"):
        if size and size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


# --- booleans and integers, from YAML or from the text of an interpolated value ------------------

BOOL_TEXTS = ("true", "True", "TRUE", "false", "False", "FALSE")
INTEGER_TEXT = r"^\s*-?\d+\s*$"


def parse_bool(value: Any) -> bool:
    """``true``/``false``: a YAML boolean, or the text of one (``init: ${INIT}``). ``yes``, ``on``
    and ``1`` are refused, as YAML 1.2 and Compose's schema do."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip() in BOOL_TEXTS:
        return value.strip().lower() == "true"
    raise ValueError(f"expected true or false, got {shown(value)}")


def parse_integer(value: Any, what: str) -> int:
    """A decimal integer, or the text of one (``nofile: ${NOFILE}``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.match(INTEGER_TEXT, value):
        return int(value)
    raise ValueError(f"expected {what}, got {shown(value)}")


def kind_of(value: Any) -> str:
    """A value's kind, for messages that must not quote it (it may be a secret)."""
    if value == "":
        return "an empty string"
    kinds = {dict: "a map", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return kinds.get(type(value), f"a {type(value).__name__}")


def shown(value: Any) -> str:
    """A value in a message: its text, or its kind for a map or a list (never a whole subtree)."""
    if isinstance(value, (dict, list)):
        return "a map" if isinstance(value, dict) else "a list"
    return repr(value)


# --- GPUs ---------------------------------------------------------------------------------------

CAPABILITIES = ("compute", "compat32", "graphics", "utility", "video", "display")

_GPU_ID_FORMS = (
    (re.compile(r"^\d+$"), "an index"),
    (re.compile(r"^GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"), "a GPU UUID"),
    (re.compile(r"^\d+:\d+$"), "a MIG index"),
    (re.compile(r"^MIG-[0-9A-Za-z/-]+$"), "a MIG UUID"),
)
GPU_EXPECTED = "expected all, none, a count or a list of GPU ids"
#: One GPU id in any accepted form, for the JSON Schema (the same expressions as the parser's).
GPU_ID_PATTERN = "(?:" + "|".join(pattern.pattern.strip("^$") for pattern, _ in _GPU_ID_FORMS) + ")"


def parse_gpus(value: Any) -> str | int | list[str]:
    """``all`` | ``none`` | count | list of ids → canonical (ids as strings, order kept)."""
    if isinstance(value, bool):
        raise ValueError(f"{GPU_EXPECTED}, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a GPU count must be 1 or more, got {value} (use all for every GPU, none for no GPU)")
        if value == 0:  # docker's --gpus 0 is a count of none, which NVIDIA's guide readers take for GPU 0
            raise ValueError(
                "gpus: 0 is a count (no GPU, as docker's --gpus 0), not GPU 0: write [0] for GPU 0, or none"
            )
        return value
    if isinstance(value, str):
        text = value.strip()
        if "capabilities=" in text or text[:1] in ("'", '"'):
            raise ValueError(_docker_gpus_hint(text))
        if text in ("all", "none"):
            return text
        if text.isdigit():
            if len(text) > 1 and text.startswith("0"):  # a count never has a leading zero: 017 is no number of GPUs
                raise ValueError(f"{text!r} is not a GPU count (a leading 0); write the count, or a list of GPU ids")
            return parse_gpus(int(text))
        if text.startswith("device="):  # docker's --gpus '"device=0,1"' spelling
            return parse_gpus([part for part in text[len("device=") :].split(",") if part])
        if "," in text:
            return parse_gpus([part.strip() for part in text.split(",")])
        raise ValueError(f"{GPU_EXPECTED}, got {value!r}" + suggest(text, ("all", "none")))
    if isinstance(value, dict):  # Compose's long form: {count: N} or {device_ids: [...]}
        unknown = set(value) - {"count", "device_ids"}
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r}; expected count or device_ids")
        if "count" in value and "device_ids" in value:
            raise ValueError("a count and GPU ids cannot be combined: give one or the other")
        return parse_gpus(value.get("count", value.get("device_ids")))
    if isinstance(value, list):
        if not value:
            raise ValueError("an empty list selects no GPU: write none")
        ids: list[str] = []
        for item in value:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise ValueError(f"GPU ids are indexes or UUIDs, got {item!r}")
            text = str(item).strip()
            if text in ("all", "none", "void"):
                raise ValueError(f"{text!r} cannot be mixed with GPU ids")
            if not any(pattern.match(text) for pattern, _ in _GPU_ID_FORMS):
                raise ValueError(
                    f"{text!r} is not a GPU id: use an index (0), a full UUID (GPU-xxxxxxxx-xxxx-...),"
                    " a MIG index (0:1) or a MIG UUID (MIG-...)"
                )
            if text in ids:
                raise ValueError(f"GPU {text!r} is listed twice")
            ids.append(text)
        return ids
    raise ValueError(f"{GPU_EXPECTED}, got {value!r}")


def _docker_gpus_hint(text: str) -> str:
    """The ngcws.yaml spelling of a value copied from ``docker run --gpus`` with its shell quoting."""
    import csv

    fields = next(csv.reader([text.strip("'")]), [])
    gpus: list[str] = []
    capabilities: list[str] = []
    for field in (f.strip().strip("'\"") for f in fields):
        if field.startswith("capabilities="):
            capabilities += [c for c in field[len("capabilities=") :].split(",") if c]
        elif field.startswith("device="):
            gpus += [d for d in field[len("device=") :].split(",") if d]
        elif field:
            gpus.append(field)
    if len(gpus) == 1 and (gpus[0] in ("all", "none") or gpus[0].isdigit()):
        want = f"gpus: {gpus[0]}"
    else:
        want = f"gpus: [{', '.join(gpus)}]" if gpus else "gpus: all"
    if capabilities:
        want += f" and capabilities: [{', '.join(capabilities)}]"
    quoting = " with its shell quoting" if any(q in text for q in "'\"") else ""
    own = " (capabilities is a field of its own)" if capabilities else ""
    return f"{text!r} is docker's --gpus spelling{quoting}; in ngcws.yaml write {want}{own}"


def parse_capabilities(value: Any) -> list[str]:
    """A list (or comma-separated string) of NVIDIA driver capabilities, sorted and deduplicated."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError(f"expected a list of capabilities, got {value!r}")
    out: set[str] = set()
    for item in items:
        name = str(item).strip()
        if name == "all":
            out.update(CAPABILITIES)
            continue
        if name not in CAPABILITIES:
            raise ValueError(
                f"unknown capability {name!r}; known: {', '.join(CAPABILITIES)}" + suggest(name, CAPABILITIES)
            )
        out.add(name)
    return sorted(out)


# --- commands, env, ports -----------------------------------------------------------------------


def parse_command(value: Any) -> list[str]:
    """A list of arguments, or a string split as a POSIX shell would (no shell is run)."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split command {value!r}: {exc}") from None
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        return [str(v) for v in value]
    raise ValueError(f"expected a command as a list of strings or one string, got {value!r}")


def scalar_text(value: Any) -> str:
    """Env and label values: strings as they are, numbers and booleans spelled as YAML does."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError(f"expected a string, number or boolean, got a {type(value).__name__}")  # never the value


def parse_mapping(value: Any, what: str, inherit: Mapping[str, str] | None = None) -> dict[str, str]:
    """A map, or a list of ``K=V``.

    With ``inherit`` (env), ``K`` alone in a list and ``K: null`` in a map take K's value from
    ``inherit`` and leave K out when it is not set there, as ``docker run -e K`` and Compose do.
    Without it (labels), they mean an empty value.
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        pairs: list[tuple[str, str | None]] = [
            (str(k), None if v is None else scalar_text(v)) for k, v in value.items()
        ]
    elif isinstance(value, list):
        pairs = []
        for item in value:
            if not isinstance(item, str) or not item:  # never the entry itself: it may hold a secret
                raise ValueError(f"expected {what} entries as KEY=VALUE strings, got {kind_of(item)}")
            key, sep, val = item.partition("=")
            pairs.append((key, val if sep else None))
    else:
        raise ValueError(f"expected {what} as a map or a list of KEY=VALUE, got {kind_of(value)}")
    out: dict[str, str] = {}
    for key, given in pairs:
        if not key:
            raise ValueError(f"{what}: an entry has no name")
        if given is not None:
            out[key] = given
        elif inherit is None:
            out[key] = ""
        elif key in inherit:
            out[key] = inherit[key]
    return out


_PORT_NUMBER = r"(?:6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3})"
#: A port mapping as a string, for the JSON Schema (the parser's form, with the 1-65535 range).
PORT_PATTERN = (
    rf"^(?:(?:\[[0-9a-fA-F:]+\]|\d{{1,3}}(?:\.\d{{1,3}}){{3}}):)?(?:(?:{_PORT_NUMBER})?:)?{_PORT_NUMBER}"
    r"(?:/(?:tcp|udp|sctp))?$"
)
_PORT = re.compile(
    r"^(?:(?P<ip>\[[0-9a-fA-F:]+\]|\d{1,3}(?:\.\d{1,3}){3}):)?(?:(?P<host>\d+)?:)?(?P<container>\d+)(?:/(?P<proto>tcp|udp|sctp))?$"
)


def parse_port(value: Any) -> dict[str, Any]:
    """``8888`` / ``"8888:8888"`` / ``"127.0.0.1:8888:8888/tcp"`` → a canonical port mapping."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not (match := _PORT.match(text.strip())):
        raise ValueError(f'expected a port such as 8888 or "8888:8888" or "127.0.0.1:8888:8888/tcp", got {value!r}')
    container = int(match.group("container"))
    host = match.group("host")
    for port in (container, int(host) if host else 1):
        if not 1 <= port <= 65535:
            raise ValueError(f"port {port} is out of range 1-65535")
    return {
        "host_ip": (match.group("ip") or "").strip("[]"),
        "host_port": int(host) if host else None,
        "container_port": container,
        "protocol": match.group("proto") or "tcp",
    }


def port_text(port: dict[str, Any]) -> str:
    """A canonical port mapping as the file spells it: ``127.0.0.1:18888:8888/udp``, ``8888``."""
    ip = port["host_ip"]
    ip = f"[{ip}]" if ":" in ip else ip
    host = f"{ip}:" if ip else ""
    host += f"{port['host_port']}:" if port["host_port"] is not None else ":" if ip else ""
    proto = "" if port["protocol"] == "tcp" else f"/{port['protocol']}"
    return f"{host}{port['container_port']}{proto}"


# --- suggestions --------------------------------------------------------------------------------


def suggest(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close choice exists, else an empty string."""
    import difflib

    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close and len(word) >= 3:
        close = [c for c in options if c.startswith(word) or word.startswith(c)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- the fields of docker run's remaining flags (see ngcws.runflags) -----------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def parse_duration(value: Any) -> int:
    """Compose's durations (``1m30s``, ``500ms``, ``10s``; a bare number is seconds) → nanoseconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return round(value * 10**9)
    if isinstance(value, str):
        text = value.strip()
        if text and _DURATION_PART.sub("", text) == "":
            return round(sum(float(n) * _DURATION_NS[u] for n, u in _DURATION_PART.findall(text)))
    raise ValueError(f"expected a duration such as 10s, 1m30s or 500ms, got {value!r}")


def whole_seconds(value: Any) -> int:
    """A duration that the engine keeps in whole seconds (``stop_grace_period``)."""
    nanos = parse_duration(value)
    if nanos % 10**9:
        raise ValueError(f"{value!r} is not a whole number of seconds; the engine keeps this in seconds")
    return nanos // 10**9


LINUX_CAPABILITIES = (
    "AUDIT_CONTROL", "AUDIT_READ", "AUDIT_WRITE", "BLOCK_SUSPEND", "BPF", "CHECKPOINT_RESTORE", "CHOWN",
    "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "IPC_LOCK", "IPC_OWNER", "KILL", "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN", "MAC_OVERRIDE", "MKNOD", "NET_ADMIN", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_RAW", "PERFMON", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_ADMIN", "SYS_BOOT", "SYS_CHROOT",
    "SYS_MODULE", "SYS_NICE", "SYS_PACCT", "SYS_PTRACE", "SYS_RAWIO", "SYS_RESOURCE", "SYS_TIME",
    "SYS_TTY_CONFIG", "SYSLOG", "WAKE_ALARM",
)  # fmt: skip


def parse_linux_capabilities(value: Any) -> list[str]:
    """``cap_add``/``cap_drop``: names with or without ``CAP_``, any case, or ``ALL`` → sorted ``CAP_X``."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected a list of capability names such as [IPC_LOCK, SYS_ADMIN], got {value!r}")
    out: set[str] = set()
    for item in items:
        name = item.strip().upper()
        if name == "ALL":
            out.add("ALL")
            continue
        bare = name.removeprefix("CAP_")
        if bare not in LINUX_CAPABILITIES:
            raise ValueError(f"unknown Linux capability {item!r}" + suggest(bare, LINUX_CAPABILITIES))
        out.add(f"CAP_{bare}")
    return sorted(out)


_CDI = re.compile(r"^[a-z0-9.-]+/[a-zA-Z0-9_.-]+=")


def parse_device(value: Any) -> dict[str, str]:
    """``/dev/x``, ``/dev/x:/dev/y``, ``/dev/x:rw``, ``/dev/x:/dev/y:rwm`` → source, target, permissions."""
    if isinstance(value, str) and _CDI.match(value.strip()):
        raise ValueError(f"{value!r} is a CDI device name, which this engine path does not use; for GPUs write gpus:")
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'expected a device as "/dev/HOST[:/dev/CONTAINER][:rwm]", got {value!r}')
    parts = value.strip().split(":")
    permissions = "rwm"
    if len(parts) > 1 and not parts[-1].startswith("/"):
        permissions = parts.pop()
        if not permissions or set(permissions) - set("rwm") or len(set(permissions)) != len(permissions):
            raise ValueError(f"device permissions must be a combination of r, w and m, got {permissions!r}")
    if len(parts) > 2:
        raise ValueError(f'expected a device as "/dev/HOST[:/dev/CONTAINER][:rwm]", got {value!r}')
    source = parts[0]
    target = parts[1] if len(parts) == 2 else source
    for path in (source, target):
        if not path.startswith("/"):
            raise ValueError(f"device paths must be absolute, got {path!r} in {value!r}")
    return {"source": source, "target": target, "permissions": permissions}


def device_target(value: Any) -> str | None:
    """The container path of a device entry as written (for merging), or None if it does not parse."""
    try:
        return parse_device(value)["target"]
    except ValueError:
        return None


def parse_ip(value: Any, what: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not an IP address") from None


def parse_extra_hosts(value: Any) -> list[str]:
    """``["host:ip"]``, ``["host=ip"]`` or ``{host: ip}`` → ``["host:ip", ...]`` as the engine keeps them."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for host, ips in value.items():
            pairs.extend((str(host), ip) for ip in (ips if isinstance(ips, list) else [ips]))
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, str):
                raise ValueError(f'expected "HOST:IP" or "HOST=IP", got {item!r}')
            sep = "=" if "=" in item else ":"
            host, found, ip = item.partition(sep)
            if not found:
                raise ValueError(f'expected "HOST:IP" or "HOST=IP", got {item!r}')
            pairs.append((host.strip(), ip.strip()))
    else:
        raise ValueError(f'expected a list of "HOST:IP" or a map of HOST: IP, got {value!r}')
    out = []
    for host, ip in pairs:
        if not re.match(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$", host):
            raise ValueError(f"extra_hosts: {host!r} is not a host name")
        address = ip if ip == "host-gateway" else parse_ip(ip, "extra_hosts")
        out.append(f"{host}:{address}")
    return out


def parse_tmpfs(value: Any) -> dict[str, str]:
    """``/run`` or ``["/run:rw,size=64m", "/tmp"]`` → ``{path: options}`` (``--tmpfs``)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f'expected a path or a list of "PATH[:OPTIONS]", got {value!r}')
    out: dict[str, str] = {}
    for item in items:
        path, _, options = item.strip().partition(":")
        if not path.startswith("/"):
            raise ValueError(f"a tmpfs path must be absolute inside the container, got {path!r}")
        path = path.rstrip("/") or "/"
        if path in out:
            raise ValueError(f"tmpfs {path!r} is listed twice")
        out[path] = options
    return out


def tmpfs_target(value: Any) -> str | None:
    return value.strip().partition(":")[0].rstrip("/") or "/" if isinstance(value, str) else None


_SIGNALS = (
    "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE", "POLL",
    "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN", "TTOU", "URG",
    "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
)  # fmt: skip


def parse_signal(value: Any) -> str:
    """``SIGINT`` / ``INT`` / ``sigint`` / ``2`` / ``SIGRTMIN+3``, as one canonical spelling (see
    :func:`canonical_signal`), so that equivalent spellings never recreate a container."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    bare = text.upper().removeprefix("SIG")
    if text.isdigit() and 1 <= int(text) <= 64:
        return canonical_signal(text)
    if bare in _SIGNALS or re.fullmatch(r"RTM(IN|AX)([+-]\d+)?", bare):
        return canonical_signal(text)
    raise ValueError(f"{value!r} is not a signal name such as SIGINT or SIGTERM" + suggest(bare, _SIGNALS))


def canonical_signal(text: str) -> str:
    """``INT``, ``sigint``, ``2`` → ``SIGINT`` (Linux numbers; a real-time number stays a number)."""
    import signal

    if text.isdigit():
        try:
            name = signal.Signals(int(text)).name
        except ValueError:
            return text
        return name if name.isupper() and name.startswith("SIG") and "RT" not in name else text
    return "SIG" + text.strip().upper().removeprefix("SIG")


def parse_healthcheck_test(value: Any) -> list[str]:
    """A string runs in the image's shell (``CMD-SHELL``); a list starts with CMD, CMD-SHELL or NONE."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("an empty healthcheck test: give a command, or disable: true")
        return ["CMD-SHELL", value]
    items = parse_command(value)
    if not items or items[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise ValueError(f"a healthcheck test list starts with CMD, CMD-SHELL or NONE, got {value!r}")
    if items[0] != "NONE" and len(items) < 2:
        raise ValueError(f"{items[0]} needs a command after it")
    return items
