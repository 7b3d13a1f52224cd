"""`crgrpc token print|show|decode`: mint, show and decode ID tokens."""

from __future__ import annotations

import typer

token_app = typer.Typer(help="Mint, show and decode Google ID tokens.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
