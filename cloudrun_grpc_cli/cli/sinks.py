"""Pick the renderer for a call's output mode and tell it what the call is."""

from __future__ import annotations

from typing import Any, Protocol

from google.protobuf.descriptor import MethodDescriptor

from ..core.events import Event
from ..core.session import Session
from ..render.callinfo import CallInfo
from ..render.env import Environment
from ..settings import Settings


class EventSink(Protocol):
    def start(self, info: CallInfo) -> None: ...
    def event(self, ev: Event) -> None: ...
    def fail(self, code: int, name: str, message: str) -> None: ...
    def finish(self) -> None: ...


def call_info(sess: Session, method: MethodDescriptor, kind: str) -> CallInfo:
    token = sess.token
    return CallInfo(
        method=f"{method.containing_service.full_name}/{method.name}",
        kind=kind,
        target=sess.target.address,
        request_metadata=tuple(sess.conn.metadata()),
        token_claims=dict(token.claims) if token is not None else None,
        token_source=token.source if token is not None else None,
        token_value=token.value if token is not None and sess.settings.auth.show_token else None,
    )


def pretty_console(settings: Settings, env: Environment) -> Any | None:
    """The stdout console of pretty mode (shared with the progress display)."""
    if settings.output.mode != "pretty":
        return None
    from ..render.pretty import make_console

    return make_console(env.stdout, color=env.use_color(env.stdout_isatty))


def make_sink(
    settings: Settings,
    env: Environment,
    sess: Session,
    method: MethodDescriptor,
    kind: str,
    console: Any | None = None,
) -> Any:
    out = settings.output
    sink: Any
    if out.mode == "pretty":
        from ..render.pretty import PrettySink

        console = console or pretty_console(settings, env)
        assert console is not None  # pretty mode always has one
        sink = PrettySink(
            console,
            emit_defaults=out.emit_defaults,
            proto_names=out.proto_names,
            verbose=out.verbose,
        )
    else:
        from ..render.machine import EventsSink, FullSink, JsonSink

        cls = {"json": JsonSink, "full": FullSink, "events": EventsSink}[out.mode]
        sink = cls(env.stdout, emit_defaults=out.emit_defaults, proto_names=out.proto_names)
    sink.start(call_info(sess, method, kind))
    return sink
