"""Pretty output of `list` and `describe`."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from .env import Environment
from .pretty import make_console


def print_listing(env: Environment, rows: list[dict[str, Any]]) -> None:
    console = make_console(env.stdout, color=env.use_color(env.stdout_isatty))
    if rows and "method" in rows[0]:
        table = Table(box=None, show_header=True, header_style="bold dim", padding=(0, 2, 0, 0))
        table.add_column("method", style="bold", no_wrap=True)
        table.add_column("kind", style="magenta", no_wrap=True)
        table.add_column("request → response", style="cyan", overflow="fold")
        for r in rows:
            table.add_row(r["method"], r["kind"], f"{r['request']} → {r['response']}")
        console.print(table)
    else:
        for r in rows:
            console.print(Text(r["service"], style="bold"))


def print_descriptions(env: Environment, rows: list[dict[str, Any]]) -> None:
    color = env.use_color(env.stdout_isatty)
    console = make_console(env.stdout, color=color)
    for i, r in enumerate(rows):
        if i:
            console.print()
        console.print(Text(f"{r['symbol']} is a {r['kind']}:", style="dim"))
        if color:
            console.print(Syntax(r["proto"].rstrip("\n"), "protobuf", background_color="default"))
        else:
            console.print(r["proto"].rstrip("\n"), highlight=False, markup=False)
