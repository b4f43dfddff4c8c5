"""`ngcws exec true` side by side with `docker exec`, `docker-compose exec` and `devcontainer exec`.

Goal (issue "Working inside a workspace"): at most 2x `docker exec CONTAINER true`.
Usage: python benchmarks/exec_latency.py [ROUNDS]   (needs scripts/testbed; peers optional)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from harness import compare
from peers import CONTAINER, converged


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with converged() as peers:
        commands: dict[str, tuple[Sequence[str], Path]] = {
            "docker exec C true": (["docker", "exec", CONTAINER, "true"], peers.root),
            "ngcws exec true": ([*peers.ngcws, "exec", "true"], peers.ngcws_dir),
        }
        if peers.compose_dir:
            commands["docker-compose exec -T ws true"] = (
                ["docker-compose", "exec", "-T", "train", "true"],
                peers.compose_dir,
            )
        if peers.devcontainer and peers.devcontainer_dir:
            folder = str(peers.devcontainer_dir)
            commands["devcontainer exec true"] = (
                [*peers.devcontainer, "exec", "--workspace-folder", folder, "true"],
                peers.root,
            )
        compare(commands, rounds, baseline="docker exec C true", subject="ngcws exec true")


if __name__ == "__main__":
    main()
