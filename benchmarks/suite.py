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
from harness import devcontainer_command, ngcws_command
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


def machine() -> list[str]:
    devcontainer = devcontainer_command()
    return [
        f"{os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, "
        f"load average at the start {os.getloadavg()[0]:.1f}",
        f"{engine_facts()['engine']}, registry {engine_facts()['registry']} (the test bed's)",
        f"ngcws {version([*ngcws_command(), '--version'])} installed from this tree (not editable), "
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="benchmarks/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run; ratios are rougher)")
    parser.add_argument("--only", default="", help=f"comma-separated cases: {', '.join(CASES)}")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md as it is")
    parser.add_argument("--no-calls", action="store_true", help="skip the untimed run through the call counter")
    args = parser.parse_args()
    keys = [k for k in re.split(r"[,\s]+", args.only) if k] or list(CASES)
    if unknown := [k for k in keys if k not in CASES]:
        parser.error(f"unknown case(s) {', '.join(unknown)}; the cases: {', '.join(CASES)}")
    started, clock = datetime.datetime.now(datetime.timezone.utc), time.monotonic()
    header = machine()
    results: list[Result] = []
    skipped: list[str] = []
    with EngineCallCounter() as counter:
        for key in keys:
            case, full, quick = CASES[key]
            rounds = quick if args.quick else full
            print(f"== {key}: {rounds} rounds", flush=True)
            first = len(results)
            try:
                results.append(case(rounds, None if args.no_calls else counter))
            except Skipped as exc:
                skipped.append(f"- {key}: not run: {exc}")
                print(skipped[-1], flush=True)
                continue
            if key == "up-create-20":
                results.append(rss_of_create(results[-1]))
            print("\n".join(tables(results[first:])[: 2 + len(results) - first]), flush=True)
    minutes = (time.monotonic() - clock) / 60
    block = [
        f"Run of {started:%Y-%m-%d %H:%M} UTC ({'--quick, ' if args.quick else ''}{minutes:.0f} min), "
        f"`benchmarks/run{' --quick' if args.quick else ''}`:",
        "",
        *[f"- {line}" for line in header],
        "",
        *tables(results),
        *(["", *skipped] if skipped else []),
    ]
    print("\n" + "\n".join(block))
    if not args.no_write and set(keys) == set(CASES) and not skipped:
        write_docs(block)
        print(f"\nwritten to {DOCS}")
    elif not args.no_write:
        print(f"\n(not every case ran: {DOCS} left as it is)")
    missed = [r.key for r in results if r.met is False]
    if missed:
        print(f"targets missed: {', '.join(missed)}")


if __name__ == "__main__":
    main()
