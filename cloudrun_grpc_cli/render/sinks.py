"""Where a call's events go: the sink protocol, the failure record, the factory.

A sink receives the events of core.calls in order (Started, Headers,
Message*, Trailers, Status), then `fail(failure)` if the command failed (at
any point: before the call, during it or after a non-OK status), then
`finish()`. Each sink owns its document: -o full writes one document of the
same shape for success and every failure; -o events ends a failure with an
`error` line; -o json writes messages only.
"""

from typing import IO, Any, NamedTuple, Protocol

from ..core.events import Event, Metadata
from ..errors import ConnectError, CrgrpcError, RpcStatusError
from ..settings import OutputMode
from .env import Environment


class Failure(NamedTuple):
    """A failed command as the sinks report it."""

    exit_code: int
    message: str
    hints: tuple[str, ...]
    status: dict[str, Any] | None  # the gRPC status the failure carries, if any
    request_metadata: Metadata | None  # what the last RPC was really sent with
    token: Any  # the IdToken really sent, or None

    def error_json(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "message": self.message, "hints": list(self.hints)}


UNAVAILABLE = (14, "UNAVAILABLE")
CANCELLED = (1, "CANCELLED")


def failure_of(err: CrgrpcError) -> Failure:
    """The Failure of err, with what its session really sent."""
    code: tuple[int, str] | None = None
    if isinstance(err, RpcStatusError):
        code = (err.code, err.name)
        message = err.details
    elif isinstance(err, ConnectError):
        code, message = UNAVAILABLE, err.message
    elif getattr(err, "cancelled", False):  # a bad message from a stream cancelled the call
        code, message = CANCELLED, err.message
    else:
        message = err.message
    details = list(getattr(err, "status_details", []))
    status = (
        {"code": code[0], "name": code[1], "message": message, "details": details}
        if code
        else None
    )
    sess = err.session
    metadata = getattr(sess, "sent_metadata", None) or None
    token = getattr(sess, "token", None) if metadata else None
    return Failure(int(err.exit_code), err.message, err.hints, status, metadata, token)


def interrupted() -> Failure:
    return Failure(130, "interrupted", (), {"code": 1, "name": "CANCELLED", "message": "interrupted", "details": []}, None, None)


class Sink(Protocol):
    def event(self, ev: Event) -> None: ...
    def fail(self, failure: Failure) -> None: ...
    def finish(self) -> None: ...


class SinkOptions(NamedTuple):
    emit_defaults: bool = False
    proto_names: bool = False
    verbose: bool = False
    show_token: bool = False


def pretty_console(env: Environment) -> Any:
    """The stdout console of pretty mode (shared with the progress display)."""
    from .pretty import make_console

    return make_console(env.stdout, color=env.use_color(env.stdout_isatty))


def make_sink(
    mode: OutputMode,
    env: Environment,
    options: SinkOptions,
    *,
    method: str = "",
    console: Any | None = None,
) -> Sink:
    """The sink of an output mode; `method` is what the user asked for (the
    document names it even when the call never started)."""
    if mode == "pretty":
        from .pretty import PrettySink

        return PrettySink(console or pretty_console(env), options)
    from .machine import EventsSink, FullSink, JsonSink

    out: IO[str] = env.stdout
    if mode == "full":
        return FullSink(out, options, method=method)
    if mode == "events":
        return EventsSink(out, options)
    return JsonSink(out, options, env.stderr)
