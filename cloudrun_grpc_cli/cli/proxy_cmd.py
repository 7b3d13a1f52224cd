"""`crgrpc proxy`: a local gRPC proxy that adds crgrpc's token to every call."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..errors import UsageError
from .options import PROXY_OPTION_NAMES, ROWS, CommonOptions, with_options

PROXY_HELP = """Run a local gRPC proxy that adds crgrpc's token to every call.

Listens for plaintext HTTP/2 (h2c) on 127.0.0.1 and forwards every call of
every kind, as raw bytes, to TARGET with a Google ID token that it keeps
fresh: any gRPC tool then reaches a private Cloud Run service. The first line
on stdout is `listening on HOST:PORT`; the log, one line per call, is on
stderr. Ctrl-C or SIGTERM stops it (--grace).

Examples:

\b
  crgrpc proxy https://echo-abc-uc.a.run.app --key-file sa.json
  grpcurl -plaintext 127.0.0.1:8080 list
  grpcui -plaintext 127.0.0.1:8080
  crgrpc proxy https://echo-abc-uc.a.run.app --port 0 -o json 2>>proxy.log
"""

VERBOSE_PROXY = "Log the metadata each call sends upstream (secrets redacted)."
MODES_PROXY = "pretty | json: the log on stderr (default: pretty when stderr is a terminal, else json)."


def register(app: typer.Typer) -> None:
    app.command("proxy", help=PROXY_HELP)(proxy_cmd)


@with_options(*PROXY_OPTION_NAMES, helps={"output": MODES_PROXY, "verbose": VERBOSE_PROXY})
def proxy_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="host[:port], https://host, http://host:port, unix:///path, run://[[PROJECT/]REGION/]SERVICE or a named target, as for call.")],
    *,
    port: int,
    bind: Optional[str],
    grace: float,
    opts: CommonOptions,
    origins: dict[str, str],
) -> None:
    from ..core.proxy import Notice, exposure_warning, is_loopback_bind, parse_bind, serve
    from ..core.session import plan_tokens
    from ..render.proxylog import make_proxy_log
    from ..settings import ProxySettings
    from .console import current_env
    from .runner import prepare

    env = current_env()
    # The log goes to stderr: its terminal, not stdout's, picks the default mode.
    stdout_tty = env.stdout_isatty
    env.stdout_isatty = env.stderr_isatty
    try:
        tgt, settings, env = prepare(target, opts, allowed_modes=("pretty", "json"))
    finally:
        env.stdout_isatty = stdout_tty
    if tgt.method:
        raise UsageError(
            f"the target {target!r} names a method: the proxy forwards every method",
            "give the service alone, e.g. https://echo-abc-uc.a.run.app",
        )
    host = parse_bind(bind) if bind is not None else "127.0.0.1"
    loopback = is_loopback_bind(host)
    if not loopback and origins.get("bind") == "env":
        raise UsageError(
            f"{ROWS['bind'].env} names {host}, not a loopback address: anyone who can reach "
            "it would call the service as you",
            f"to mean it, give --bind {host} on the command line",
        )
    log = make_proxy_log(settings.output.mode, env, verbose=settings.output.verbose)
    # A run:// target resolved; exit 3 on a credentials failure, before anything listens.
    tgt, settings, _, plan = plan_tokens(tgt, settings)
    if settings.channel.insecure and tgt.tls:
        log(Notice("warning", "--insecure: trusting whatever certificate the server presents "
                              "(no protection against interception)"))
    for line in plan.warnings:
        log(Notice("warning", line))
    for line in (*plan.notices, *(plan.quiet_notices if settings.output.verbose else ())):
        log(Notice("note", line))
    token = plan.current()

    def listening(address: str) -> None:
        env.stdout.write(f"listening on {address}\n")
        env.stdout.flush()
        if not loopback:
            bound = int(address.rsplit(":", 1)[1])
            email = token.email if token is not None else None
            log(Notice("warning", exposure_warning(host, bound, tgt.address, email, token=plan.provider is not None)))

    serve(tgt, settings, ProxySettings(bind=host, port=port, grace=grace), plan, log, listening)
