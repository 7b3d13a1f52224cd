"""Token claims as a Rich table, with times humanised."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

TIME_CLAIMS = ("iat", "exp", "nbf", "auth_time")


def humanize(seconds: float) -> str:
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(h, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def describe_time(name: str, value: Any, now: float | None = None) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    delta = value - now
    if name == "exp":
        rel = f"expires in {humanize(delta)}" if delta > 0 else f"EXPIRED {humanize(delta)} ago"
    else:
        rel = f"{humanize(delta)} ago" if delta <= 0 else f"in {humanize(delta)}"
    return f"{stamp} ({rel})"


def claims_table(claims: dict[str, Any], *, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1))
    table.add_column(style="cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in claims.items():
        text = describe_time(key, value) if key in TIME_CLAIMS else str(value)
        table.add_row(key, text)
    return table
