"""Pretty output of `crgrpc doctor`: one aligned line per check, its hint on the line under
its detail (render/columns.py: lines of their own width, never folded or cropped)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text

from .columns import aligned
from .env import Environment
from .pretty import make_console
from .safetext import visible

MARKS = {
    "ok": ("✓ ok", "green"),
    "warn": ("! warn", "yellow"),
    "fail": ("✗ fail", "bold red"),
    "skip": ("- skip", "dim"),
}
GAP = 2


def summary(checks: Sequence[Any]) -> str:
    """`1 failed, 2 warnings, 7 ok, 1 skipped` (the kinds present, in that order)."""
    counts = {k: sum(1 for c in checks if c.result == k) for k in MARKS}
    words = (
        (counts["fail"], "failed", "failed"),
        (counts["warn"], "warning", "warnings"),
        (counts["ok"], "ok", "ok"),
        (counts["skip"], "skipped", "skipped"),
    )
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in words if n)


def print_doctor(env: Environment, target: str, checks: Sequence[Any]) -> None:
    console = make_console(env.stdout, color=env.use_color(env.stdout_isatty))
    console.print(Text.assemble(("doctor ", "bold"), (visible(target), "bold")), soft_wrap=True)
    header = [Text(h, style="bold dim") for h in ("check", "result", "detail")]
    rows: list[list[str | Text]] = [list(header)]
    for c in checks:
        mark, style = MARKS.get(c.result, (c.result, ""))
        rows.append([Text(c.check, style="bold"), Text(mark, style=style), visible(c.detail)])
    # the hint starts under the detail: past the widest check and result, and their gaps
    indent = sum(max(_width(r[i]) for r in rows) + GAP for i in (0, 1))
    lines = aligned(rows, gap=GAP)
    console.print(lines[0], soft_wrap=True)
    for c, line in zip(checks, lines[1:], strict=True):
        console.print(line, soft_wrap=True)
        if c.hint:
            console.print(Text(" " * indent + "hint: " + visible(c.hint), style="dim"), soft_wrap=True)
    console.print(Text(summary(checks), style="dim"), soft_wrap=True)


def _width(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else Text(cell).cell_len
