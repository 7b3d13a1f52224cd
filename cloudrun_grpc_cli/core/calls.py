"""The call use case: resolve METHOD in a session, turn JSON data into
messages, run the call, yield its events; a failed status is raised.

    with open_session(target, settings) as sess:
        for event in run_call(sess, "pkg.Svc/Method", messages):
            sink.event(event)

Events come in order: Started, Headers, Message*, Trailers, Status. A non-OK
Status is yielded first (the sink shows it), then raised as RpcStatusError.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import RequestDataError, RpcStatusError
from .events import Event, Message, Started, Status
from .rpcerrors import is_front_end_answer, retry_backoff
from .session import Session

UNAVAILABLE = "UNAVAILABLE"


def run_call(
    sess: Session,
    method_text: str,
    messages: Iterable[dict[str, Any]],
    *,
    allow_unknown: bool = False,
) -> Iterator[Event]:
    """Run one call of any kind; `messages` are JSON objects (read lazily for streams)."""
    from google.protobuf.message_factory import GetMessageClass

    from .codec import to_message
    from .invoke import invoke
    from .schema import method_kind, method_name

    method = sess.resolve(method_text)
    kind = method_kind(method)
    request_cls = GetMessageClass(method.input_type)
    if kind in ("unary", "server"):
        # One message: read all the data (standard input too) and hold it to -d TEXT's rules.
        given = list(messages)
        if len(given) > 1:
            raise RequestDataError(
                f"request data: {len(given)} messages for the {kind} method "
                f"{method_name(method)}, which takes one",
                "client- and bidi-streaming methods take several",
            )
        messages = given or [{}]
    converted = (
        to_message(d, request_cls, index=i + 1, allow_unknown=allow_unknown)
        for i, d in enumerate(messages)
    )
    # Data known up front is checked whole before anything is sent; a stream
    # (standard input) is converted as it is read, and a bad message cancels the call.
    requests: Iterable[Any] = list(converted) if isinstance(messages, list) else converted
    metadata = sess.conn.metadata()
    yield Started(
        method=method_name(method),
        kind=kind,
        target=sess.target.address,
        request_metadata=tuple(metadata),
        token=sess.token,
    )
    channel = sess.settings.channel
    # gRPC's own retry policy (core/channel.py) stops once response headers
    # arrived, and a front end's HTTP 503 carries headers: for those answers,
    # data known whole is sent again while no response message has arrived.
    attempts = 1 + (channel.retries if isinstance(requests, list) else 0)
    retry_codes = {UNAVAILABLE, *channel.retry_on}
    status: Status | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry_backoff(attempt))
            metadata = sess.conn.metadata()  # a fresh token, a connection back up
        events = invoke(
            sess.conn.channel,
            method,
            requests,
            metadata=metadata,
            timeout=channel.timeout,
            scrub=sess.secrets.scrub,
        )
        held: list[Event] = []  # this attempt's events, until it cannot be retried
        committed = attempt == attempts - 1
        for ev in events:
            if isinstance(ev, Status):
                status = ev
                if (
                    not committed
                    and ev.name in retry_codes
                    and is_front_end_answer(ev.message)
                ):
                    break  # try again; what this attempt said is dropped
            if committed:
                yield ev
                continue
            held.append(ev)
            if isinstance(ev, (Message, Status)):
                committed = True
                yield from held
        else:
            break
        events.close()
    if status is not None and not status.ok:
        err = RpcStatusError(status.code, status.name, status.message)
        err.status_details = list(status.details)
        raise err
