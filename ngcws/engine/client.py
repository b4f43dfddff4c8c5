"""Typed Engine API operations; every failure becomes an :mod:`ngcws.errors` exception."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ngcws.engine.transport import HijackError, Response, Transport, path
from ngcws.errors import (
    ContainerStartError,
    EngineConnectionLost,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    NgcwsError,
    NotRunning,
    OwnershipError,
    RegistryAuthError,
)

if TYPE_CHECKING:  # imported where used: ``ngcws exec`` needs neither
    from ngcws.imageref import ImageRef

ProgressCallback = Callable[[dict[str, Any]], None]
#: The program a probe container "runs": it does not exist, so nothing in the image ever runs.
PROBE_PROGRAM = "/ngcws-probe-does-not-exist"


class Engine:
    """The Docker engine, as ngcws needs it."""

    def __init__(self, transport: Transport | None = None) -> None:
        self.transport = transport or Transport()
        self._podman: bool | None = None

    # --- reads --------------------------------------------------------------------------------

    def version(self) -> dict[str, Any]:
        return dict(self._json("GET", "/version"))

    def info(self) -> dict[str, Any]:
        return dict(self._json("GET", "/info"))

    def running_containers(self) -> list[dict[str, Any]]:
        """Every running container on the engine, whoever made it."""
        return list(self._json("GET", "/containers/json", params={"filters": {"status": ["running"]}}))

    def probe_start(self, image: str, host_config: Mapping[str, Any], env: list[str] | None = None) -> str:
        """Create and start a throwaway container with ``host_config``: "" if the engine got as far as
        running its (missing) program, else the engine's message. The container is removed.

        This asks the engine itself whether it can honour GPU requests or ulimits, before a real
        container is created or an old one stopped; nothing inside the image runs.
        """
        request = {
            "Image": image,
            "Entrypoint": [PROBE_PROGRAM],
            "Cmd": [],
            "Env": env or [],
            "Labels": {"ngcws.probe": "true"},
            "NetworkDisabled": True,
            "HostConfig": {"NetworkMode": "none", **host_config},
        }
        response = self.transport.request("POST", "/containers/create", body=request)
        if response.status >= 400:
            return response.error_message()
        container_id = str(response.json()["Id"])
        try:
            started = self.transport.request("POST", path("/containers/{}/start", container_id), timeout=None)
            if started.status in (204, 304):
                started.read()
                return ""
            message = started.error_message()
            return "" if PROBE_PROGRAM in message else message
        finally:
            self.remove(container_id, force=True)

    def list_containers(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) carrying all of ``labels``: one call."""
        filters = {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}
        return list(self._json("GET", "/containers/json", params={"all": True, "filters": filters}))

    def inspect_container(self, ref: str) -> dict[str, Any] | None:
        return self._inspect(path("/containers/{}/json", ref), f"inspect container {ref}")

    def changes(self, ref: str) -> list[dict[str, Any]]:
        """What changed in the container's writable layer: ``[{"Path": ..., "Kind": 0|1|2}]``.

        Kind 0 is modified, 1 added, 2 deleted; mounts are not part of the layer.
        """
        return list(self._json("GET", path("/containers/{}/changes", ref)) or [])

    def writable_size(self, ref: str) -> int | None:
        """The size of the container's writable layer in bytes (``SizeRw``), if the engine knows it."""
        found: dict[str, Any] = self._json("GET", path("/containers/{}/json", ref), params={"size": True})
        size = found.get("SizeRw")
        return int(size) if isinstance(size, int) else None

    def stat_path(self, ref: str, file: str) -> dict[str, Any] | None:
        """``{name, size, mode, mtime, linkTarget}`` of a path in a container, or None if it is missing."""
        import base64

        response = self.transport.request("HEAD", path("/containers/{}/archive", ref), params={"path": file})
        response.read()
        if response.status == 404:
            return None
        self._checked(response, f"stat {file} in {ref}")
        header = response.headers.get("x-docker-container-path-stat", "")
        try:
            value = json.loads(base64.b64decode(header))
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def commit(
        self, ref: str, repository: str, tag: str, comment: str, config: Mapping[str, Any], labels: Mapping[str, str]
    ) -> str:
        """Save the container's filesystem as a local image whose config is exactly ``config`` (with
        ``labels``); return its id.

        The engine's commit always merges the container's own config into the image (its env,
        secrets included, is appended to any env given), so the container is committed untagged and
        the image is then re-made from the same layers with ``config``: ``POST /images/load`` with
        only a manifest and a config, whose layers the engine already has (it reads no layer).
        """
        params = {"container": ref, "comment": comment, "pause": True}
        response = self.transport.request("POST", "/commit", params=params, body={}, timeout=None)
        committed = str(self._checked(response, f"commit container {ref}").json()["Id"])
        try:
            made = self._load_config(
                self.inspect_image(committed) or {}, {**config, "Labels": dict(labels)}, comment, f"{repository}:{tag}"
            )
        finally:
            self.transport.request("DELETE", path("/images/{}", committed), params={"noprune": True}).read()
        return made

    def _load_config(
        self, committed: Mapping[str, Any], config: Mapping[str, Any], comment: str, reference: str
    ) -> str:
        """Tag ``reference`` as an image with the layers of ``committed`` (inspected) and ``config``."""
        import hashlib
        import io
        import tarfile

        layers = (committed.get("RootFS") or {}).get("Layers") or []
        image = {
            "architecture": committed.get("Architecture", "amd64"),
            "os": committed.get("Os", "linux"),
            "created": committed.get("Created", ""),
            "comment": comment,
            "config": dict(config),
            "rootfs": {"type": "layers", "diff_ids": list(layers)},
        }
        blob = json.dumps(image).encode()
        name = hashlib.sha256(blob).hexdigest() + ".json"
        manifest = [{"Config": name, "RepoTags": [reference], "Layers": [f"{i}/layer.tar" for i in range(len(layers))]}]
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for member, content in ((name, blob), ("manifest.json", json.dumps(manifest).encode())):
                info = tarfile.TarInfo(member)
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
        response = self.transport.request(
            "POST",
            "/images/load",
            params={"quiet": True},
            data=archive.getvalue(),
            headers={"Content-Type": "application/x-tar"},
            timeout=None,
        )
        for line in self._checked(response, f"save image {reference}").lines():
            if line.get("error"):
                raise EngineError(f"save image {reference}: {line['error']}")
        return "sha256:" + hashlib.sha256(blob).hexdigest()

    def list_images(self, labels: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Local images, all or those carrying all of ``labels``."""
        params = {"filters": {"label": [f"{k}={v}" if v else k for k, v in labels.items()]}} if labels else {}
        return list(self._json("GET", "/images/json", params=params) or [])

    def inspect_network(self, ref: str) -> dict[str, Any] | None:
        return self._inspect(path("/networks/{}", ref), f"inspect network {ref}")

    def inspect_image(self, ref: str) -> dict[str, Any] | None:
        return self._inspect(path("/images/{}/json", ref), f"inspect image {ref}")

    def _inspect(self, url: str, doing: str) -> dict[str, Any] | None:
        """An object's JSON, or None when the engine has no such object (404)."""
        response = self.transport.request("GET", url)
        if response.status == 404:
            response.read()
            return None
        return self._checked(response, doing).json()  # type: ignore[no-any-return]

    def top(self, ref: str, ps_args: str) -> dict[str, Any] | None:
        """``ps`` of a running container's processes (host pids), or None if it is not running."""
        response = self.transport.request("GET", path("/containers/{}/top", ref), params={"ps_args": ps_args})
        if response.status in (404, 409, 500):
            response.read()
            return None
        return dict(self._checked(response, f"list the processes of {ref}").json())

    def exec_running(self, exec_id: str) -> dict[str, Any] | None:
        """``exec_inspect``, or None when the exec is gone (it ended and the engine forgot it)."""
        response = self.transport.request("GET", path("/exec/{}/json", exec_id))
        if response.status == 404:
            response.read()
            return None
        return dict(self._checked(response, f"inspect exec {exec_id}").json())

    def events(self, filters: Mapping[str, list[str]]) -> Iterator[dict[str, Any]]:
        """The engine's events from now on, as they happen, until the engine goes away.

        Subscribes at once (an engine that does not answer raises here); the iterator then
        blocks between events (no polling) and ends with :class:`EngineUnavailable` when the
        connection drops, as it does when dockerd stops or restarts.
        """
        response = self.transport.request("GET", "/events", params={"filters": dict(filters)}, timeout=None)
        self._checked(response, "follow the engine's events")
        return self._event_stream(response)

    def _event_stream(self, response: Response) -> Iterator[dict[str, Any]]:
        try:
            yield from response.lines()
        except (OSError, ValueError) as exc:
            raise self.transport.unavailable(exc) from None
        finally:
            response.close()
        raise EngineUnavailable(f"the Docker engine at {self.transport.host} closed the event stream")

    def list_volumes(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
        found: dict[str, Any] = self._json("GET", "/volumes", params={"filters": filters})
        return list(found.get("Volumes") or [])

    # --- writes -------------------------------------------------------------------------------

    def pull(self, image: ImageRef, auth_header: str | None, progress: ProgressCallback, sent: str = "") -> None:
        """Pull ``image``, reporting each progress message; ``sent`` says where the credentials in
        ``auth_header`` come from (``docker login``, ``NGC_API_KEY``), for the message of a refusal."""
        sent = sent if auth_header else ""
        headers = {"X-Registry-Auth": auth_header} if auth_header else {}
        params = {"fromImage": image.name, "tag": image.pull_tag}
        response = self.transport.request("POST", "/images/create", params=params, headers=headers, timeout=None)
        if response.status != 200:
            raise pull_error(image, response.status, response.error_message(), sent)
        try:
            for message in response.lines():
                if "error" in message or "errorDetail" in message:
                    text = str(message.get("error") or (message.get("errorDetail") or {}).get("message", ""))
                    raise pull_error(image, 500, text, sent)
                progress(message)
        except EngineConnectionLost as exc:
            raise EngineConnectionLost(
                f"pulling {image} was cut off: {exc.message}",
                hint="Nothing was created from a partial image. Run the command again; layers already "
                "downloaded are kept.",
            ) from None

    def create_container(self, name: str, request: Mapping[str, Any]) -> str:
        host = request.get("HostConfig") or {}
        if (host.get("DeviceRequests") or host.get("Runtime") == "nvidia") and self.is_podman():
            return self._create_on_podman(name, request)
        response = self.transport.request("POST", "/containers/create", params={"name": name}, body=request)
        return self._created(name, response)

    def is_podman(self) -> bool:
        """Is the engine Podman's service? Asked once, and only where it matters (GPU requests)."""
        if self._podman is None:
            from ngcws.engine.libpod import is_podman

            self._podman = is_podman(self.version())
        return self._podman

    def _create_on_podman(self, name: str, request: Mapping[str, Any]) -> str:
        """GPUs on Podman: CDI devices through the libpod API; anything Podman would drop is refused."""
        from ngcws.engine.libpod import LIBPOD_CREATE, cdi_devices, specgen

        devices = cdi_devices(request)
        if devices is None:
            raise EngineError(
                f"Podman cannot honour the GPU request of {name}: its Docker-compatible API ignores --gpus "
                "(DeviceRequests) and --runtime=nvidia, so the container would silently get no GPU",
                hint="Nothing was created. Leave `gpu_request` at auto (or set `gpu_request: cdi`): ngcws then "
                "asks Podman for CDI devices (nvidia.com/gpu=N), described by an NVIDIA CDI spec "
                "(`sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml`).",
            )
        response = self.transport.request("POST", LIBPOD_CREATE, body=specgen(name, request, devices))
        if response.status >= 400:
            message = response.error_message()
            raise _refused(name, 409 if "already in use" in message else response.status, message)
        return str(response.json()["Id"])

    def _created(self, name: str, response: Response) -> str:
        if response.status >= 400:
            raise _refused(name, response.status, response.error_message())
        return str(response.json()["Id"])

    def start(self, ref: str, name: str | None = None) -> None:
        response = self.transport.request("POST", path("/containers/{}/start", ref), timeout=None)
        if response.status not in (204, 304):
            raise start_error(name or ref, response.error_message(), response.status)
        response.read()

    def unpause(self, ref: str) -> None:
        response = self.transport.request("POST", path("/containers/{}/unpause", ref))
        self._checked(response, f"unpause container {ref}").read()

    def wait_removed(self, ref: str) -> None:
        """Return once the engine has finished removing ``ref`` (at once if it is gone)."""
        response = self.transport.request(
            "POST", path("/containers/{}/wait", ref), params={"condition": "removed"}, timeout=None
        )
        if response.status == 404:
            response.read()
            return
        self._checked(response, f"wait for the removal of {ref}").read()

    def stop(self, ref: str, timeout: int | None = None) -> None:
        """Stop; without ``timeout`` the engine waits the container's own stop timeout (default 10 s)."""
        params = {"t": timeout} if timeout is not None else {}
        response = self.transport.request("POST", path("/containers/{}/stop", ref), params=params, timeout=None)
        if response.status in (204, 304, 404):
            response.read()
            return
        self._checked(response, f"stop container {ref}")

    def kill(self, ref: str, signal: str = "KILL") -> None:
        response = self.transport.request("POST", path("/containers/{}/kill", ref), params={"signal": signal})
        if response.status in (204, 404, 409):
            response.read()
            return
        self._checked(response, f"kill container {ref}")

    def restart(self, ref: str, name: str, timeout: int | None = None) -> None:
        params = {"t": timeout} if timeout is not None else {}
        response = self.transport.request("POST", path("/containers/{}/restart", ref), params=params, timeout=None)
        if response.status != 204:
            raise start_error(name, response.error_message(), response.status)
        response.read()

    def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        response = self.transport.request(
            "DELETE", path("/containers/{}", ref), params={"force": force, "v": volumes}, timeout=None
        )
        if response.status in (204, 404):
            response.read()
            return
        self._checked(response, f"remove container {ref}")

    def rename(self, ref: str, name: str) -> None:
        response = self.transport.request("POST", path("/containers/{}/rename", ref), params={"name": name})
        self._checked(response, f"rename container {ref} to {name}").read()

    def wait(self, ref: str, condition: str = "not-running") -> int:
        response = self.transport.request(
            "POST", path("/containers/{}/wait", ref), params={"condition": condition}, timeout=None
        )
        return int(self._checked(response, f"wait for {ref}").json().get("StatusCode", 0))

    def connect_network(self, network: str, ref: str) -> None:
        response = self.transport.request("POST", path("/networks/{}/connect", network), body={"Container": ref})
        self._checked(response, f"connect container {ref} to network {network}").read()

    def create_volume(self, name: str, labels: Mapping[str, str]) -> None:
        response = self.transport.request("POST", "/volumes/create", body={"Name": name, "Labels": dict(labels)})
        self._checked(response, f"create volume {name}").read()

    def remove_volume(self, name: str) -> None:
        response = self.transport.request("DELETE", path("/volumes/{}", name))
        if response.status in (204, 404):
            response.read()
            return
        self._checked(response, f"remove volume {name}")

    def put_files(self, ref: str, files: Mapping[str, tuple[bytes | None, int, int, int]]) -> None:
        """Write files into a container: ``{path: (content or None for a folder, uid, gid, mode)}``."""
        import io
        import tarfile

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, (content, uid, gid, mode) in files.items():
                info = tarfile.TarInfo(name.lstrip("/"))
                info.uid, info.gid, info.mode = uid, gid, mode
                if content is None:
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))
        response = self.transport.request(
            "PUT",
            path("/containers/{}/archive", ref),
            params={"path": "/"},
            data=buffer.getvalue(),
            headers={"Content-Type": "application/x-tar"},
        )
        self._checked(response, f"write files into {ref}").read()

    def read_file(self, ref: str, file: str) -> bytes | None:
        """One file's bytes from a container (created or running), or None if it is missing."""
        import io
        import tarfile

        response = self.transport.request("GET", path("/containers/{}/archive", ref), params={"path": file})
        if response.status == 404:
            response.read()
            return None
        data = self._checked(response, f"read {file} from {ref}").read()
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            extracted = tar.extractfile(member) if member else None
            return extracted.read() if extracted else None

    # --- processes ----------------------------------------------------------------------------

    def exec_create(self, ref: str, config: Mapping[str, Any]) -> str:
        response = self.transport.request("POST", path("/containers/{}/exec", ref), body=config)
        if response.status == 409:
            raise NotRunning(f"container {ref} is not running: {response.error_message()}")
        return str(self._checked(response, f"exec in {ref}").json()["Id"])

    def exec_start(self, exec_id: str, tty: bool, size: tuple[int, int] | None = None) -> tuple[Any, bytes]:
        body: dict[str, Any] = {"Detach": False, "Tty": tty}
        if size:
            body["ConsoleSize"] = list(size)
        try:
            return self.transport.hijack(path("/exec/{}/start", exec_id), body=body)
        except HijackError as exc:
            raise EngineError(f"cannot start the command: {exc.message}", status=exc.status) from None

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return dict(self._json("GET", path("/exec/{}/json", exec_id)))

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self.transport.request("POST", path("/exec/{}/resize", exec_id), params={"h": height, "w": width}).read()

    def container_resize(self, ref: str, height: int, width: int) -> None:
        self.transport.request("POST", path("/containers/{}/resize", ref), params={"h": height, "w": width}).read()

    def attach(self, ref: str) -> tuple[Any, bytes]:
        params = {"stream": True, "stdin": True, "stdout": True, "stderr": True}
        try:
            return self.transport.hijack(path("/containers/{}/attach", ref), params=params)
        except HijackError as exc:
            raise EngineError(f"cannot attach to {ref}: {exc.message}", status=exc.status) from None

    def logs(self, ref: str, *, follow: bool, tail: str, timestamps: bool) -> Iterator[bytes]:
        params = {"stdout": True, "stderr": True, "follow": follow, "tail": tail, "timestamps": timestamps}
        response = self.transport.request("GET", path("/containers/{}/logs", ref), params=params, timeout=None)
        return self._checked(response, f"logs of {ref}").chunks()

    # --- helpers ------------------------------------------------------------------------------

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._checked(self.transport.request(method, url, **kwargs), f"{method} {url}").json()

    @staticmethod
    def _checked(response: Response, doing: str) -> Response:
        if response.status < 400:
            return response
        message = response.error_message()
        raise EngineError(f"the engine refused to {doing}: {message}", status=response.status)


#: What registries say when credentials are missing or wrong (never the engine's own "permission denied").
_REGISTRY_REFUSAL = re.compile(
    r"unauthorized|authentication required|no basic auth credentials|pull access denied"
    r"|requested access to the resource is denied|^denied:|: denied:|incorrect username or password",
    re.IGNORECASE,
)


_REJECTED = re.compile(r"unauthorized|authentication required|incorrect username or password", re.IGNORECASE)


def pull_error(image: ImageRef, status: int, message: str, sent: str = "") -> EngineError:
    """A failed pull, named after the registry the image really comes from. ``sent``: where the
    credentials sent with it came from (``docker login``, ``NGC_API_KEY``; "" for none), so that a
    stored login the registry rejects is named as such, not met with "log in first"."""
    lowered = message.lower()
    where = f"{image.registry}, Docker Hub" if image.on_docker_hub else image.registry
    if _REGISTRY_REFUSAL.search(message):
        login = f"`{image.login_command()}`" + (" (password: your NGC API key)" if image.registry == "nvcr.io" else "")
        rejected = status == 401 or bool(_REJECTED.search(message))
        if sent == "NGC_API_KEY":
            said = f"the registry {'rejected' if rejected else 'denied access with'} NGC_API_KEY"
            hint = "Check NGC_API_KEY (an NGC API key), or unset it to use your docker login."
        elif sent:
            said = f"the stored login for {image.registry} ({sent}) was {'rejected' if rejected else 'denied access'}"
            hint = f"Log in again: {login}; the stored password or token is wrong or expired."
            if not rejected:
                hint = f"That account may not see {image}: check the name, or log in as another user: {login}."
        else:
            hint = f"Log in first: {login}" + (", or export NGC_API_KEY" if image.registry == "nvcr.io" else "")
            if "pull access denied" in lowered:
                hint = f"Check the repository name, or log in if it is private: `{image.login_command()}`"
            return RegistryAuthError(
                f"the registry refused to let us pull {image} ({where}): {message}", hint=hint, status=status
            )
        return RegistryAuthError(f"{said} when pulling {image} ({where}): {message}", hint=hint, status=status)
    if status == 404 or "not found" in lowered or "manifest unknown" in lowered:
        return ImageNotFound(
            f"image {image} was not found on {where}: {message}", hint="Check the repository and tag.", status=404
        )
    return EngineError(f"pulling {image} failed ({where}): {message}", hint=_pull_hint(lowered), status=status)


def _pull_hint(message: str) -> str | None:
    """What to do about a pull that failed on the way; nothing was changed, so trying again is safe."""
    again = "Nothing was changed; the next `ngcws up` tries again."
    if "no space left on device" in message:
        full = "The disk that holds Docker's data is full: free some space (`docker system df` shows what uses it)."
        return f"{full} {again}"
    unreachable = ("connection refused", "no such host", "i/o timeout", "deadline exceeded", "network is unreachable")
    broke = ("unexpected eof", "connection reset", "broken pipe", "short read")
    if any(word in message for word in unreachable) or ('/v2/":' in message and any(w in message for w in broke)):
        return f"The registry did not answer: check its address and your network. {again}"
    if any(word in message for word in broke):
        return f"The connection to the registry broke during the download. {again}"
    return None


def start_error(name: str, message: str, status: int) -> ContainerStartError:
    """Explain the start failures NGC users meet, with what to do about each; the engine's message is kept."""
    from ngcws.explain import explain_start_failure

    fix = explain_start_failure(message)
    if fix is None and "no such file or directory" in message and "exec" in message:
        fix = "the command does not exist in the image"
    return ContainerStartError(f"cannot start {name}: {message}", hint=sentence(fix), status=status)


def sentence(text: str | None) -> str | None:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".") if text else None


def _refused(name: str, status: int, message: str) -> NgcwsError:
    """A refused container create, as one of ngcws's errors."""
    from ngcws.explain import explain_start_failure

    if status == 409:
        return OwnershipError(
            f"a container named {name!r} already exists and is not managed by this project",
            hint=f"ngcws never touches it. Rename or remove it yourself (`docker rm {name}`), "
            "or give this project another name (`name:` in ngcws.yaml or -p).",
        )
    if status == 404:
        return ImageNotFound(f"cannot create {name}: {message}", hint="Pull it first: `ngcws pull`.")
    return EngineError(
        f"the engine refused to create container {name}: {message}",
        hint=sentence(explain_start_failure(message)),
        status=status,
    )
