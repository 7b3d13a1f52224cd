"""`crgrpc call`: invoke a method of any kind with JSON in and out."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..core.events import Message, Status
from ..errors import UsageError
from .completion import complete_method
from .options import CommonOptions, call_options

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
    sink = make_sink(
        out.mode,
        env,
        SinkOptions(out.emit_defaults, out.proto_names, out.verbose, settings.auth.show_token),
        method=method_text,
        console=console,
    )
    set_sink(sink)  # from here on, a failure is reported into the sink (cli.main)
    # DATA syntax is checked before dialing; streams from @- are read as the call goes.
    request_data = load_data(data, env.stdin, streaming=data == "@-")
    messages = request_data.messages if request_data.messages is not None else request_data.iterate()
    progress = make_progress(env, out.mode, console)
    with session(tgt, settings, env, progress) as sess:
        events = run_call(sess, method_text, messages, allow_unknown=allow_unknown_fields)
        try:
            with progress.stage(f"connecting to {tgt.address}…"):
                sess.conn.wait_connected()
            where = "from the schema files" if settings.schema.protos or settings.schema.protosets else "by reflection"
            with progress.stage(f"resolving {method_text} {where}…"):
                first = next(events)  # Started: the method is resolved, the data converted
            sink.event(first)
            if data == "@-" and env.stdin_isatty and getattr(first, "kind", "") in ("client", "bidi"):
                env.stderr.write("type JSON messages; Ctrl-D ends\n")  # a person at the keyboard
                env.stderr.flush()
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


def _method_text(from_target: str | None, given: str | None) -> str:
    if from_target and given:
        raise UsageError(
            "METHOD given twice: in the target URL and as an argument", "give it once"
        )
    text = (from_target or given or "").strip().lstrip("/")
    if not text:
        raise UsageError("missing METHOD", "crgrpc call TARGET pkg.Service/Method [-d DATA]")
    return text
