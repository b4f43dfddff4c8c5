"""Watch mode: how fast an edit reaches the engine, and what an idle watcher costs.

    python benchmarks/watch.py apply [ROUNDS]   # edit shm_size → new container running, vs docker rm -f + run
    python benchmarks/watch.py idle [SECONDS]   # an idle watcher's memory (peak, first vs last) and CPU

Goals (issue "Watch mode"): the edit within 1.5x raw `docker rm -f` + `docker run` of the same
request, measured in the same run; an idle watcher at most 60 MB and not growing.

``apply``: a watcher follows a one-workspace project. Each round writes ngcws.yaml with a new
shm_size and waits for the engine's ``start`` event of the new container (the clock stops there);
then it runs ``docker rm -f C && docker run -d`` of the same request (image, shm size, init, the
keep-alive command) for a container of its own. Rounds alternate which goes first.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import ngcws_command, testbed

from ngcws.engine import Engine
from ngcws.spec import KEEPALIVE

PROJECT = "benchwatch"
RAW = "benchwatch-raw"


def write(folder: Path, image: str, shm_mb: int) -> None:
    text = f"name: {PROJECT}\nworkspaces:\n  train:\n    image: {image}\n    gpus: none\n    shm_size: {shm_mb}m\n"
    tmp = folder / ".ngcws.yaml.new"
    tmp.write_text(text)
    tmp.replace(folder / "ngcws.yaml")


def start_watcher(folder: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*ngcws_command(), "up", "--watch"], cwd=folder, stdout=out, stderr=subprocess.STDOUT)


def wait_running(engine: Engine) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = engine.list_containers({"ngcws.project": PROJECT})
        if len(found) == 1 and found[0]["State"] == "running":
            return str(found[0]["Id"])
        time.sleep(0.1)
    sys.exit("the watcher did not bring the workspace up")


def edit_until_started(folder: Path, image: str, shm_mb: int, engine: Engine) -> float:
    events = engine.events({"type": ["container"], "event": ["start"], "label": [f"ngcws.project={PROJECT}"]})
    start = time.perf_counter()
    write(folder, image, shm_mb)
    for _event in events:
        break
    elapsed = time.perf_counter() - start
    events.close()  # type: ignore[attr-defined]
    return elapsed


def raw_replace(image: str, shm_mb: int) -> float:
    start = time.perf_counter()
    subprocess.run(["docker", "rm", "-f", RAW], capture_output=True, check=True)
    subprocess.run(
        ["docker", "run", "-d", "--name", RAW, "--init", f"--shm-size={shm_mb}m", "--label", "ngcws.bench=watch",
         image, *KEEPALIVE],
        capture_output=True,
        check=True,
    )  # fmt: skip
    return time.perf_counter() - start


@contextmanager
def watched_project() -> Iterator[tuple[Path, str, Engine, subprocess.Popen[bytes]]]:
    """A one-workspace project with a watcher on it, its workspace running; all removed after."""
    image = testbed()["NGCWS_TB_TINY"]
    engine = Engine()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / PROJECT
        folder.mkdir()
        write(folder, image, 64)
        watcher = start_watcher(folder, Path(tmp) / "watch.log")
        try:
            wait_running(engine)
            yield folder, image, engine, watcher
        finally:
            watcher.send_signal(signal.SIGINT)
            watcher.wait(timeout=60)
            subprocess.run(["docker", "rm", "-f", RAW], capture_output=True, check=False)
            for c in engine.list_containers({"ngcws.project": PROJECT}):
                engine.remove(str(c["Id"]), force=True)


def apply(rounds: int) -> None:
    ours: list[float] = []
    raw: list[float] = []
    with watched_project() as (folder, image, engine, _watcher):
        raw_replace(image, 64)  # warm-up of both paths
        edit_until_started(folder, image, 65, engine)
        for i in range(rounds):
            shm = 66 + i
            if i % 2:
                raw.append(raw_replace(image, shm))
                ours.append(edit_until_started(folder, image, shm, engine))
            else:
                ours.append(edit_until_started(folder, image, shm, engine))
                raw.append(raw_replace(image, shm))
            time.sleep(1.5)  # let the watcher settle before the next edit
    ours_med, raw_med = statistics.median(ours), statistics.median(raw)
    print(f"{'what':<44} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{'edit shm_size → new container started':<44} {ours_med:9.3f} {min(ours):7.3f} {max(ours):7.3f}")
    print(f"{'docker rm -f C && docker run -d (same)':<44} {raw_med:9.3f} {min(raw):7.3f} {max(raw):7.3f}")
    print(f"\nwatcher / raw: {ours_med / raw_med:.2f} (median of {rounds} interleaved rounds; goal ≤ 1.5)")


def idle(seconds: int) -> None:
    samples = []
    tick = os.sysconf("SC_CLK_TCK")
    with watched_project() as (_folder, _image, _engine, watcher):
        time.sleep(2)
        begin = time.monotonic()
        while True:
            status = dict(line.split(":", 1) for line in Path(f"/proc/{watcher.pid}/status").read_text().splitlines())
            fields = Path(f"/proc/{watcher.pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick
            samples.append((time.monotonic() - begin, int(status["VmRSS"].split()[0]), cpu))
            if samples[-1][0] >= seconds:
                break
            time.sleep(min(30, seconds / 10))
        peak = int(status["VmHWM"].split()[0])
    first, last = samples[0], samples[-1]
    print(f"idle watcher over {last[0]:.0f} s: RSS {first[1] / 1024:.1f} MB → {last[1] / 1024:.1f} MB, "
          f"peak {peak / 1024:.1f} MB; CPU {last[2] - first[2]:.2f} s in all")  # fmt: skip
    for at, rss, cpu in samples:
        print(f"  t={at:6.0f} s  RSS {rss / 1024:6.1f} MB  CPU {cpu:6.2f} s")


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "apply"
    amount = int(sys.argv[2]) if len(sys.argv) > 2 else (10 if what == "apply" else 600)
    if what == "apply":
        apply(amount)
    elif what == "idle":
        idle(amount)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
