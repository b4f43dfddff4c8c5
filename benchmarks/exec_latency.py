"""`ngcws exec true` side by side with `docker exec`, `docker-compose exec` and `devcontainer exec`.

Goal (issue "Working inside a workspace"): at most 2x `docker exec CONTAINER true`.
Usage: python benchmarks/exec_latency.py [ROUNDS]   (needs scripts/testbed; peers optional)
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
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
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
        commands["docker exec C true"] = (["docker", "exec", "benchn-train", "true"], root)
        commands["ngcws exec true"] = ([*ngcws, "exec", "true"], root / "n")
        if shutil.which("docker-compose"):
            (root / "c").mkdir()
            compose_file(root / "c", image)
            subprocess.run(["docker-compose", "up", "-d"], cwd=root / "c", check=True, capture_output=True)
            cleanups.append((["docker-compose", "down", "-t", "1"], root / "c"))
            commands["docker-compose exec -T ws true"] = (["docker-compose", "exec", "-T", "train", "true"], root / "c")
        devcontainer = devcontainer_command()
        if devcontainer:
            (root / "d").mkdir()
            devcontainer_json(root / "d", image)
            subprocess.run(
                [*devcontainer, "up", "--workspace-folder", str(root / "d")], check=True, capture_output=True
            )
            commands["devcontainer exec true"] = (
                [*devcontainer, "exec", "--workspace-folder", str(root / "d"), "true"],
                root,
            )
        compare(commands, rounds, baseline="docker exec C true", subject="ngcws exec true")
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
