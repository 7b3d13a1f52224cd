"""`crgrpc call`: invoke a method of any kind with JSON in and out."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..core.events import Message, Status
from ..errors import RpcStatusError, UsageError
from .completion import complete_method
from .entry import end_startup
from .options import CommonOptions, call_options

if TYPE_CHECKING:
    from ..core.session import Session
    from ..render.progress import Progress
    from ..render.sinks import Sink

CALL_HELP = """Call METHOD with JSON request data; print the response(s).

METHOD is pkg.Service/Method, pkg.Service.Method, or a unique Method or
Service/Method. DATA is JSON objects (concatenated or one per line),
@FILE, or @- for standard input (client and bidi streams send each message
as it is read).

Examples:

\b
  crgrpc call https://echo-abc-uc.a.run.app echo.EchoServer/SayHello \\
      -d '{"name": "x"}' --key-file sa.json
  crgrpc call localhost:8080 --plaintext SayHelloStream -d '{"count": 5}' | jq -r .message
  printf '{"name":"a"}\\n{"name":"b"}\\n' | crgrpc call host SayHelloBidi -d @-
  crgrpc call host SayHello -d @req.json -o full | jq .status.name   # in CI
  crgrpc call host SayHello --each -d @requests.jsonl --concurrency 8 > replies.jsonl

With --each, every DATA message is its own unary (or server-streaming) call,
all over one connection with one token and one schema lookup; results come
in input order (-o json: a failed call is a line {"error": {...}, "index": I},
I counting from 0; -o full: one document per call). The exit code is that of
the first failed call, 0 when all succeeded.
"""


def register(app: typer.Typer) -> None:
    app.command("call", help=CALL_HELP)(call_cmd)


@call_options
def call_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="host[:port], https://host, http://host:port, unix:///path, run://[[PROJECT/]REGION/]SERVICE, a named target, or https://host/pkg.Service/Method.")],
    method: Annotated[Optional[str], typer.Argument(metavar="METHOD", autocompletion=complete_method, help="pkg.Service/Method, pkg.Service.Method, or a unique Method.")] = None,
    *,
    data: Optional[str],
    allow_unknown_fields: bool,
    each: bool,
    concurrency: int,
    opts: CommonOptions,
) -> None:
    from ..core.calls import run_call
    from ..render.progress import make_progress
    from ..render.sinks import SinkOptions, make_sink, pretty_console
    from .console import set_sink
    from .data import load_data
    from .runner import prepare, session

    tgt, settings, env = prepare(target, opts)
    method_text = _method_text(tgt.method, method)
    out = settings.output
    console = pretty_console(env) if out.mode == "pretty" else None
    options = SinkOptions(out.emit_defaults, out.proto_names, out.verbose, settings.auth.show_token)
    sink = make_sink(out.mode, env, options, method=method_text, console=console)
    set_sink(sink)  # from here on, a failure is reported into the sink (cli.main)
    if concurrency > 1 and not each:
        raise UsageError("--concurrency goes with --each", "crgrpc call TARGET METHOD --each -d @requests.jsonl --concurrency 8")
    # DATA text is checked before dialing; @FILE and @- are read as the call goes.
    request_data = load_data(data, env.stdin)
    messages = request_data.source()
    progress = make_progress(env, out.mode, console)
    if each:

        def new_sink() -> Sink:  # pretty: a fresh sink per call, on the same console
            return make_sink(out.mode, env, options, method=method_text, console=console)

        with session(tgt, settings, env, progress) as sess:
            _call_each(sess, method_text, messages, sink, new_sink, concurrency, allow_unknown_fields, progress)
        return
    with session(tgt, settings, env, progress) as sess:
        events = run_call(sess, method_text, messages, allow_unknown=allow_unknown_fields)
        try:
            with progress.stage(f"connecting to {tgt.address}…"):
                sess.conn.wait_connected()
            where = "from the schema files" if settings.schema.protos or settings.schema.protosets else "by reflection"
            with progress.stage(f"resolving {method_text} {where}…"):
                first = next(events)  # Started: the method is resolved, the data converted
            end_startup()
            sink.event(first)
            if data == "@-" and env.stdin_isatty and getattr(first, "kind", "") in ("client", "bidi"):
                env.stderr.write("type JSON messages; Ctrl-D ends\n")  # a person at the keyboard
                env.stderr.flush()
            if not progress.enabled:  # machine output: nothing between the call and the sink
                put = sink.event
                for ev in events:
                    put(ev)
            for ev in events:
                if isinstance(ev, Message):
                    progress.message()
                elif isinstance(ev, Status):
                    progress.close()
                sink.event(ev)
        finally:
            progress.close()
    set_sink(None)
    sink.finish()


def _call_each(
    sess: Session,
    method_text: str,
    messages: Iterable[dict[str, Any]],
    sink: Sink,
    new_sink: Callable[[], Sink],
    concurrency: int,
    allow_unknown: bool,
    progress: Progress,
) -> None:
    """--each: each call's events into the sink in input order; a failed call is
    reported in the output and the run goes on; the first failure sets the exit code."""
    from ..core.calls import run_each
    from ..core.hints import explain
    from ..render.sinks import failure_of
    from .console import set_sink

    calls = run_each(sess, method_text, messages, concurrency=concurrency, allow_unknown=allow_unknown)
    with progress.stage(f"resolving {method_text}…"):
        first = next(calls, None)  # the method is resolved
    end_startup()
    total = failed = 0
    first_failure: tuple[int, RpcStatusError] | None = None
    pending = [first] if first is not None else []
    begin = getattr(sink, "begin", None)
    end = getattr(sink, "end", None)
    for call in itertools.chain(pending, calls):
        if begin is not None:
            begin(call.index)
        else:
            sink = new_sink()
            set_sink(sink)
        status: Status | None = None
        for ev in call.events:
            if isinstance(ev, Status):
                status = ev
            sink.event(ev)
        total += 1
        if status is not None and not status.ok:
            failed += 1
            err = RpcStatusError(status.code, status.name, status.message)
            err.status_details = list(status.details)
            err.session = sess
            explain(err)
            sink.fail(failure_of(err))
            if first_failure is None:
                first_failure = (call.index, err)
        if end is not None:
            end()
    set_sink(None)  # the calls' failures are in the output already
    sink.finish()
    if first_failure is not None:
        index, err = first_failure
        summary = RpcStatusError(
            err.code, err.name,
            f"{err.details} (index {index}; {failed} of {total} calls failed)",
            *err.hints,
        )
        summary.explained = True
        raise summary


def _method_text(from_target: str | None, given: str | None) -> str:
    if from_target and given:
        raise UsageError(
            "METHOD given twice: in the target URL and as an argument", "give it once"
        )
    text = (from_target or given or "").strip().lstrip("/")
    if not text:
        raise UsageError("missing METHOD", "crgrpc call TARGET pkg.Service/Method [-d DATA]")
    return text
