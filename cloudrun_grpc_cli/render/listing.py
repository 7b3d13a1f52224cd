"""Pretty output of `list` and `describe`."""

from __future__ import annotations

from typing import Any

from rich.syntax import Syntax
from rich.text import Text

from .columns import print_aligned
from .env import Environment
from .pretty import make_console
from .safetext import visible, visible_lines


def print_listing(env: Environment, rows: list[dict[str, Any]]) -> None:
    console = make_console(env.stdout, color=env.use_color(env.stdout_isatty))
    if rows and "method" in rows[0]:
        print_aligned(
            console,
            [[visible(r["method"]), r["kind"], visible(f"{r['request']} → {r['response']}")] for r in rows],
            styles=("bold", "magenta", "cyan"),
            header=("method", "kind", "request → response"),
        )
    else:
        for r in rows:
            console.print(Text(visible(r["service"]), style="bold"), soft_wrap=True)


def print_descriptions(env: Environment, rows: list[dict[str, Any]]) -> None:
    color = env.use_color(env.stdout_isatty)
    console = make_console(env.stdout, color=color)
    for i, r in enumerate(rows):
        if i:
            console.print()
        console.print(Text(f"{visible(r['symbol'])} is a {r['kind']}:", style="dim"), soft_wrap=True)
        proto = visible_lines(r["proto"].rstrip("\n"))
        if color:
            console.print(Syntax(proto, "protobuf", background_color="default"), soft_wrap=True)
        else:
            console.print(Text(proto), soft_wrap=True)
