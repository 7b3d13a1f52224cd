"""Pretty output of `token show` and `token decode`."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text

from ..core.auth.jwt import expiry_phrase
from .claims import describe_time, print_claims
from .columns import print_aligned
from .env import Environment
from .pretty import make_console
from .safetext import visible


def _expiry(left: float) -> Text:
    """`expires in 54m` in green, or `EXPIRED 3m ago` in red."""
    return Text(expiry_phrase(left, shout=True), style="green" if left > 0 else "bold red")


def print_token_summary(env: Environment, s: dict[str, Any]) -> None:
    console = make_console(env.stdout, color=env.use_color(env.stdout_isatty))
    aud = s["audience"]
    aud_text = str(aud)
    if not s["audience_bound"]:
        aud_text += "  (a gcloud user's token: its audience is the OAuth client, not chosen)"
    left = s["expires_in"]
    rows: list[tuple[str, str | Text]] = [
        ("source", visible(str(s["source"]))),
        ("email", visible(str(s["email"] or "(no email claim)"))),
        ("audience", visible(aud_text)),
        ("issuer", visible(str(s["issuer"]))),
        ("issued", describe_time("iat", s["issued_at"]) if s["issued_at"] else "unknown"),
        ("expiry", Text("no expiry", style="yellow") if left is None else _expiry(left)),
    ]
    print_aligned(console, rows, styles=("cyan", ""), indent=1)


def print_decoded(env: Environment, doc: dict[str, Any]) -> None:
    console = make_console(env.stdout, color=env.use_color(env.stdout_isatty))
    print_claims(console, doc["header"], title="header")
    console.print()
    print_claims(console, doc["claims"], title="claims")
    exp = doc["claims"].get("exp")
    if isinstance(exp, (int, float)):
        console.print()
        console.print(_expiry(exp - time.time()))
    ver = doc.get("verification")
    if not ver:
        console.print(Text("signature not checked: --verify checks it", style="dim"))
    else:
        console.print()
        for check in ver["checks"]:
            if check["ok"] is None:  # skipped: neither passed nor failed
                mark = Text("– ", style="dim")
            else:
                mark = Text("✓ ", style="green") if check["ok"] else Text("✗ ", style="red")
            console.print(Text.assemble(mark, (check["check"], "bold"), ("  " + check["detail"], "")))
