"""`ngcws up` with nothing to do, side by side with `docker start` (of a running container: a
no-op), `docker-compose up -d` and `devcontainer up` with nothing to do.

Goal (issue "The reconcile controller"): at most half of what docker-compose / devcontainer cost.
Usage: python benchmarks/up_noop.py [ROUNDS]   (needs scripts/testbed; peers optional)
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from harness import compare, devcontainer_command, ngcws_command, testbed
from setups import compose_file, devcontainer_json, ngcws_file


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    image = testbed()["NGCWS_TB_NGC"]
    root = Path(tempfile.mkdtemp(prefix="ngcws-bench-"))
    ngcws = ngcws_command()
    commands: dict[str, tuple[Sequence[str], Path]] = {}
    cleanups = []
    try:
        (root / "n").mkdir()
        ngcws_file(root / "n", image)
        subprocess.run([*ngcws, "up"], cwd=root / "n", check=True, capture_output=True)
        cleanups.append(([*ngcws, "down"], root / "n"))
        commands["docker start C (running)"] = (["docker", "start", "benchn-train"], root)
        commands["ngcws up"] = ([*ngcws, "up"], root / "n")
        peers = []
        if shutil.which("docker-compose"):
            (root / "c").mkdir()
            compose_file(root / "c", image)
            subprocess.run(["docker-compose", "up", "-d"], cwd=root / "c", check=True, capture_output=True)
            cleanups.append((["docker-compose", "down", "-t", "1"], root / "c"))
            commands["docker-compose up -d"] = (["docker-compose", "up", "-d"], root / "c")
            peers.append("docker-compose up -d")
        devcontainer = devcontainer_command()
        if devcontainer:
            (root / "d").mkdir()
            devcontainer_json(root / "d", image)
            subprocess.run(
                [*devcontainer, "up", "--workspace-folder", str(root / "d")], check=True, capture_output=True
            )
            commands["devcontainer up"] = ([*devcontainer, "up", "--workspace-folder", str(root / "d")], root)
            peers.append("devcontainer up")
        compare(commands, rounds, baseline=peers[0] if peers else "docker start C (running)", subject="ngcws up")
    finally:
        for argv, cwd in cleanups:
            subprocess.run(argv, cwd=cwd, capture_output=True)
        subprocess.run(
            [
                "sh",
                "-c",
                "docker rm -f $(docker ps -aq --filter label=devcontainer.local_folder="
                + str(root / "d")
                + ") 2>/dev/null",
            ],
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
