"""Pretty output of `crgrpc doctor`: one row per check, its hint under its detail."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from .env import Environment
from .pretty import make_console
from .safetext import visible

MARKS = {
    "ok": ("✓ ok", "green"),
    "warn": ("! warn", "yellow"),
    "fail": ("✗ fail", "bold red"),
    "skip": ("- skip", "dim"),
}


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
    table = Table(box=None, show_header=True, header_style="bold dim", padding=(0, 2, 0, 0))
    table.add_column("check", style="bold", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for c in checks:
        mark, style = MARKS.get(c.result, (c.result, ""))
        detail = Text(visible(c.detail))
        if c.hint:
            detail.append("\nhint: " + visible(c.hint), style="dim")
        table.add_row(c.check, Text(mark, style=style), detail)
    console.print(table)
    console.print(Text(summary(checks), style="dim"))
