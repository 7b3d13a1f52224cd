"""Token claims as aligned lines, with times humanised."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.text import Text

from ..core.auth.jwt import expiry_phrase
from ..core.auth.jwt import humanize_delta as humanize
from .columns import print_aligned
from .safetext import visible

TIME_CLAIMS = ("iat", "exp", "nbf", "auth_time")


def describe_time(name: str, value: Any, now: float | None = None) -> str:
    if not isinstance(value, (int, float)):
        return str(value)
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))
    delta = value - now
    if name == "exp":
        rel = expiry_phrase(delta, shout=True)
    else:
        rel = f"{humanize(delta)} ago" if delta <= 0 else f"in {humanize(delta)}"
    return f"{stamp} ({rel})"


def print_claims(console: Console, claims: dict[str, Any], *, title: str | None = None) -> None:
    """Claims as aligned lines (times humanised), under an italic title: each value whole, however
    narrow the terminal (it wraps them; nothing is folded, cropped or padded)."""
    rows = [
        (visible(key), visible(describe_time(key, value) if key in TIME_CLAIMS else str(value)))
        for key, value in claims.items()
    ]
    heading = Text(visible(title), style="italic") if title is not None else None
    print_aligned(console, rows, styles=("cyan", ""), title=heading, indent=1)


def print_token_panel(
    console: Console, claims: dict[str, Any], *, source: str | None, value: str | None
) -> None:
    """The -v token panel: where the token came from, its claims (times humanised), and the
    token itself: redacted, or with --show-token (`value`) in full on one unbroken line
    (soft-wrapped, so that it can be copied)."""
    print_claims(console, claims, title=f"token from {source or 'an unknown source'}")
    if value is None:
        console.print(
            Text.assemble((" token ", "cyan"), "<redacted>", ("  (--show-token shows it)", "dim")),
            soft_wrap=True,
        )
    else:
        console.print(Text.assemble((" token ", "cyan"), value), soft_wrap=True)
