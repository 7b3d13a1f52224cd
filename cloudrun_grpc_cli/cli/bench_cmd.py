"""`crgrpc bench`: load-test a method with the session, schema and tokens of `call`."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from ..errors import UsageError
from .completion import complete_method
from .options import CommonOptions, bench_options

BENCH_HELP = """Load-test METHOD: send requests for --total N or --duration SECONDS, then
report throughput, latency percentiles, a latency histogram and statuses.

Every connection and token option of `call` applies; the token is minted
once (the workers share the token cache) and refreshed in the background. A
unary call is one request; a server stream is one request whose messages are
counted; client and bidi streams send all the DATA messages on each stream.

--rate schedules requests open-loop and measures each one's latency from
the time it was due. --warmup runs first and is left out of the figures
(cold starts). --connections spreads the load over several connections, so
that it reaches several Cloud Run instances. The exit code is 0 when at most
--max-error-rate of the requests failed, else 64+N for the most frequent
failing status N.

Examples:

\b
  crgrpc bench https://echo-abc-uc.a.run.app SayHello -d '{"name": "x"}' \\
      --duration 30 --warmup 5s --connections 8 --key-file sa.json
  crgrpc bench localhost:8080 --plaintext SayHello -n 10000 -c 50
  crgrpc bench host SayHello --rate 200 --duration 60 -o json | jq .latency_ms.p99
  crgrpc bench host SayHello -n 1000 --max-error-rate 0.01   # in CI
"""

MODES = ("pretty", "json")


def register(app: typer.Typer) -> None:
    app.command("bench", help=BENCH_HELP)(bench_cmd)


@bench_options
def bench_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="host[:port], https://host, http://host:port, unix:///path, run://[[PROJECT/]REGION/]SERVICE, a named target, or https://host/pkg.Service/Method.")],
    method: Annotated[Optional[str], typer.Argument(metavar="METHOD", autocompletion=complete_method, help="pkg.Service/Method, pkg.Service.Method, or a unique Method.")] = None,
    *,
    data: Optional[str],
    allow_unknown_fields: bool,
    total: Optional[int],
    duration: Optional[float],
    concurrency: int,
    connections: Optional[int],
    rate: Optional[float],
    warmup: Any,
    workers: Optional[int],
    max_error_rate: float,
    opts: CommonOptions,
) -> None:
    from ..core.load.report import check_error_rate
    from ..core.load.runner import prepare_load, run_load
    from ..core.load.spec import LoadSpec, Warmup, check
    from ..render.bench import make_live, print_header, print_summary, write_json
    from ..render.progress import make_progress
    from ..render.sinks import pretty_console
    from .data import load_data
    from .runner import prepare, session

    tgt, settings, env = prepare(target, opts, allowed_modes=MODES)
    method_text = _method_text(tgt.method, method)
    spec = LoadSpec(
        total=total,
        duration=duration,
        concurrency=concurrency,
        connections=connections,
        rate=rate,
        warmup=warmup if isinstance(warmup, Warmup) else Warmup(),
        workers=workers,
        max_error_rate=max_error_rate,
    )
    check(spec)  # usage errors before anything is read or dialed
    mode = settings.output.mode
    messages = load_data(data, env.stdin, streaming=False).messages or []
    console = pretty_console(env) if mode == "pretty" else None
    progress = make_progress(env, mode, console)
    with session(tgt, settings, env, progress) as sess:
        with progress.stage(f"resolving {method_text}…"):
            load = prepare_load(sess, method_text, messages, spec, allow_unknown=allow_unknown_fields)
        progress.close()
        _static_token_notice(sess, spec)
        if console is not None:
            print_header(console, load)
        live = make_live(env, mode, load, console)
        try:
            report = run_load(load, on_progress=live.update if live is not None else None)
        finally:
            if live is not None:
                live.close()
        if console is not None:
            console.print()
            print_summary(console, report)
        else:
            write_json(env.stdout, report)
        if report.interrupted:
            raise KeyboardInterrupt
        check_error_rate(report, spec.max_error_rate)


def _static_token_notice(sess: Any, spec: Any) -> None:
    """A token given as it is cannot be refreshed: say so when it ends before the run."""
    from ..core.auth.token import StaticProvider
    from .console import warn

    provider = sess.plan.provider
    token = sess.plan.current()
    if not isinstance(provider, StaticProvider) or token is None or spec.duration is None:
        return
    left = token.seconds_left()
    length = spec.duration + spec.warmup.seconds
    if left is not None and left < length:
        warn(
            f"the token you gave expires in {max(left, 0):.0f} s, before the run ends "
            f"(about {length:g} s): requests after that will fail; let crgrpc mint it "
            "(--key-file, ADC) to have it refreshed",
        )


def _method_text(from_target: str | None, given: str | None) -> str:
    if from_target and given:
        raise UsageError(
            "METHOD given twice: in the target URL and as an argument", "give it once"
        )
    text = (from_target or given or "").strip().lstrip("/")
    if not text:
        raise UsageError(
            "missing METHOD", "crgrpc bench TARGET pkg.Service/Method [-d DATA] --total N"
        )
    return text
