"""A raw gRPC responder: answers every call with a scripted reply, byte for byte.

A grpcio server cannot misbehave on purpose (two messages for a unary method,
an OK status with no message, control characters in header values or status
messages). This one speaks HTTP/2 with `h2` (as tests/support/frontend.py)
and, once a request stream has ended (or at once, with `eager`), sends the
scripted response headers, length-prefixed messages, and trailers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from .frontend import FrontEnd


@dataclass
class Reply:
    messages: list[bytes] = field(default_factory=list)  # serialized messages
    status: int = 0
    message: str = ""  # grpc-message (percent-encoded on the wire, as the spec says)
    headers: list[tuple[str, str]] = field(default_factory=list)
    trailers: list[tuple[str, str | bytes]] = field(default_factory=list)
    raw_message: bool = False  # send `message` without percent-encoding
    trailers_only: bool = False  # status in the response headers, no messages (as gRPC sends an error)


@dataclass
class HttpAnswer:
    """A non-gRPC HTTP answer, as a front end sends it (Cloud Run's 503 while starting)."""

    status: int = 503
    body: bytes = b""
    content_type: str = "text/html; charset=UTF-8"
    split_body: bool = False  # send the body in two DATA frames


@dataclass
class Refuse:
    """RST_STREAM REFUSED_STREAM: the stream was never processed (a client may retry it)."""


@dataclass
class Silent:
    """No answer at all (a service that ignores its deadline)."""


def frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


@dataclass
class RawGrpc(FrontEnd):
    reply: Reply = field(default_factory=Reply)
    eager: bool = False  # answer on the request headers, not on its end
    # Answers for the first requests, in order (then `reply` for every later one).
    script: list[Reply | HttpAnswer | Refuse | Silent] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)  # each DATA frame received, in order

    def _on_event(self, h2conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = {str(k): str(v) for k, v in event.headers or ()}
            with self._lock:
                self.requests.append(headers)
            if self.eager:
                self._answer(h2conn, event.stream_id)
        elif isinstance(event, h2.events.DataReceived):
            with self._lock:
                self.bodies.append(bytes(event.data))
            with suppress(h2.exceptions.H2Error):
                h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded) and not self.eager:
            self._answer(h2conn, event.stream_id)

    def _answer(self, h2conn: h2.connection.H2Connection, stream_id: int) -> None:
        with self._lock:
            r = self.script.pop(0) if self.script else self.reply
        if isinstance(r, HttpAnswer):
            self._http(h2conn, stream_id, r)
            return
        if isinstance(r, Silent):
            return
        if isinstance(r, Refuse):
            with suppress(h2.exceptions.H2Error):
                h2conn.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        if r.trailers_only:
            with suppress(h2.exceptions.H2Error):
                h2conn.send_headers(stream_id, [(":status", "200"), ("content-type", "application/grpc"), *_status(r)],
                                    end_stream=True)
            return
        with suppress(h2.exceptions.H2Error):
            h2conn.send_headers(
                stream_id,
                [(":status", "200"), ("content-type", "application/grpc"), *r.headers],
            )
            for m in r.messages:
                h2conn.send_data(stream_id, frame(m))
            h2conn.send_headers(stream_id, [*_status(r), *r.trailers], end_stream=True)


    def _http(self, h2conn: h2.connection.H2Connection, stream_id: int, a: HttpAnswer) -> None:
        with suppress(h2.exceptions.H2Error):
            headers = [(":status", str(a.status))]
            if a.body:
                headers += [("content-type", a.content_type), ("content-length", str(len(a.body)))]
                h2conn.send_headers(stream_id, headers)
                parts = [a.body[: len(a.body) // 2], a.body[len(a.body) // 2 :]] if a.split_body else [a.body]
                for i, part in enumerate(parts):
                    h2conn.send_data(stream_id, part, end_stream=i == len(parts) - 1)
            else:
                h2conn.send_headers(stream_id, [*headers, ("content-length", "0")], end_stream=True)


def _status(r: Reply) -> list[tuple[str, str | bytes]]:
    """grpc-status, and grpc-message when there is one (percent-encoded unless raw_message)."""
    out: list[tuple[str, str | bytes]] = [("grpc-status", str(r.status))]
    if r.message:
        out.append(("grpc-message", r.message if r.raw_message else quote(r.message, safe=" !#$&'()*+,/:;=?@[]~")))
    return out


@contextmanager
def raw_grpc(
    reply: Reply, *, eager: bool = False, script: list[Reply | HttpAnswer | Refuse | Silent] | None = None
) -> Iterator[RawGrpc]:
    server = RawGrpc(reply=reply, eager=eager, script=list(script or [])).start()
    try:
        yield server
    finally:
        server.stop()


def echo_protoset(path: Path) -> Path:
    """The Echo service's FileDescriptorSet (the raw responder offers no reflection)."""
    from google.protobuf import descriptor_pb2

    from cloudrun_grpc_cli.demo import echo_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    echo_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    path.write_bytes(fds.SerializeToString())
    return path


def echo_reply(text: str) -> bytes:
    from cloudrun_grpc_cli.demo import echo_pb2

    return bytes(echo_pb2.EchoReply(message=text).SerializeToString())
