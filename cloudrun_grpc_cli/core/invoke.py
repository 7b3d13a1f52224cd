"""Run one call of any of the four kinds and yield its events in order.

Owns the grpc call objects: metadata and deadline on the way in, headers,
messages, trailers and status on the way out, cancellation when the
consumer stops early (Ctrl-C, a closed pipe) or the request stream fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

import grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.message_factory import GetMessageClass

from ..errors import CrgrpcError, RequestDataError
from .events import Event, Headers, Message, Metadata, Status, Trailers
from .rpcerrors import classify, status_of
from .schema.resolve import method_kind, method_name
from .secrets import scrub as default_scrub

STATUS_DETAILS_KEY = "grpc-status-details-bin"
INTERNAL = (13, "INTERNAL")
MAX_EXTRA = 100  # extra messages read (and dropped) before giving up on a broken answer
Scrub = Callable[[str], str]


def _serialize(msg: ProtoMessage) -> bytes:
    return msg.SerializeToString()


class _Requests:
    """Wraps the request iterator: counts what was sent, and turns a bad
    message into a cancelled call plus an error we raise ourselves (gRPC would
    only log it from its own thread)."""

    def __init__(self, source: Iterable[ProtoMessage]) -> None:
        self._it = iter(source)
        self.sent = 0
        self.error: CrgrpcError | None = None
        self.call: Any = None
        self._ready = threading.Event()
        # Unary and server-streaming calls read their one request in this
        # thread, before the call exists; streams read in gRPC's thread.
        self._owner = threading.get_ident()

    def bind(self, call: Any) -> None:
        self.call = call
        self._ready.set()

    def __iter__(self) -> Iterator[ProtoMessage]:
        return self

    def __next__(self) -> ProtoMessage:
        try:
            msg = next(self._it)
        except StopIteration:
            raise
        except CrgrpcError as e:
            self._fail(e)
            raise StopIteration from None
        except Exception as e:  # a reader failure: report it, never a traceback
            self._fail(RequestDataError(f"request data: {e}"))
            raise StopIteration from None
        self.sent += 1
        return msg

    def _fail(self, err: CrgrpcError) -> None:
        self.error = err
        if threading.get_ident() != self._owner:
            self._ready.wait(5)  # the call is being created in the caller's thread
        if self.call is not None:
            self.call.cancel()


def status_details(trailers: Metadata | None) -> list[dict[str, Any]]:
    """google.rpc.Status details from the trailers, each as JSON with @type."""
    raw = next((v for k, v in trailers or () if k == STATUS_DETAILS_KEY), None)
    if not isinstance(raw, bytes):
        return []
    from google.protobuf import json_format
    from google.rpc import error_details_pb2, status_pb2  # noqa: F401  (registers detail types)

    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except Exception:
        return []
    out: list[dict[str, Any]] = []
    for any_msg in status.details:
        try:
            out.append(json_format.MessageToDict(any_msg))
        except Exception:
            import base64

            out.append({"@type": any_msg.type_url, "value": base64.b64encode(any_msg.value).decode()})
    return out


def _strip_details(md: Metadata | None, scrub: Scrub) -> Metadata:
    return tuple((k, v) for k, v in _scrubbed(md, scrub) if k != STATUS_DETAILS_KEY)


def _scrubbed(md: Metadata | None, scrub: Scrub) -> Metadata:
    """Metadata from the server without any credential we sent (a server may echo it)."""
    return tuple((k, scrub(v) if isinstance(v, str) else v) for k, v in md or ())


def invoke(
    channel: Any,
    method: MethodDescriptor,
    requests: Iterable[ProtoMessage],
    *,
    metadata: Metadata,
    timeout: float | None = None,
    scrub: Scrub = default_scrub,
) -> Generator[Event, None, Status]:
    """Yield Headers, Message*, Trailers, Status, and return the Status. Raises
    RequestDataError when the request stream fails (after the call is cancelled)."""
    kind = method_kind(method)
    path = "/" + method_name(method)
    response_cls = GetMessageClass(method.output_type)
    deserialize = response_cls.FromString
    md = list(metadata)
    start = time.monotonic()
    reqs = _Requests(requests)
    call: Any
    # Every kind is run as a stream of responses (the wire is the same), so that a
    # unary or client-streaming answer of 0 or 2+ messages is seen, not waited on.
    single = kind in ("unary", "client")
    if kind in ("unary", "server"):
        first = next(iter(reqs), None)
        if reqs.error is not None:
            raise reqs.error
        request = first if first is not None else GetMessageClass(method.input_type)()
        mc: Any = channel.unary_stream(path, _serialize, deserialize)
        call = mc(request, metadata=md, timeout=timeout)
        del first, request  # serialized and sent: a large one is freed now
    else:
        mc = channel.stream_stream(path, _serialize, deserialize)
        call = mc(reqs, metadata=md, timeout=timeout)
    reqs.bind(call)

    finished = False
    extra = 0  # messages beyond the one a unary or client-streaming method answers with
    try:
        yield Headers(_scrubbed(call.initial_metadata(), scrub))
        count = 0
        held: ProtoMessage | None = None  # a unary answer is shown once it is known whole
        try:
            if not single:  # the hot loop of streams: nothing else per message
                for msg in call:
                    count += 1
                    yield Message(msg, count)
            else:
                for msg in call:
                    if held is None:
                        held, count = msg, 1
                    else:
                        extra += 1
                        if extra >= MAX_EXTRA:
                            break
        except grpc.RpcError:
            pass
        if extra:
            call.cancel()
        elif held is not None and call.code() == grpc.StatusCode.OK:
            yield Message(held, 1)
        if reqs.error is not None:
            finished = True
            err = reqs.error
            sent = reqs.sent
            cancelled = RequestDataError(
                f"{err.message} (call cancelled after {sent} message{'s' if sent != 1 else ''} sent)",
                *err.hints,
            )
            cancelled.cancelled = True  # the call was made and cancelled: status CANCELLED
            raise cancelled
        trailers = call.trailing_metadata()
        yield Trailers(_strip_details(trailers, scrub))
        message = scrub(call.details() or "")
        num, name = classify(call.code(), message) if not count else status_of(call.code())
        if single and (extra or (num == 0 and count == 0)):
            # An OK answer of the wrong cardinality is a broken answer, never success.
            got = f"{count + extra}{' or more' if extra >= MAX_EXTRA else ''}"
            num, name = INTERNAL
            message = f"server sent {got} messages for a {kind} method, which answers with one"
        finished = True
        status = Status(
            code=num,
            name=name,
            message=message,
            details=status_details(trailers),
            elapsed_ms=(time.monotonic() - start) * 1000,
        )
        yield status
        return status
    finally:
        if not finished:
            call.cancel()
