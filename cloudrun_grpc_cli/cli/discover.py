"""`crgrpc list` and `crgrpc describe`: services, methods and types by reflection
(or --proto / --protoset)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .completion import complete_service, complete_symbol
from .console import write_json_lines
from .options import CommonOptions, common_options

LIST_HELP = """List services, or the methods of SERVICE with their kind.

Examples:

\b
  crgrpc list https://echo-abc-uc.a.run.app --key-file sa.json
  crgrpc list localhost:8080 --plaintext echo.EchoServer
  crgrpc list host:443 -o json | jq -r .service
"""

DESCRIBE_HELP = """Describe a service, method, message or enum as proto source.

Examples:

\b
  crgrpc describe https://echo-abc-uc.a.run.app echo.EchoRequest
  crgrpc describe localhost:8080 --plaintext echo.EchoServer.SayHello
"""

MODES = ("pretty", "json")


def register(app: typer.Typer) -> None:
    app.command("list", help=LIST_HELP)(list_cmd)
    app.command("describe", help=DESCRIBE_HELP)(describe_cmd)


@common_options
def list_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="host[:port], https://host, http://host:port, unix:///path, run://[[PROJECT/]REGION/]SERVICE, or a named target.")],
    service: Annotated[Optional[str], typer.Argument(metavar="SERVICE", autocompletion=complete_service, help="List the methods of this service (a full or unique short name).")] = None,
    *,
    opts: CommonOptions,
) -> None:
    from ..core.schema import method_kind, method_name, resolve_service
    from .runner import prepare, session

    tgt, settings, env = prepare(target, opts, allowed_modes=MODES)
    with session(tgt, settings, env) as sess:
        schema = sess.schema(fresh=True)  # the server's present answer (and a fresh cache)
        if service is None:
            rows = [{"service": name} for name in schema.list_services()]
        else:
            svc = resolve_service(schema, service)
            rows = [
                {
                    "method": method_name(m),
                    "kind": method_kind(m),
                    "request": m.input_type.full_name,
                    "response": m.output_type.full_name,
                }
                for m in svc.methods
            ]
    if settings.output.mode == "json":
        write_json_lines(env, rows)
        return
    from ..render.listing import print_listing

    print_listing(env, rows)


@common_options
def describe_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="host[:port], https://host, http://host:port, unix:///path, run://[[PROJECT/]REGION/]SERVICE, or a named target.")],
    symbol: Annotated[Optional[str], typer.Argument(metavar="SYMBOL", autocompletion=complete_symbol, help="A service, method, message or enum: a full or unique short name. Default: every service.")] = None,
    *,
    opts: CommonOptions,
) -> None:
    from ..core.schema import Symbol, resolve_symbol, symbol_kind, to_proto_text
    from .runner import prepare, session

    tgt, settings, env = prepare(target, opts, allowed_modes=MODES)
    with session(tgt, settings, env) as sess:
        schema = sess.schema(fresh=True)  # the server's present answer (and a fresh cache)
        symbols: list[Symbol]
        if symbol is None:
            symbols = [schema.find_service(name) for name in schema.list_services()]
        else:
            symbols = [resolve_symbol(schema, symbol)]
        rows = [
            {"symbol": _symbol_name(s), "kind": symbol_kind(s), "proto": to_proto_text(s)}
            for s in symbols
        ]
    if settings.output.mode == "json":
        write_json_lines(env, rows)
        return
    from ..render.listing import print_descriptions

    print_descriptions(env, rows)


def _symbol_name(s: Any) -> str:
    """Full name of a symbol; enum values are scoped beside their enum."""
    name = getattr(s, "full_name", None)
    return str(name) if name else f"{s.type.full_name}.{s.name}"
