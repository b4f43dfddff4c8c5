"""`ngcws up` with nothing to do, side by side with `docker start` of a running container (a no-op),
`docker-compose up -d` and `devcontainer up` with nothing to do.

Goal (issue "The reconcile controller"): at most half of what docker-compose / devcontainer cost.
Usage: python benchmarks/up_noop.py [ROUNDS]   (needs scripts/testbed; peers optional)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from harness import compare
from peers import CONTAINER, converged


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with converged() as peers:
        commands: dict[str, tuple[Sequence[str], Path]] = {
            "docker start C (running)": (["docker", "start", CONTAINER], peers.root),
            "ngcws up": ([*peers.ngcws, "up"], peers.ngcws_dir),
        }
        baseline = "docker start C (running)"
        if peers.compose_dir:
            commands["docker-compose up -d"] = (["docker-compose", "up", "-d"], peers.compose_dir)
            baseline = "docker-compose up -d"
        if peers.devcontainer and peers.devcontainer_dir:
            folder = str(peers.devcontainer_dir)
            commands["devcontainer up"] = ([*peers.devcontainer, "up", "--workspace-folder", folder], peers.root)
        compare(commands, rounds, baseline=baseline, subject="ngcws up")


if __name__ == "__main__":
    main()
