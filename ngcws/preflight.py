"""Gathering the facts doctor judges, and preflight: the checks ``up`` and ``run`` make first.

:class:`HostFacts` asks the engine (version, info, probe containers that test a GPU request or a
ulimit without running anything) and, when the engine runs on this host, the host itself
(:mod:`ngcws.hostinfo`). :func:`doctor_checks` turns them into :mod:`ngcws.doctor` verdicts;
:func:`preflight` runs the ones that would make creation or start fail, before anything is
stopped or removed, and raises :class:`~ngcws.errors.PreflightError` with doctor's message.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ngcws import doctor as D
from ngcws import gpuset
from ngcws import labels as L
from ngcws.engine import Engine
from ngcws.engine.libpod import PODMAN_CDI_DIRS, is_podman
from ngcws.errors import NgcwsError, PreflightError
from ngcws.hostinfo import DaemonFacts, Host, HostInfo, daemon_facts, which_on_path
from ngcws.plan import Kind, Plan
from ngcws.spec import DesiredContainer, DesiredState


def effective_gpu_request(essence: Mapping[str, Any], api_version: str | None, podman: bool = False) -> str:
    """``gpu_request`` with ``auto`` resolved: device requests, the runtime on engines < API 1.40, CDI
    on Podman (which drops device requests)."""
    mode = str(essence.get("gpu_request", "auto"))
    if mode != "auto":
        return mode
    if podman:
        return "cdi"
    if api_version and D.version_tuple(api_version) < D.MIN_API_DEVICE_REQUESTS:
        return "runtime"
    return "device-requests"


class HostFacts:
    """The engine's and the host's facts, each gathered at most once."""

    def __init__(self, engine: Engine, host: Host | None = None, environ: Mapping[str, str] | None = None) -> None:
        self.engine = engine
        self.host = host or Host()
        self.environ = os.environ if environ is None else environ
        self._cache: dict[str, Any] = {}

    def _once(self, key: str, compute: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    @property
    def socket_path(self) -> str | None:
        host = self.engine.transport.host
        return host[len("unix://") :] if host.startswith("unix://") else None

    @property
    def local(self) -> bool:
        """Does the engine run on this host (so that this host's driver and GPUs are its)?"""
        return self.socket_path is not None

    def version(self) -> tuple[dict[str, Any] | None, str | None, str | None]:
        def ask() -> tuple[dict[str, Any] | None, str | None, str | None]:
            try:
                return self.engine.version(), None, None
            except NgcwsError as exc:
                return None, exc.message, exc.hint

        result: tuple[dict[str, Any] | None, str | None, str | None] = self._once("version", ask)
        return result

    @property
    def podman(self) -> bool:
        """Is the engine Podman's service (engine/libpod.py)?"""
        return is_podman(self.version()[0])

    def api_version(self) -> str | None:
        version = self.version()[0]
        return str(version.get("ApiVersion")) if version else None

    def info(self) -> dict[str, Any]:
        result: dict[str, Any] = self._once("info", self.engine.info)
        return result

    def host_info(self) -> HostInfo:
        result: HostInfo = self._once("host", lambda: self.host.discover() if self.local else HostInfo())
        return result

    def daemon(self) -> DaemonFacts | None:
        socket = self.socket_path
        result: DaemonFacts | None = self._once("daemon", lambda: daemon_facts(self.host, socket) if socket else None)
        return result

    def probe(self, image: str, host_config: Mapping[str, Any], env: list[str] | None = None) -> str:
        key = "probe:" + json.dumps([image, host_config, env], sort_keys=True)
        result: str = self._once(key, lambda: self.engine.probe_start(image, host_config, env))
        return result

    def probe_image(self, preferred: Iterable[str] = ()) -> str | None:
        """An image to probe with: one of ``preferred`` if local, else the smallest local image."""
        for image in preferred:
            if self.image(image) is not None:
                return image
        images = [i for i in self.engine.list_images() if i.get("RepoTags") and i["RepoTags"][0] != "<none>:<none>"]
        if not images:
            return None
        return str(min(images, key=lambda i: int(i.get("Size") or 0))["RepoTags"][0])

    def image(self, ref: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._once("image:" + ref, lambda: self.engine.inspect_image(ref))
        return result

    def gpu_support(self, mode: str, probe_request: Mapping[str, Any] | None, image: str | None) -> D.GpuSupport:
        """What the engine says about NVIDIA support; probed with ``probe_request`` (a create request)."""
        info = self.info()
        spec_dirs = info.get("CDISpecDirs")
        if spec_dirs is None and self.podman:
            spec_dirs = list(PODMAN_CDI_DIRS)
        cdi_specs: tuple[str, ...] = ()
        if spec_dirs and self.local:
            cdi_specs = tuple(nvidia_cdi_specs(self.host.root, spec_dirs))
        daemon = self.daemon()
        probe = None
        if mode == "device-requests" and image is not None and probe_request is not None:
            host_config = {"DeviceRequests": probe_request["HostConfig"].get("DeviceRequests")}
            probe = self.probe(image, host_config, _nvidia_env(probe_request))
        return D.GpuSupport(
            podman=self.podman,
            runtimes=tuple(sorted(info.get("Runtimes") or {})),
            default_runtime=str(info.get("DefaultRuntime") or ""),
            cdi_spec_dirs=None if spec_dirs is None else tuple(spec_dirs),
            cdi_specs=cdi_specs,
            hooks_on_daemon_path=which_on_path(D.NVIDIA_HOOKS, daemon.path) if daemon and daemon.path else None,
            toolkit_on_path=which_on_path(D.TOOLKIT_PROGRAMS) if self.local else None,
            probe=probe,
        )

    def memlock_probe(self, image: str | None, request: Mapping[str, Any]) -> str | None:
        if image is None:
            return None
        ulimits = [u for u in request["HostConfig"].get("Ulimits") or [] if u["Name"] == "memlock"]
        return self.probe(image, {"Ulimits": ulimits}) if ulimits else None

    def gpu_holders(self, exclude_directory: str | None, in_file: Iterable[str] = ()) -> list[gpuset.Holder]:
        """Every running container on the engine that holds GPUs, except the containers of the
        workspaces ``in_file`` of the project in ``exclude_directory`` (the file says what they
        hold); its orphans (workspaces no longer in the file) are holders."""
        in_file = set(in_file)
        holders = []
        for entry in self.running():
            labels = entry.get("Labels") or {}
            name = str((entry.get("Names") or ["?"])[0]).lstrip("/")
            if (
                exclude_directory is not None
                and labels.get(L.PROJECT_DIR) == exclude_directory
                and labels.get(L.ONEOFF) != "true"
                and labels.get(L.WORKSPACE) in in_file
            ):
                continue
            if L.SPEC in labels:
                try:
                    gpus = json.loads(labels[L.SPEC]).get("gpus")
                except ValueError:
                    gpus = None
                label = f"workspace {labels.get(L.WORKSPACE)!r} of project {labels.get(L.PROJECT)!r} ({name})"
                if exclude_directory is not None and labels.get(L.PROJECT_DIR) == exclude_directory:
                    label = (
                        f"run container {name} (workspace {labels.get(L.WORKSPACE)!r})"
                        if labels.get(L.ONEOFF) == "true"
                        else f"orphan container {name} (workspace {labels.get(L.WORKSPACE)!r}, no longer in the file)"
                    )
            else:
                inspect = self.engine.inspect_container(str(entry["Id"])) or {}
                gpus = gpuset.gpus_of_container(
                    inspect.get("HostConfig") or {}, (inspect.get("Config") or {}).get("Env") or []
                )
                label = f"container {name}"
            if gpus not in (None, "none"):
                holders.append(gpuset.Holder(label, gpus))
        return holders

    def login_verdict(self, registry: str, credentials: Mapping[str, str] | None) -> Any:
        """What ``registry`` says of ``credentials`` (:func:`ngcws.registrycheck.verify_login`), asked
        once per registry and login; None without a user name and password to try."""
        if not credentials or not credentials.get("username") or not credentials.get("password"):
            return None
        from ngcws.registrycheck import verify_login

        user, password = credentials["username"], credentials["password"]
        timeout = float(self.environ.get("NGCWS_REGISTRY_TIMEOUT", "3"))
        key = f"login:{registry}:{user}:{hash(password)}"
        return self._once(key, lambda: verify_login(registry, user, password, timeout))

    def running(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._once("running", self.engine.running_containers)
        return result

    def index_of(self) -> dict[str, str]:
        return {g.uuid.lower(): str(g.index) for g in self.host_info().gpus}


def nvidia_cdi_specs(root: Path, spec_dirs: Iterable[str]) -> list[str]:
    """NVIDIA CDI spec files (``kind: nvidia.com/gpu``) in the engine's CDI folders."""
    found = []
    for folder in spec_dirs:
        base = root / folder.lstrip("/")
        if not base.is_dir():
            continue
        for spec in sorted(base.iterdir()):
            if spec.suffix in (".yaml", ".yml", ".json"):
                try:
                    if "nvidia.com/gpu" in spec.read_text(errors="replace"):
                        found.append(str(Path(folder) / spec.name))
                except OSError:
                    continue
    return found


def _nvidia_env(request: Mapping[str, Any]) -> list[str]:
    return [e for e in request.get("Env") or [] if e.startswith("NVIDIA_")]


def gpu_notes(
    facts: HostFacts, wants: Iterable[DesiredContainer], directory: str, every: Iterable[DesiredContainer]
) -> list[str]:
    """What the GPU requests of ``wants`` mean here: a count's GPUs, and one line per set of GPUs
    they share with anyone: the file's other workspaces (by what the file asks of them), orphans of
    this project, other projects' workspaces and any other container that holds GPUs.
    """
    wants = list(wants)
    notes = [f"{w.workspace}: {note}" for w in wants if (note := gpuset.count_note(w.essence["gpus"]))]
    return notes + gpu_sharing(facts, wants, directory, every)


def gpu_sharing(
    facts: HostFacts, wants: Iterable[DesiredContainer], directory: str, every: Iterable[DesiredContainer]
) -> list[str]:
    """One line per set of GPUs a workspace of ``wants`` shares (:func:`ngcws.gpuset.sharing`)."""
    wants, every = list(wants), list(every)
    if not any(w.essence["gpus"] != "none" for w in wants):
        return []
    parties = [gpuset.Holder(f"workspace {w.workspace!r}", w.essence["gpus"]) for w in every]
    parties += facts.gpu_holders(directory, [w.workspace for w in every])
    # Only a UUID needs the host's GPU list (nvidia-smi) to be compared with an index.
    uuids = any(isinstance(p.gpus, list) and any(str(i).startswith("GPU-") for i in p.gpus) for p in parties)
    index_of = facts.index_of() if uuids else None
    return gpuset.sharing(parties, [f"workspace {w.workspace!r}" for w in wants], index_of)


# --- doctor -------------------------------------------------------------------------------------


def doctor_checks(facts: HostFacts, state: DesiredState | None) -> list[D.Check]:
    """Every check, for the host and (with a project) each workspace."""
    version, error, hint = facts.version()
    checks = [
        D.check_endpoint(facts.engine.transport.endpoint.describe()),
        D.check_engine(version, error, hint, facts.podman),
    ]
    desired = list(state.containers.values()) if state else []
    gpus_wanted = any(d.essence["gpus"] != "none" for d in desired)
    host = facts.host_info()
    checks += [D.check_host(host), D.check_driver(host, gpus_wanted, facts.local), D.check_gpus(host, facts.local)]
    if version is None:
        return checks
    api = facts.api_version()
    probe_image = facts.probe_image([d.image for d in desired])
    gpu_desired: list[DesiredContainer | None] = [d for d in desired if d.essence["gpus"] != "none"]
    if not gpu_desired:
        gpu_desired = [None]
    seen_modes: set[str] = set()
    for want in gpu_desired:
        mode = effective_gpu_request(want.essence if want else {}, api, facts.podman)
        if mode in seen_modes:
            continue
        seen_modes.add(mode)
        image = want.image if want and facts.image(want.image) is not None else probe_image
        request = want.request if want else {"HostConfig": {"DeviceRequests": _ALL_GPUS}, "Env": []}
        check = D.check_gpu_support(facts.gpu_support(mode, request, image), mode)
        if want is None and desired and check.verdict == D.FAIL:  # no workspace asks for GPUs
            check = D.Check(check.name, D.WARN, check.summary, check.fix, detail=check.detail)
        checks.append(check)
    if not any(D.memlock_wanted(d.essence) is not None for d in desired):  # the host's facts anyway
        unlimited = {"HostConfig": {"Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}]}}
        checks.append(D.check_host_memlock(facts.memlock_probe(probe_image, unlimited), facts.daemon()))
    directory = state.identity.directory if state else ""
    for want in desired:
        checks += workspace_checks(facts, want, directory, probe_image, desired)
    checks += _port_checks(facts, desired, directory)
    gpu_wants = [d for d in desired if d.essence["gpus"] != "none"]
    checks += [D.check_gpu_sharing(line) for line in gpu_sharing(facts, gpu_wants, directory, desired)]
    return checks


_ALL_GPUS = [{"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]], "Options": {}}]


def workspace_checks(
    facts: HostFacts,
    want: DesiredContainer,
    directory: str,
    probe_image: str | None,
    siblings: Iterable[DesiredContainer] = (),
) -> list[D.Check]:
    from ngcws.engine.auth import stored_credentials
    from ngcws.imageref import image_ref

    name = want.workspace
    inspect = facts.image(want.image)
    env = D.image_env(inspect) if inspect is not None else None
    host = facts.host_info()
    checks: list[D.Check] = []
    gpus = want.essence["gpus"]
    if gpus != "none":
        checks.append(D.check_image_driver(name, want.image, env, host))
        wanted: Any = "all" if gpus == "all" else sorted(gpuset.held(gpus, facts.index_of()))
        checks.append(D.check_compute_capability(name, want.image, env, host, wanted))
    checks.append(D.check_shm(name, want.essence, env))
    memlock = D.check_memlock(
        name, want.essence, facts.memlock_probe(want.image if inspect else probe_image, want.request), facts.daemon()
    )
    if memlock:
        checks.append(memlock)
    image = image_ref(want.image)
    registry = image.registry
    try:  # the login a pull would send, asked of the registry itself
        credentials, source = stored_credentials(image, facts.environ)
    except Exception:  # a broken credential helper: say not logged in
        credentials, source = None, ""
    verdict = facts.login_verdict(registry, credentials)
    checks.append(
        D.check_credentials(
            name,
            registry,
            source == "docker login",
            source == "NGC_API_KEY",
            inspect is not None and want.pull != "always",  # pull: always pulls each time
            verdict.outcome if verdict else None,
            verdict.detail if verdict else "",
        )
    )
    return checks


def _port_checks(facts: HostFacts, desired: list[DesiredContainer], directory: str) -> list[D.Check]:
    """Doctor's host-port checks: each conflict once; a workspace's own running container holds its
    ports rightly."""
    from ngcws.ports import port_checks
    from ngcws.values import port_text

    own: dict[str, list[str]] = {}
    for entry in facts.running():
        labels = entry.get("Labels") or {}
        if labels.get(L.PROJECT_DIR) == directory and labels.get(L.ONEOFF) != "true":
            own.setdefault(str(labels.get(L.WORKSPACE)), []).append(str(entry["Id"]))
    found = port_checks(desired, desired, facts.running(), own)
    for want in desired:
        fixed = [port_text(p) for p in want.essence.get("ports") or [] if p["host_port"] is not None]
        named = any(c.workspace == want.workspace or repr(want.workspace) in c.summary for c in found)
        if fixed and not named:
            found.append(
                D.Check("port", D.PASS, f"host ports free or its own: {', '.join(fixed)}", None, want.workspace)
            )
    return found


# --- preflight ----------------------------------------------------------------------------------


def preflight_checks(
    facts: HostFacts,
    desired: Iterable[DesiredContainer],
    every: Iterable[DesiredContainer] | None = None,
    replacing: Mapping[str, Iterable[str]] | None = None,
    starting: Iterable[DesiredContainer] = (),
) -> list[D.Check]:
    """The checks that would make creating or starting these containers fail (``plan`` shows them).

    With ``every`` (the file's workspaces), host ports too: published twice in the file, or held
    by a running container other than those in ``replacing`` (per workspace, the containers the
    change replaces), also for the existing containers of ``starting`` (which publish them again
    when started). ``ngcws run`` publishes no ports and passes none.
    """
    from ngcws.ports import port_checks

    desired = list(desired)
    checks: list[D.Check] = []
    api = facts.api_version()
    for want in desired:
        image = want.image if facts.image(want.image) is not None else None
        if want.essence["gpus"] != "none":
            mode = effective_gpu_request(want.essence, api, facts.podman)
            support = D.check_gpu_support(facts.gpu_support(mode, want.request, image), mode)
            checks.append(
                D.Check(
                    support.name,
                    support.verdict,
                    support.summary,
                    support.fix,
                    want.workspace,
                    engine_message=support.engine_message,
                )
            )
            if facts.local:
                env = D.image_env(facts.image(want.image)) if image else None
                checks.append(D.check_image_driver(want.workspace, want.image, env, facts.host_info()))
        memlock = D.check_memlock(
            want.workspace, want.essence, facts.memlock_probe(image, want.request), facts.daemon()
        )
        if memlock:
            checks.append(memlock)
    if every is not None:
        checks += port_checks([*desired, *starting], every, facts.running(), replacing or {})
    return checks


def port_scope(
    plan: Plan | None, every: list[DesiredContainer]
) -> tuple[list[DesiredContainer] | None, dict[str, list[str]] | None, list[DesiredContainer]]:
    """For the ports of ``up``'s ``plan``: the file's workspaces (``every``), the containers the plan
    replaces or starts (per workspace), and the workspaces whose existing container it starts."""
    if plan is None:
        return None, None, []
    replacing: dict[str, list[str]] = {}
    for action in plan.actions:
        if action.container is not None and action.kind in (Kind.RECREATE, Kind.REMOVE, Kind.START):
            replacing.setdefault(action.workspace, []).append(action.container.id)
    starting = [a.desired for a in plan.actions if a.kind is Kind.START and a.desired and a.container]
    return every, replacing, starting


def plan_failures(facts: HostFacts, plan: Plan, every: list[DesiredContainer]) -> list[str]:
    """What preflight would refuse in ``plan``, one line each (``ngcws plan`` shows them as errors)."""
    if not any(a.kind in (Kind.CREATE, Kind.RECREATE, Kind.START) for a in plan.actions):
        return []
    making = [a.desired for a in plan.actions if a.kind in (Kind.CREATE, Kind.RECREATE) and a.desired]
    checks = preflight_checks(facts, making, *port_scope(plan, every))
    return [f"{c.workspace}: {c.summary}" + (f" ({c.fix})" if c.fix else "") for c in D.failed(checks)]


def preflight(
    facts: HostFacts,
    desired: Iterable[DesiredContainer],
    every: Iterable[DesiredContainer] | None = None,
    replacing: Mapping[str, Iterable[str]] | None = None,
    starting: Iterable[DesiredContainer] = (),
) -> list[D.Check]:
    """:func:`preflight_checks`, raising :class:`PreflightError` if any fails (nothing is touched yet)."""
    checks = preflight_checks(facts, desired, every, replacing, starting)
    bad = D.failed(checks)
    if bad:
        first = bad[0]
        original = f"\n  (the engine said: {first.engine_message.strip()})" if first.engine_message else ""
        more = "".join(f"\n  {c.workspace}: {c.summary}" for c in bad[1:])
        raise PreflightError(
            f"{first.workspace}: {first.summary}{original}{more}",
            hint=(f"{first.fix[0].upper()}{first.fix[1:]}. " if first.fix else "")
            + "Nothing was changed. `ngcws doctor` checks the whole host; --skip-preflight overrides.",
        )
    return checks


def remote_mount_notes(facts: HostFacts, making: Iterable[DesiredContainer]) -> list[str]:
    """On an engine on another host, a bind mount's source is that host's path: say so before creating."""
    if facts.local:
        return []
    binds = [(want.workspace, m["source"]) for want in making for m in want.essence["mounts"] if m["type"] == "bind"]
    if not binds:
        return []
    import socket

    engine_host = str(facts.info().get("Name") or "")
    if engine_host and engine_host == socket.gethostname():
        return []  # tcp:// or ssh:// to this very host
    where = f"{engine_host} ({facts.engine.transport.host})" if engine_host else facts.engine.transport.host
    return [
        f"{workspace}: the engine runs on another host, {where}: the bind mount {source} is that host's folder "
        "(created empty there if missing), not this machine's"
        for workspace, source in binds
    ]
