"""Run the benchmark cases, print one table, write it into docs/benchmarks.md. Started by ``benchmarks/run``.

python benchmarks/suite.py [--quick] [--only exec,pull] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from cases import CASES, Result, engine_facts, rss_of_create, spread
from enginecalls import EngineCallCounter, summary
from harness import CaseFailed, devcontainer_command, ngcws_command
from projects import Skipped

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BEGIN = "<!-- benchmarks/run writes from here -->"
END = "<!-- benchmarks/run writes up to here -->"


def version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    return (done.stdout.strip() or done.stderr.strip()).splitlines()[0] if done.returncode == 0 else "not installed"


def tree() -> str:
    """This tree and its commit, as the report names what was measured."""
    root = DOCS.parent.parent
    done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True)
    return f"{root} at {done.stdout.strip() or 'an unknown commit'}"


def machine() -> list[str]:
    devcontainer = devcontainer_command()
    return [
        f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
        f"load average at the start {os.getloadavg()[0]:.1f}",
        f"{engine_facts()['engine']}, registry {engine_facts()['registry']} (the test bed's)",
        f"{version([*ngcws_command(), '--version'])}, installed from {tree()} (not editable), "
        f"Python {platform.python_version()}",
        f"peers: {version(['docker', '--version'])}; {version(['docker-compose', '--version'])}; "
        f"Dev Containers CLI {version([*devcontainer, '--version']) if devcontainer else 'not installed'}",
    ]


def verdict(result: Result) -> str:
    if result.met is None:
        return "no reference"
    if result.met and result.stretch is not None and result.value is not None and result.value <= result.stretch:
        return "**met (stretch too)**"
    return "**met**" if result.met else "**missed**"


def figure(result: Result) -> str:
    if result.value is None:
        return "–"
    return f"{result.value:.0f} MB" if result.unit == "MB" else f"{result.value:.2f}×"


def goal(result: Result) -> str:
    text = f"≤ {result.target:g} MB" if result.unit == "MB" else f"≤ {result.target:g}×"
    return text + (f" (stretch {result.stretch:g}×)" if result.stretch else "")


def tables(results: list[Result]) -> list[str]:
    lines = [
        "| case | ngcws | reference (median) | result | target | |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        subject = r.measured[r.subject]
        ours = f"{subject.peak_rss_mb:.0f} MB" if r.unit == "MB" else f"{subject.median:.3f} s"
        ref = f"{r.reference}: {r.measured[r.reference].median:.3f} s" if r.reference else "–"
        lines.append(f"| {r.title} | {ours} | {ref} | {figure(r)} | {goal(r)} | {verdict(r)} |")
    lines += [
        "",
        "| case | command | rounds | median s | min–max s | peak RSS MB | engine API calls (connections) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.unit == "MB":
            continue
        for m in r.measured.values():
            calls = f"{summary(m.calls)} ({m.connections})" if m.calls else "–"
            figures = f"{len(m.walls)} | {m.median:.3f} | {spread(m)} | {m.peak_rss_mb:.0f}"
            lines.append(f"| {r.key} | `{m.label}` | {figures} | {calls} |")
    notes = [f"- {r.key}: {n}" for r in results for n in r.notes]
    return lines + (["", *notes] if notes else [])


def write_docs(block: list[str]) -> None:
    text = DOCS.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{DOCS} lacks the markers {BEGIN!r} … {END!r}")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(head + BEGIN + "\n" + "\n".join(block) + "\n" + END + tail)


#: Names --only also takes: the figure → the case that measures it.
ALIASES = {"rss": "up-create-20"}


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run",
        description="ngcws side by side with docker, docker-compose and the Dev Containers CLI: one table, "
        "written into docs/benchmarks.md (see that file).",
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run (prints; writes with --write)")
    parser.add_argument("--only", default="", help=f"comma-separated cases: {', '.join([*CASES, *ALIASES])}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md as it is")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md after a --quick run too")
    parser.add_argument("--no-calls", action="store_true", help="skip the untimed run through the call counter")
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)  # benchmarks/run: arguments only
    args = parser.parse_args(argv)
    args.keys = [ALIASES.get(k, k) for k in re.split(r"[,\s]+", args.only) if k] or list(CASES)
    if unknown := [k for k in args.keys if k not in CASES]:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases: {', '.join([*CASES, *ALIASES])}")
    return args


def main() -> None:
    args = arguments()
    if args.check:
        return
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
    header = machine()
    results: list[Result] = []
    failed: list[str] = []
    try:
        with EngineCallCounter() as counter:
            for key in dict.fromkeys(args.keys):
                case, full, quick = CASES[key]
                rounds = quick if args.quick else full
                print(f"== {key}: {rounds} rounds", flush=True)
                first = len(results)
                try:
                    results.append(case(rounds, None if args.no_calls else counter))
                except (Skipped, CaseFailed) as exc:
                    failed.append(f"- {key}: {'not run' if isinstance(exc, Skipped) else 'failed'}: {exc}")
                    print(failed[-1], flush=True)
                    continue
                if key == "up-create-20":
                    results.append(rss_of_create(results[-1]))
                print("\n".join(tables(results[first:])[: 2 + len(results) - first]), flush=True)
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: what the cases made was removed; nothing was written")
    minutes = (time.monotonic() - clock) / 60
    flags = " --quick" if args.quick else ""
    block = [
        f"Run of {started:%Y-%m-%d %H:%M} UTC ({minutes:.0f} min), `benchmarks/run{flags}`:",
        "",
        *[f"- {line}" for line in header],
        "",
        *tables(results),
        *(["", *failed] if failed else []),
    ]
    print("\n" + "\n".join(block))
    complete = set(args.keys) == set(CASES) and not failed
    if args.no_write or (args.quick and not args.write):
        print(f"\n({DOCS.name} left as it is{': a --quick run writes with --write' if args.quick else ''})")
    elif complete:
        write_docs(block)
        print(f"\nwritten to {DOCS}")
    else:
        print(f"\n(not every case ran: {DOCS} left as it is)")
    missed = [r.key for r in results if r.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
