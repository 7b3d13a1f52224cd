"""The one place that touches typer's private copy of Click (`typer._click`)
and its completion internals (`typer._completion_shared`, `typer._completion_classes`).

typer 0.28 vendors Click as `typer._click`; its NoArgsIsHelpError is not
re-exported. Its completion scripts are replaced by ours. tests/test_layers.py
and tests/test_completion.py fail with a clear message if these move.
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
        from click.exceptions import NoArgsIsHelpError  # type: ignore[no-redef,import-not-found,assignment,unused-ignore]
    return NoArgsIsHelpError  # type: ignore[no-any-return]


def use_completion_scripts() -> None:
    """Serve our completion scripts (cli/completion_scripts.py) where typer serves its own:
    --show-completion and --install-completion read typer._completion_shared's templates,
    `_CRGRPC_COMPLETE=source_<shell>` reads its completion classes' source_template."""
    from typer import _completion_classes, _completion_shared

    from .completion_scripts import SCRIPTS

    templates = getattr(_completion_shared, "_completion_scripts", None)
    if not isinstance(templates, dict):
        raise RuntimeError("typer moved its completion templates: update cli/clickcompat.py")
    classes = {
        "bash": _completion_classes.BashComplete,
        "zsh": _completion_classes.ZshComplete,
        "fish": _completion_classes.FishComplete,
    }
    for shell, template in SCRIPTS.items():
        templates[shell] = template
        classes[shell].source_template = template


def completion_script(shell: str) -> str:
    """The script typer serves for shell once ours are in place (tools/gen_completions.py)."""
    from typer import _completion_shared

    use_completion_scripts()
    return str(
        _completion_shared.get_completion_script(
            prog_name="crgrpc", complete_var="_CRGRPC_COMPLETE", shell=shell
        )
    )
