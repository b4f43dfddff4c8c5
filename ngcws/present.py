"""Present: how plans, progress and status look on a terminal and in a pipe."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, TextIO

from ngcws.plan import Action, Kind, Plan

_STYLE = {
    Kind.PULL: "cyan", Kind.CREATE: "green", Kind.START: "green", Kind.UNPAUSE: "green", Kind.RECREATE: "yellow",
    Kind.REMOVE: "red", Kind.NOOP: "dim",
}  # fmt: skip


class Console:
    """Writes human output to stderr (colour on a terminal), data to stdout."""

    def __init__(self, err: TextIO | None = None, out: TextIO | None = None) -> None:
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self.color = self.err.isatty() and "NO_COLOR" not in os.environ  # https://no-color.org
        self._layers: dict[tuple[str, str], str] = {}
        self._rich: Any = None

    def _paint(self, text: str, style: str) -> str:
        if not self.color:
            return text
        codes = {"red": "31", "green": "32", "yellow": "33", "cyan": "36", "dim": "2", "bold": "1"}
        return f"\x1b[{codes[style]}m{text}\x1b[0m"

    # Reporter protocol -------------------------------------------------------------------------

    def action(self, action: Action) -> None:
        self._stop_progress()
        label = self._paint(f"{action.kind.value:<10}", _STYLE[action.kind])
        print(f"{label} {action.workspace}: {action.reason}", file=self.err, flush=True)

    def note(self, text: str) -> None:
        self._stop_progress()
        print(text, file=self.err, flush=True)

    def warning(self, text: str) -> None:
        self._stop_progress()
        print(self._paint("warning:", "yellow") + " " + text, file=self.err, flush=True)

    def confirm(self, holds: Sequence[Any], question: str) -> bool:
        """Ask on a terminal; without one the answer is no (the caller refuses)."""
        if not (sys.stdin.isatty() and self.err.isatty()):
            return False
        self._stop_progress()
        for hold in holds:
            print(self._paint("held back:", "yellow") + f" {hold.workspace}: {hold.reason}", file=self.err)
            print(f"  {hold.remedy}", file=self.err)
        print(f"{question} [y/N] ", end="", file=self.err, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    def progress(self, workspace: str, message: dict[str, Any]) -> None:
        """Pull progress: per-layer bars on a terminal, one line per layer status change otherwise."""
        layer, status = str(message.get("id", "")), str(message.get("status", ""))
        if not layer or status.startswith(("Pulling from", "Digest", "Status")):
            if status:
                self._stop_progress()
                print(
                    f"  {workspace}: {status}{(' ' + layer) if layer and ':' not in status else ''}",
                    file=self.err,
                    flush=True,
                )
            return
        detail = message.get("progressDetail") or {}
        if self.color:
            self._bar(layer, status, detail)
        elif self._layers.get((workspace, layer)) != status:
            self._layers[(workspace, layer)] = status
            total = detail.get("total")
            size = f" ({_mb(total)})" if total else ""
            print(f"  {workspace}: layer {layer} {status}{size}", file=self.err, flush=True)

    def _bar(self, layer: str, status: str, detail: dict[str, Any]) -> None:
        if self._rich is None:
            from rich.console import Console as RichConsole
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

            progress = Progress(
                TextColumn("  {task.fields[layer]}"),
                TextColumn("{task.description:<18}"),
                BarColumn(),
                DownloadColumn(),
                console=RichConsole(file=self.err),
                transient=False,
            )
            progress.start()
            self._rich = (progress, {})
        progress, tasks = self._rich
        if layer not in tasks:
            tasks[layer] = progress.add_task(status, layer=layer, total=None)
        task = tasks[layer]
        if status in ("Pull complete", "Already exists", "Download complete"):
            size = progress.tasks[task].total or 1  # keep the layer's size, show it full
            progress.update(task, description=status, total=size, completed=size)
        else:
            progress.update(task, description=status, total=detail.get("total"), completed=detail.get("current") or 0)

    def _stop_progress(self) -> None:
        if self._rich is not None:
            self._rich[0].stop()
            self._rich = None

    # Data ----------------------------------------------------------------------------------------

    def plan(self, plan: Plan, fmt: str) -> None:
        if fmt == "json":
            data = {
                "changes": len(plan.changes),
                "actions": [
                    {"action": a.kind.value, "workspace": a.workspace, "reason": a.reason} for a in plan.actions
                ],
                "warnings": list(plan.warnings),
                "errors": list(plan.errors),
            }
            print(json.dumps(data, indent=2), file=self.out)
            return
        rich = self._rich_out()
        for action in plan.actions:
            if rich:
                rich.print(
                    _text((f"{action.kind.value:<10}", _STYLE[action.kind]), f" {action.workspace}: {action.reason}")
                )
            else:
                print(f"{action.kind.value:<10} {action.workspace}: {action.reason}", file=self.out)
        for warning in plan.warnings:
            if rich:
                rich.print(_text(("warning:", "yellow"), f" {warning}"))
            else:
                print(f"warning: {warning}", file=self.out)
        for error in plan.errors:
            if rich:
                rich.print(_text(("error:", "red"), f" {error}"))
            else:
                print(f"error: {error}", file=self.out)
        if plan.errors:
            print("`ngcws up` would refuse this (preflight); nothing would be changed", file=self.out)
        elif not plan.changes:
            print("nothing to do", file=self.out)

    def _rich_out(self) -> Any:
        """A rich console for stdout on a terminal (colour unless NO_COLOR); None in a pipe or file,
        where output stays plain text for scripts."""
        if not self.out.isatty():
            return None
        from rich.console import Console as RichConsole

        return RichConsole(file=self.out, highlight=False, soft_wrap=True)

    def table(self, rows: Sequence[Any], fmt: str) -> None:
        if fmt == "json":
            print(json.dumps([asdict(r) for r in rows], indent=2), file=self.out)
            return
        headers = ["WORKSPACE", "CONTAINER", "ID", "STATE", "IMAGE", "GPUS", "STATUS", "DRIFT", "HEALTH"]
        rich = self._rich_out()
        if rich:
            self._rich_table(rich, headers, rows)
            return
        cells = []
        for row in rows:
            values = asdict(row)
            values["gpus"] = _gpus_cell(values["gpus"])
            values.pop("gpu_use", None)
            values.pop("error", None)  # the full message: JSON only; STATUS says it short
            values.pop("stopped_by_user", None)  # JSON only; STATUS says it
            cells.append([str(v) if v != "" else "-" for v in values.values()])
        widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
        for line in [headers, *cells]:
            print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip(), file=self.out)
        for row in rows:
            for gpu in getattr(row, "gpu_use", ()):
                print(f"{row.workspace}: {_gpu_line(gpu)}", file=self.out)

    def _rich_table(self, rich: Any, headers: list[str], rows: Sequence[Any]) -> None:
        from rich.table import Table

        states = {"running": "green", "missing": "dim", "exited": "red", "dead": "red", "created": "yellow"}
        table = Table(box=None, pad_edge=False, header_style="bold")
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in rows:
            values = asdict(row)
            values["gpus"] = _gpus_cell(values["gpus"])
            values.pop("gpu_use", None)
            values.pop("error", None)  # JSON only, as in the plain table
            values.pop("stopped_by_user", None)
            cells = [str(v) if v != "" else "-" for v in values.values()]
            state, drift = values.get("state", ""), values.get("drift", "")
            cells[3] = _text((cells[3], states.get(str(state), "")))
            cells[7] = _text((cells[7], "" if drift == "up to date" else "yellow"))
            table.add_row(*cells)
        rich.print(table)
        for row in rows:
            for gpu in getattr(row, "gpu_use", ()):
                rich.print(_text(f"{row.workspace}: {_gpu_line(gpu)}"))

    def doctor(self, checks: Sequence[Any], host: Any, fmt: str) -> None:
        """Doctor's verdicts: one line each, the fix under anything not passing; or JSON with the host facts."""
        if fmt == "json":
            data = {
                "ok": not any(c.verdict == "fail" for c in checks),
                "checks": [c.to_json() for c in checks],
                "host": host.to_json(),
            }
            print(json.dumps(data, indent=2), file=self.out)
            return
        marks = {"pass": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red"), "skip": ("skip", "dim")}
        rich = self._rich_out()
        for check in checks:
            mark, style = marks[check.verdict]
            where = f"{check.workspace}: " if check.workspace else ""
            line = f"  {check.name:<18} {where}{check.summary}"
            if rich:
                rich.print(_text((f"{mark:<4}", style), line))
            else:
                print(f"{mark:<4}{line}", file=self.out)
            if check.detail and check.name in ("gpus", "gpu-support"):
                for line in check.detail.splitlines():
                    print(f"      {'':<18} {line}", file=self.out)
            if check.fix and check.verdict in ("warn", "fail"):
                print(f"      {'':<18} fix: {check.fix}", file=self.out)
        fails = sum(c.verdict == "fail" for c in checks)
        warns = sum(c.verdict == "warn" for c in checks)
        print(f"{fails} failed, {warns} warnings", file=self.out)

    def error(self, message: str, hint: str | None) -> None:
        self._stop_progress()
        print(self._paint("error:", "red") + " " + message, file=self.err)
        if hint:
            print(self._paint("hint:", "bold") + " " + hint, file=self.err)


def _text(*parts: tuple[str, str] | str) -> Any:
    """A rich Text from plain strings and (string, style) pairs: no markup is read in the strings."""
    from rich.text import Text

    text = Text()
    for part in parts:
        if isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(part)
    return text


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _gpus_cell(gpus: Any) -> str:
    """``2`` → ``2 (0,1)``: a count always means the first GPUs."""
    if isinstance(gpus, int):
        return f"{gpus} ({','.join(str(i) for i in range(gpus))})"
    if isinstance(gpus, list):
        return ",".join(str(g) for g in gpus)
    return str(gpus)


def gpu_use(host: Any, held: Any, container_id: str) -> tuple[dict[str, Any], ...]:
    """The GPUs a container holds (``held``: "all" or ids), with use and processes, as the host reports."""
    out = []
    for gpu in host.gpus:
        if held != "all" and str(gpu.index) not in held and gpu.uuid not in held:
            continue
        processes = [
            {
                "pid": p.pid,
                "name": p.name,
                "used_memory_mib": p.used_memory_mib,
                "this_container": bool(container_id) and (p.container_id or "").startswith(container_id),
            }
            for p in host.processes
            if p.gpu_uuid.lower() == gpu.uuid.lower()
        ]
        out.append(
            {
                "index": gpu.index,
                "name": gpu.name,
                "uuid": gpu.uuid,
                "memory_used_mib": gpu.memory_used_mib,
                "memory_total_mib": gpu.memory_total_mib,
                "utilization_pct": gpu.utilization_pct,
                "processes": processes,
            }
        )
    return tuple(out)


def _gpu_line(gpu: dict[str, Any]) -> str:
    used, total, util = gpu["memory_used_mib"], gpu["memory_total_mib"], gpu["utilization_pct"]
    memory = f"{used / 1024:.1f}/{total / 1024:.1f} GiB" if used is not None and total else "memory ?"
    load = f"{util}%" if util is not None else "?%"
    procs = ", ".join(
        f"{p['pid']} {p['name']}{' (here)' if p['this_container'] else ''}"
        + (f" {p['used_memory_mib']} MiB" if p["used_memory_mib"] is not None else "")
        for p in gpu["processes"]
    )
    return f"GPU {gpu['index']} {gpu['name']}  {memory}  {load}  {procs or 'no processes'}"
