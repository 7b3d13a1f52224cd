"""`crgrpc config show`: the effective settings and where each came from."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .options import CommonOptions, common_options

CONFIG_HELP = """Show the effective configuration: every option, its value and where it came from.

The config file is $XDG_CONFIG_HOME/crgrpc/config.toml (or --config FILE),
with [defaults] for every command and [targets.NAME] for named targets.

Examples:

\b
  crgrpc config show
  crgrpc config show prod -o json | jq .settings.key_file
"""

config_app = typer.Typer(help=CONFIG_HELP, no_args_is_help=True, rich_markup_mode=None)

SHOW_HELP = """Show the effective settings and where each came from.

Sources, strongest first: flag, target (the named target's table in the
config file), env (CRGRPC_*), config ([defaults] in the config file), default.

Examples:

\b
  crgrpc config show
  crgrpc config show prod -o json | jq .settings.key_file
"""


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("show", help=SHOW_HELP)
@common_options
def show_cmd(
    target: Annotated[Optional[str], typer.Argument(metavar="TARGET", help="Resolve this (named) target too.")] = None,
    *,
    opts: CommonOptions,
) -> None:
    from .config import apply_config, config_path, effective
    from .console import choose_mode, current_env, write_json_lines

    env = current_env()
    opts, resolved = apply_config(opts, target)
    env.color = opts.color
    mode = choose_mode(opts.output, env, ("pretty", "json"))
    path, _ = config_path(opts.config)
    doc: dict[str, Any] = {
        "config_file": str(path) if path.exists() else None,
        "target": resolved,
        "settings": {name: {"value": v, "source": src} for name, v, src in effective(opts)},
    }
    if target is not None:
        from ..core.target import parse_target

        t = parse_target(resolved or target, plaintext=opts.plaintext)
        doc["address"] = t.address  # a run:// target: its own text (resolved when used)
        doc["tls"] = t.tls
        from ..core.auth.policy import choose_audience

        doc["audience"] = choose_audience(opts.audience, t, opts.authority)
    if mode == "json":
        write_json_lines(env, [doc])
        return
    from rich.text import Text

    from ..render.columns import print_aligned
    from ..render.pretty import make_console

    console = make_console(env.stdout, color=env.use_color(env.stdout_isatty))
    console.print(Text(f"config file: {doc['config_file'] or '(none: ' + str(path) + ')'}"))
    if target is not None:
        audience = doc["audience"] or "the service's URL (from the Cloud Run Admin API)"
        console.print(Text(f"target: {doc['target']} → {doc['address']} ({'TLS' if doc['tls'] else 'plaintext'}), audience {audience}"))
    rows = [(name, toml_value(entry["value"]), entry["source"]) for name, entry in doc["settings"].items()]
    print_aligned(console, rows, styles=("cyan", "", "dim"), header=("setting", "value", "source"))


def toml_value(value: Any) -> str:
    """A value as it would be written in config.toml: true, 10.0, "text", ["a", "b"]."""
    import json

    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string
