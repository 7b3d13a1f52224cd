"""`crgrpc call`: invoke a method of any kind with JSON in and out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import CrgrpcError, ExitCode, RequestDataError, SchemaError, UsageError
from .completion import complete_method

if TYPE_CHECKING:
    from ..core.target import Target
    from ..render.env import Environment
    from ..settings import Settings
    from .data import RequestData
from .options import CommonOptions, common_options

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


@common_options
def call_cmd(
    target: Annotated[str, typer.Argument(metavar="TARGET", help="host[:port], https://host, http://host:port, unix:///path, a named target, or https://host/pkg.Service/Method.")],
    method: Annotated[Optional[str], typer.Argument(metavar="METHOD", autocompletion=complete_method, help="pkg.Service/Method, pkg.Service.Method, or a unique Method.")] = None,
    *,
    data: Annotated[Optional[str], typer.Option("-d", "--data", help="Request JSON, @FILE, or @- for standard input.", envvar="CRGRPC_DATA", show_envvar=True, metavar="DATA")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", help="Deadline for the call, in seconds.", envvar="CRGRPC_TIMEOUT", show_envvar=True, min=0.001, metavar="SECONDS", rich_help_panel="Connection")] = None,
    allow_unknown_fields: Annotated[bool, typer.Option("--allow-unknown-fields", help="Skip request fields the schema does not know.", envvar="CRGRPC_ALLOW_UNKNOWN_FIELDS", show_envvar=True)] = False,
    opts: CommonOptions,
) -> None:
    from .runner import prepare

    tgt, settings, env = prepare(target, opts, timeout=timeout)
    method_text = _method_text(tgt.method, method)
    # DATA syntax is checked before dialing; streams from @- are read as the call goes.
    from .data import load_data

    streaming_stdin = data == "@-"
    request_data = load_data(data, env.stdin, streaming=streaming_stdin)
    started: list[bool] = []  # set once a renderer owns the output
    try:
        _run_call(tgt, settings, env, method_text, request_data, allow_unknown_fields, started)
    except CrgrpcError as e:
        if settings.output.mode == "full" and not started:
            _write_failure_document(env, method_text, e)
        raise


def _method_text(from_target: str | None, given: str | None) -> str:
    if from_target and given:
        raise UsageError(
            "METHOD given twice: in the target URL and as an argument", "give it once"
        )
    text = (from_target or given or "").strip().lstrip("/")
    if not text:
        raise UsageError("missing METHOD", "crgrpc call TARGET pkg.Service/Method [-d DATA]")
    return text


def _write_failure_document(env: Environment, method_text: str, err: CrgrpcError) -> None:
    """-o full writes its one document on every failure, even before any call was made."""
    from ..core.codec import dumps

    doc: dict[str, object] = {
        "method": method_text,
        "request_metadata": {},
        "token": None,
        "headers": {},
        "messages": [],
        "trailers": {},
        "status": None,
        "elapsed_ms": 0,
        "error": {"exit_code": int(err.exit_code), "message": err.message, "hints": list(err.hints)},
    }
    env.stdout.write(dumps(doc) + "\n")
    env.stdout.flush()


def _run_call(
    tgt: Target,
    settings: Settings,
    env: Environment,
    method_text: str,
    request_data: RequestData,
    allow_unknown: bool,
    started: list[bool],
) -> None:
    from google.protobuf.message_factory import GetMessageClass

    from ..core.codec import to_message
    from ..core.events import Message, Status
    from ..core.invoke import invoke, kind_of
    from ..core.schema import resolve_method
    from ..errors import RpcStatusError
    from ..render.progress import make_progress
    from .runner import session
    from .sinks import make_sink, pretty_console

    console = pretty_console(settings, env)
    progress = make_progress(env, settings.output.mode, console)
    with session(tgt, settings, env, progress) as sess:
        with progress.stage(f"resolving {method_text}…"):
            sess.conn.wait_connected()
            schema = sess.schema()
            try:
                method = resolve_method(schema, method_text)
            except SchemaError as e:
                if not e.hints:
                    flag = "" if tgt.tls or "://" in tgt.raw or tgt.is_unix else " --plaintext"
                    e.with_hints(
                        f"crgrpc list {tgt.raw}{flag} shows the services; "
                        "add a SERVICE for its methods"
                    )
                raise
        kind = kind_of(method)
        request_cls = GetMessageClass(method.input_type)
        single = kind in ("unary", "server")

        if request_data.messages is not None:
            dicts = request_data.messages
            if single and len(dicts) > 1:
                raise RequestDataError(
                    f"request data: {len(dicts)} messages for the {kind} method "
                    f"{method.containing_service.full_name}/{method.name}, which takes one",
                    "client- and bidi-streaming methods take several",
                )
            if single and not dicts:
                dicts = [{}]
            requests: Any = [
                to_message(d, request_cls, index=i + 1, allow_unknown=allow_unknown)
                for i, d in enumerate(dicts)
            ]
        else:
            requests = (
                to_message(d, request_cls, index=i + 1, allow_unknown=allow_unknown)
                for i, d in enumerate(request_data.iterate())
            )

        sink = make_sink(settings, env, sess, method, kind, console)
        started.append(True)
        status: Status | None = None
        try:
            for ev in invoke(sess.conn, method, requests, timeout=settings.channel.timeout):
                if isinstance(ev, Message):
                    progress.message()
                elif isinstance(ev, Status):
                    progress.close()
                    status = ev
                sink.event(ev)
        except RequestDataError as e:
            sink.fail(ExitCode.REQUEST_DATA, "CANCELLED", e.message)
            sink.finish()
            raise
        finally:
            progress.close()
        sink.finish()
        if status is not None and not status.ok:
            from .diagnose import explain_status

            err = RpcStatusError(status.code, status.name, status.message)
            for hint in explain_status(status, sess, settings):
                err.with_hints(hint)
            raise err
