"""The call use case: resolve METHOD in a session, turn JSON data into
messages, run the call, yield its events; a failed status is raised.

    with open_session(target, settings) as sess:
        for event in run_call(sess, "pkg.Svc/Method", messages):
            sink.event(event)

Events come in order: Started, Headers, Message*, Trailers, Status. A non-OK
Status is yielded first (the sink shows it), then raised as RpcStatusError.

`run_each` makes one call per message (--each): one session, so one channel,
one token and one schema resolution for all of them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..errors import RequestDataError, RpcStatusError, UsageError
from .events import Event, Message, Started, Status
from .rpcerrors import is_front_end_answer, retry_backoff
from .session import Session

if TYPE_CHECKING:
    from google.protobuf.descriptor import MethodDescriptor

UNAVAILABLE = "UNAVAILABLE"
MAX_CONCURRENCY = 256


def run_call(
    sess: Session,
    method_text: str,
    messages: Iterable[dict[str, Any]],
    *,
    allow_unknown: bool = False,
) -> Iterator[Event]:
    """Run one call of any kind. `messages` are JSON objects: a list (known
    whole: checked before anything is sent), a re-iterable (a file: read as
    sent, from the start again on a retry) or an iterator (read as sent, once)."""
    from google.protobuf.message_factory import GetMessageClass

    from .codec import to_message
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
        del given

    def converted() -> Iterator[Any]:
        for i, d in enumerate(messages):
            yield to_message(d, request_cls, index=i + 1, allow_unknown=allow_unknown)

    requests: Callable[[], Iterable[Any]]
    if isinstance(messages, list):
        # Data known up front is checked whole before anything is sent.
        known = list(converted())
        if kind in ("unary", "server"):
            messages.clear()  # our own list: its JSON (16 MiB, say) is not needed any more
        if sess.settings.channel.retries:
            requests = lambda: known  # noqa: E731  (sent again on a retry)
        else:
            # Sent once: handed over one by one, so that a large message is freed
            # as soon as gRPC has it.
            pending = deque(known)
            known.clear()

            def requests() -> Iterable[Any]:
                while pending:
                    yield pending.popleft()
    else:
        # Read as it is sent; a bad message cancels the call.
        requests = converted
    rereadable = not isinstance(messages, Iterator)
    metadata = sess.conn.metadata()
    yield _started(sess, method, metadata)
    status = yield from _attempts(sess, method, requests, metadata, rereadable)
    _raise_for(status)


def _started(sess: Session, method: MethodDescriptor, metadata: Any) -> Started:
    from .schema import method_kind, method_name

    return Started(
        method=method_name(method),
        kind=method_kind(method),
        target=sess.target.address,
        request_metadata=tuple(metadata),
        token=sess.token,
    )


def _raise_for(status: Status | None) -> None:
    if status is not None and not status.ok:
        err = RpcStatusError(status.code, status.name, status.message)
        err.status_details = list(status.details)
        raise err


def _attempts(
    sess: Session,
    method: MethodDescriptor,
    requests: Callable[[], Iterable[Any]],
    metadata: Any,
    retry: bool,
) -> Generator[Event, None, Status | None]:
    """Run the call, again after a front end's answer while retries are left;
    yield the events of the attempt that counts; return its Status."""
    from .invoke import invoke

    channel = sess.settings.channel
    # gRPC's own retry policy (core/channel.py) stops once response headers
    # arrived, and a front end's HTTP 503 carries headers: for those answers,
    # data known whole is sent again while no response message has arrived.
    attempts = 1 + (channel.retries if retry else 0)
    retry_codes = {UNAVAILABLE, *channel.retry_on}
    status: Status | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(retry_backoff(attempt))
            metadata = sess.conn.metadata()  # a fresh token, a connection back up
        events = invoke(
            sess.conn.channel,
            method,
            requests(),
            metadata=metadata,
            timeout=channel.timeout,
            scrub=sess.secrets.scrub,
        )
        if attempt == attempts - 1:  # the last attempt: its events as they come
            return (yield from events)
        held: list[Event] = []  # this attempt's events, until it cannot be retried
        committed = False
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
    return status


class EachCall:
    """One call of --each: the index of its request (0-based) and its events
    (Started, Headers, Message*, Trailers, Status), consumed in input order."""

    __slots__ = ("events", "index")

    def __init__(self, index: int, events: Iterable[Event]) -> None:
        self.index = index
        self.events = events


def run_each(
    sess: Session,
    method_text: str,
    messages: Iterable[dict[str, Any]],
    *,
    concurrency: int = 1,
    allow_unknown: bool = False,
) -> Iterator[EachCall]:
    """One unary or server-streaming call per message, up to `concurrency` at
    once, each yielded in input order once it is its turn. A failed call is its
    Status event (never raised: the next calls go on). A message that is not
    valid stops the run: the calls before it are yielded, then RequestDataError."""
    from google.protobuf.message_factory import GetMessageClass

    from .codec import to_message
    from .schema import method_kind, method_name

    method = sess.resolve(method_text)
    kind = method_kind(method)
    if kind not in ("unary", "server"):
        raise UsageError(
            f"--each makes one unary or server-streaming call per message; "
            f"{method_name(method)} is a {kind}-streaming method",
            "send a stream without --each",
        )
    request_cls = GetMessageClass(method.input_type)
    concurrency = max(1, min(concurrency, MAX_CONCURRENCY))

    def one(request: Any, metadata: Any) -> Iterator[Event]:
        yield _started(sess, method, metadata)
        yield from _attempts(sess, method, lambda: (request,), metadata, True)

    def collect(request: Any, metadata: Any) -> list[Event]:
        return list(one(request, metadata))

    numbered = enumerate(messages)
    if concurrency == 1:
        for i, d in numbered:
            request = to_message(d, request_cls, index=i + 1, allow_unknown=allow_unknown)
            yield EachCall(i, one(request, sess.conn.metadata()))
        return

    from concurrent.futures import Future, ThreadPoolExecutor

    window: deque[tuple[int, Future[list[Event]]]] = deque()
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="crgrpc-each")
    failure: RequestDataError | None = None
    try:
        while True:
            try:  # a message that cannot be read or converted ends the run, in order
                item = next(numbered, None)
                if item is None:
                    break
                i, d = item
                request = to_message(d, request_cls, index=i + 1, allow_unknown=allow_unknown)
            except RequestDataError as e:
                failure = e
                break
            metadata = sess.conn.metadata()  # in this thread: token refresh, ensure_ready
            window.append((i, pool.submit(collect, request, metadata)))
            if len(window) >= concurrency:
                index, done = window.popleft()
                yield EachCall(index, done.result())
        while window:
            index, done = window.popleft()
            yield EachCall(index, done.result())
    finally:
        for _, fut in window:
            fut.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
    if failure is not None:
        raise failure
