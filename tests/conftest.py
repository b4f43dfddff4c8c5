"""Shared fixtures.

Unit tests (tests/unit) can never reach an engine: DOCKER_HOST points at a socket that does not
exist. Engine tests (tests/engine) run against the real engine, registries and images that
``scripts/testbed`` provides; they are marked ``docker`` (and ``gpu_sim`` where the engine must
accept GPU requests). Without an engine they are skipped, except under CI (``CI=true``), where a
missing engine is a failure. Every engine test works in its own project, removed by label after.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.private_engine import PrivateEngine

TESTBED_ENV = Path(os.environ.get("NGCWS_TESTBED_ENV", "/var/lib/ngcws-testbed/env"))
NGCWS = [sys.executable, "-m", "ngcws"]


def _testbed() -> dict[str, str]:
    if not TESTBED_ENV.is_file():
        return {}
    out = {}
    for line in TESTBED_ENV.read_text().splitlines():
        key, _, value = line.partition("=")
        out[key] = value.strip("'")
    return out


TESTBED = _testbed()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/engine" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def _isolated(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test gets its own ngcws cache and docker config; unit tests cannot reach an engine."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    # Registry logins come from an empty docker config, never from the runner's own ~/.docker.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
    monkeypatch.delenv("NGCWS_FILE", raising=False)
    if request.node.get_closest_marker("docker") is None:
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/unit-tests-must-not-reach-docker.sock")


def _engine_problem() -> str | None:
    from ngcws.engine import Engine
    from ngcws.errors import NgcwsError

    try:
        Engine().version()
    except NgcwsError as exc:
        return str(exc)
    if not TESTBED:
        return f"no test bed facts in {TESTBED_ENV}: run scripts/testbed"
    return None


#: A label on every image the tests build (intermediate build steps included): removed at the end.
BUILT_LABEL = "ngcws.test.build"


@pytest.fixture(scope="session")
def testbed() -> Iterator[dict[str, str]]:
    """The test bed's facts; skips (fails under CI) when there is no engine. At the end of the
    session, the images the tests built are removed (a pushed and re-pulled image outlives the
    tag a test deletes)."""
    problem = _engine_problem()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs a Docker engine: {problem}")
        pytest.skip(problem)
    yield TESTBED
    from ngcws.engine import Engine

    engine = Engine()
    built = engine.transport.request("GET", "/images/json", params={"all": True, "filters": {"label": [BUILT_LABEL]}})
    for image in sorted(built.json(), key=lambda i: -int(i.get("Created") or 0)):  # children first
        engine.transport.request("DELETE", f"/images/{image['Id']}", params={"force": True}).read()


@pytest.fixture
def gpu_sim(testbed: dict[str, str]) -> None:
    if testbed.get("NGCWS_TB_GPU_SIM") != "1":
        message = "the engine does not accept GPU requests (no NVIDIA hook on dockerd's PATH)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class Workspace:
    """A throwaway project folder with its own ngcws.yaml, cleaned up by label."""

    def __init__(self, root: Path, name: str) -> None:
        self.dir = root
        self.name = name

    def write(self, body: str) -> Path:
        path = self.dir / "ngcws.yaml"
        path.write_text(f"name: {self.name}\n{body}")
        return path

    def ngcws(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [*NGCWS, *args],
            cwd=cwd or self.dir,
            input=input,
            capture_output=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    def ok(self, *args: str, **kwargs: object) -> str:
        result = self.ngcws(*args, **kwargs)  # type: ignore[arg-type]
        assert result.returncode == 0, result.stderr.decode() + result.stdout.decode()
        return result.stdout.decode()

    def containers(self) -> list[dict[str, object]]:
        from ngcws.engine import Engine

        return Engine().list_containers({"ngcws.project": self.name})


def remove_project(name: str) -> None:
    from ngcws.engine import Engine

    engine = Engine()
    for container in engine.list_containers({"ngcws.project": name}):
        engine.remove(str(container["Id"]), force=True, volumes=True)
    for volume in engine.list_volumes({"ngcws.project": name}):
        engine.remove_volume(volume["Name"])


@pytest.fixture
def project(testbed: dict[str, str], tmp_path: Path) -> Iterator[Workspace]:
    name = f"t{uuid.uuid4().hex[:10]}"
    folder = tmp_path / name
    folder.mkdir()
    yield Workspace(folder, name)
    remove_project(name)


@pytest.fixture
def make_project(testbed: dict[str, str], tmp_path: Path) -> Iterator[Callable[[str], Workspace]]:
    """Several projects in one test (e.g. the same name in two folders)."""
    names: set[str] = set()

    def make(name: str) -> Workspace:
        folder = tmp_path / uuid.uuid4().hex[:8] / name
        folder.mkdir(parents=True)
        names.add(name)
        return Workspace(folder, name)

    yield make
    for name in names:
        remove_project(name)


def read_terminal(master: int, timeout: float = 30, respond: Callable[[bytes], bytes | None] | None = None) -> bytes:
    """Everything a process writes to its pseudo-terminal until it closes it (or is quiet for
    ``timeout`` s); ``respond(output so far)`` may return bytes to type in reply."""
    import select

    output = b""
    while select.select([master], [], [], timeout)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
        reply = respond(output) if respond else None
        if reply:
            os.write(master, reply)
    return output


def docker_cli_available() -> bool:
    return shutil.which("docker") is not None


@contextlib.contextmanager
def running(engine: PrivateEngine, testbed: dict[str, str]) -> Iterator[PrivateEngine]:
    """Start a private engine with the tiny image pulled; destroy it afterwards."""
    try:
        engine.start()
        engine.pull(testbed["NGCWS_TB_TINY"])
        yield engine
    finally:
        engine.destroy()


@pytest.fixture
def private_engine(testbed: dict[str, str]) -> Iterator[PrivateEngine]:
    """A dockerd of this test's own (tests/private_engine.py), with the tiny image pulled.

    For tests that stop, kill or restart the engine: the shared one must never be disturbed.
    """
    with running(PrivateEngine(), testbed) as engine:
        yield engine


@pytest.fixture(scope="session")
def shared_tmp() -> Iterator[Path]:
    """A folder any user can reach (pytest's own temporary folders are private to root)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="ngcws-as-user-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def system_python_install(shared_tmp: Path) -> Path:
    """ngcws installed for /usr/bin/python3, readable by any user (this interpreter may live in /root)."""
    if not Path("/usr/bin/python3").exists() or not Path("/usr/bin/setpriv").exists():
        pytest.skip("needs /usr/bin/python3 and setpriv to run ngcws as another user")
    site = shared_tmp / "site"
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target", str(site), str(repo)],
        check=True,
        capture_output=True,
    )
    for folder, _, files in os.walk(site):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    return site


@pytest.fixture(scope="module")
def make_project_module(
    testbed: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Workspace]]:
    """Projects that live as long as a test module (a shared baseline), removed by label after."""
    names: list[str] = []

    def make() -> Workspace:
        name = f"t{uuid.uuid4().hex[:10]}"
        folder = tmp_path_factory.mktemp("module") / name
        folder.mkdir()
        names.append(name)
        return Workspace(folder, name)

    yield make
    for name in names:
        remove_project(name)


def memlock_is_allowed(testbed: dict[str, str]) -> bool:
    """Whether the engine lets a container lock unlimited memory: asked of the engine (dockerd's own
    limits and capabilities decide), never read from the test runner's rlimits."""
    from ngcws.engine import Engine
    from ngcws.errors import ContainerStartError

    engine = Engine()
    request = {
        "Image": testbed["NGCWS_TB_TINY"],
        "Cmd": ["true"],
        "Labels": {"ngcws.project": f"memlock-probe-{uuid.uuid4().hex[:8]}"},
        "HostConfig": {"Ulimits": [{"Name": "memlock", "Soft": -1, "Hard": -1}]},
    }
    container = engine.create_container("", request)
    try:
        engine.start(container)
        return True
    except ContainerStartError as exc:
        assert "rlimit" in exc.message, exc
        return False
    finally:
        engine.remove(container, force=True)
