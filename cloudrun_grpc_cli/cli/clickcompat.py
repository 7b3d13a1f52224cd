"""The one place that touches typer's private copy of Click (`typer._click`).

typer 0.28 vendors Click as `typer._click`; its NoArgsIsHelpError is not
re-exported. tests/test_layers.py fails with a clear message if this moves.
"""

from __future__ import annotations

from typing import Any


def is_no_args_help(exc: BaseException) -> bool:
    """True for Click's "no arguments: show the help" signal."""
    return isinstance(exc, no_args_is_help_error())


def no_args_is_help_error() -> type[Any]:
    try:
        from typer._click.exceptions import NoArgsIsHelpError
    except ImportError:  # a typer that uses the real Click
        from click.exceptions import NoArgsIsHelpError  # type: ignore[no-redef,import-not-found]
    return NoArgsIsHelpError  # type: ignore[no-any-return]
