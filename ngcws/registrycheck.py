"""Does a registry accept a stored login? Asked for real, as ``docker login`` does: ``GET /v2/``,
then basic auth or the token service its ``WWW-Authenticate`` names. Nothing is pulled.

Used by ``ngcws doctor`` only, with a short timeout: a registry that does not answer gives
"not verified", never a failure.
"""

from __future__ import annotations

import base64
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

OK, REJECTED, UNVERIFIED, ANONYMOUS = "ok", "rejected", "not verified", "anonymous"
_LOCAL = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")


class Verdict(NamedTuple):
    outcome: str  # OK | REJECTED | UNVERIFIED | ANONYMOUS (the registry asks for no login)
    detail: str = ""


def _api_host(registry: str) -> str:
    return "registry-1.docker.io" if registry in ("docker.io", "index.docker.io") else registry


def _get(url: str, timeout: float, authorization: str | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ssl.create_default_context()) as response:
            return int(response.status), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return int(error.code), {k.lower(): v for k, v in (error.headers or {}).items()}


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))


def verify_login(registry: str, username: str, password: str, timeout: float = 3.0) -> Verdict:
    """Ask ``registry`` whether it accepts ``username``/``password``."""
    basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    host = _api_host(registry)
    schemes = ["https", "http"] if _LOCAL.match(host) else ["https"]  # as dockerd: localhost may be plain HTTP
    last = ""
    for scheme in schemes:
        try:
            status, headers = _get(f"{scheme}://{host}/v2/", timeout)
        except (OSError, ValueError) as exc:  # refused, timed out, TLS on a plain-HTTP registry
            last = str(getattr(exc, "reason", None) or exc)
            continue
        if status == 200:
            return Verdict(ANONYMOUS, "the registry asks for no login")
        if status != 401:
            return Verdict(UNVERIFIED, f"GET /v2/ answered {status}")
        kind, params = _challenge(headers.get("www-authenticate", ""))
        try:
            if kind == "basic":
                status, _ = _get(f"{scheme}://{host}/v2/", timeout, basic)
            elif kind == "bearer" and params.get("realm"):
                query = {"account": username, **({"service": params["service"]} if "service" in params else {})}
                status, _ = _get(f"{params['realm']}?{urllib.parse.urlencode(query)}", timeout, basic)
            else:
                return Verdict(UNVERIFIED, f"unknown authentication scheme {kind or 'none'!r}")
        except (OSError, ValueError) as exc:
            return Verdict(UNVERIFIED, str(getattr(exc, "reason", None) or exc))
        if status == 200:
            return Verdict(OK)
        if status in (401, 403):
            return Verdict(REJECTED, f"{'token service' if kind == 'bearer' else 'registry'} answered {status}")
        return Verdict(UNVERIFIED, f"the registry answered {status}")
    return Verdict(UNVERIFIED, f"the registry did not answer: {last}")
