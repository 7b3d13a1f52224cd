"""The proxy's data path: each client stream relayed to one upstream stream.

A client's HTTP/2 connection (h2c) is a `Downstream`; the connections to the
target are `Upstream`s (TLS or plaintext, through an egress proxy when one is
configured), at most STREAMS_PER_CONNECTION streams each. A `Link` is one call:
the client's stream and the upstream's. DATA frames cross as they came (the
stream id changes, nothing else), header blocks are decoded and encoded again
(the `Router`, the proxy, decides the request's headers), RST_STREAM and lost
connections cross both ways. Nothing above HTTP/2 is parsed but the 5-byte
gRPC message prefixes, which the log counts.

Everything runs in the loop's callbacks: no task per call unless a call must
wait (for a token, or for a new upstream connection).
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Callable
from typing import Protocol

from .h2conn import (
    CANCEL,
    MAX_HEADER_LIST,
    NO_ERROR,
    PROTOCOL_ERROR,
    REFUSED_STREAM,
    S_ENABLE_PUSH,
    S_MAX_CONCURRENT_STREAMS,
    Conn,
    ConnectionError_,
    Headers,
    Stream,
    flush_all,
)

# Google's front ends allow 100 concurrent streams on one HTTP/2 connection: one more
# upstream connection for every 100 calls in flight.
STREAMS_PER_CONNECTION = 100
MAX_CLIENT_STREAMS = 1000  # per client connection
REPLAY_LIMIT = 64 * 1024  # bytes of a request kept for a retry (gRPC's per-call buffer is 256 KiB)


class Router(Protocol):
    """What the proxy does with calls (core/proxy.py)."""

    def open(self, link: Link, headers: Headers) -> None:
        """A new call: link.connect(...) or link.respond(...), now or later."""

    def retry(self, link: Link, code: int, *, transparent: bool = False) -> bool:
        """Whether the call is tried again instead of answered with code (then
        link.replay_on(...) later)."""

    def finished(self, link: Link) -> None:
        """The call is over (once per link)."""


def grpc_status_of(headers: Headers) -> tuple[int | None, str]:
    code: int | None = None
    message = ""
    for k, v in headers:
        if k == b"grpc-status":
            try:
                code = int(v)
            except ValueError:
                code = 2
        elif k == b"grpc-message":
            message = urllib.parse.unquote(v.decode("utf-8", "replace"))
    return code, message


# What a gRPC client makes of an HTTP status with no grpc-status (gRPC's http-grpc-status-mapping.md).
_HTTP_CODES = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


def http_status_of(headers: Headers) -> tuple[int, str]:
    """The status of an answer that ended with no grpc-status."""
    http = next((v for k, v in headers if k == b":status"), b"")
    if http and http != b"200":
        status = http.decode("latin-1")
        return _HTTP_CODES.get(int(http) if http.isdigit() else 0, 2), f"the upstream answered HTTP {status}"
    return 13, "the upstream's answer had no grpc-status"


def status_headers(code: int, message: str, *, only: bool) -> Headers:
    """Trailers for a status the proxy gives itself (only: a trailers-only answer)."""
    text = urllib.parse.quote(message, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~").encode()
    trailers = [(b"grpc-status", str(code).encode()), (b"grpc-message", text)]
    if only:
        return [(b":status", b"200"), (b"content-type", b"application/grpc"), *trailers]
    return trailers


class Link:
    """One call: the client's stream (down) and the upstream's (up)."""

    __slots__ = (
        "answered",
        "at",
        "attempts",
        "cancel_reason",
        "code",
        "down",
        "finished",
        "message",
        "method",
        "peer",
        "pending",
        "replay",
        "replayed",
        "request",
        "retrying",
        "router",
        "sent",
        "start",
        "timeout",
        "timer",
        "transparent",
        "up",
    )

    def __init__(self, down: Stream, router: Router, method: str, peer: str) -> None:
        self.down = down
        self.up: Stream | None = None
        self.router = router
        self.pending: list[tuple[bytes, int, bool]] | None = []  # client DATA before up exists
        self.at = time.time()
        self.start = time.monotonic()
        self.method = method
        self.code: int | None = None
        self.message = ""
        self.answered = False  # response headers went to the client
        self.finished = False
        self.timer: asyncio.TimerHandle | None = None
        self.timeout: float | None = None  # the client's deadline as it came, seconds
        self.sent: Headers | None = None  # the request headers that went upstream
        self.cancel_reason = ""
        self.peer = peer
        self.replay: list[tuple[bytes, bool]] | None = None  # the request as sent, for a retry
        self.replayed = 0  # its size
        self.request: Headers | None = None  # the client's headers (kept for a retry)
        self.attempts = 0  # retries made
        self.transparent = False  # the one retry of a stream the upstream never saw, made
        self.retrying: asyncio.TimerHandle | None = None

    @property
    def requests(self) -> int:
        return self.down.messages

    @property
    def responses(self) -> int:
        return self.up.messages if self.up is not None else 0

    # --- set up by the router ---

    def _open(self, conn: Upstream, headers: Headers, end: bool) -> Stream:
        """A new upstream stream for the call, its headers sent (END_STREAM with them: end)."""
        up = conn.open_stream(self)
        up.limit = self.down.limit
        self.up = up
        self.sent = headers
        conn.send_headers(up, headers, end=end)
        return up

    def connect(self, conn: Upstream, headers: Headers) -> None:
        """Open the upstream stream with headers; what the client sent meanwhile follows."""
        if self.finished:
            return
        pending, self.pending = self.pending, None
        # END_STREAM with the headers when the client's came with its; else with the data
        self._open(conn, headers, not self.down.recv_open and not pending)
        for data, flow, fin in pending or ():
            self.data(self.down, data, flow, fin)

    def replay_on(self, conn: Upstream, headers: Headers) -> None:
        """The request again, on a new upstream stream (a retry: the client's side ended)."""
        if self.finished:
            return
        chunks = self.replay or []
        up = self._open(conn, headers, not chunks)
        for data, end in chunks:
            up.send_data(data, 0, None, end)

    def respond(self, code: int, message: str) -> None:
        """Answer the client with a status of the proxy's own and end the call."""
        if self.finished:
            return
        self.code, self.message = code, message
        if self.up is not None and not self.up.closed:
            self.up.reset(CANCEL)
        self.down.discard()
        self.down.send_headers(status_headers(code, message, only=not self.answered), end=True)
        if not self.finished:  # the client's stream was already gone
            self.finish()

    def expire(self) -> None:
        """The deadline the proxy gave the upstream passed without an answer."""
        self.timer = None
        self.respond(4, "Deadline Exceeded")

    # --- from the streams ---

    def data(self, stream: Stream, data: bytes, flow: int, end: bool) -> None:
        if stream is self.down and self.up is None:  # counted when it goes upstream
            if self.pending is not None:
                self.pending.append((data, flow, end))
            else:
                stream.conn.consumed_closed(flow)
            return
        if stream is not self.down and stream is not self.up:  # an attempt given up for a retry
            stream.conn.consumed_closed(flow)
            return
        if data and stream.count(data) < 0:
            stream.conn.consumed_closed(flow)
            self.too_large(stream)
            return
        if stream is self.down:
            assert self.up is not None
            replay = self.replay
            if replay is not None:
                self.replayed += len(data)
                if self.replayed > REPLAY_LIMIT:
                    self.replay = None
                else:
                    replay.append((data, end))
            self.up.send_data(data, flow, stream, end)
        else:
            if end and self.code is None:  # ended with no trailers: no status (said before the
                # END_STREAM that may finish the call goes to the client)
                self.code, self.message = 13, "the upstream ended the stream without a status"
            self.down.send_data(data, flow, stream, end)

    def headers(self, stream: Stream, headers: Headers, end: bool) -> None:
        """A header block from the upstream: the response headers, or its trailers."""
        if stream is not self.up:
            return
        if end:
            code, message = grpc_status_of(headers)
            if code is None:
                code, message = http_status_of(headers)
            if not self.answered and self.router.retry(self, code):
                return
            self.code, self.message = code, message
            self.down.send_headers(headers, end=True)
        elif not self.answered:
            self.answered = True
            self.replay = None  # answered: never tried again
            self.down.send_headers(headers, end=False)

    def too_large(self, stream: Stream) -> None:
        """A message over the size limit: the call ends RESOURCE_EXHAUSTED, as gRPC's own."""
        way = "sent" if stream is self.down else "received"
        self.respond(8, f"crgrpc proxy: a message {way} is larger than --max-msg-size ({stream.limit} bytes)")

    def reset(self, stream: Stream, code: int) -> None:
        """stream was reset by its peer."""
        if stream is self.down:
            self.client_gone(f"cancelled by the client{'' if code in (CANCEL, NO_ERROR) else f' (RST_STREAM {code})'}")
        elif stream is not self.up:
            return
        elif code == REFUSED_STREAM:
            self.refused()
        else:
            self.code = 1 if code in (CANCEL, NO_ERROR) else 13
            self.message = "cancelled by the upstream" if self.code == 1 else f"the upstream reset the stream (RST_STREAM {code})"
            self.down.reset(CANCEL if self.code == 1 else code)
            self.finish()

    def refused(self) -> None:
        """The upstream never saw the call (REFUSED_STREAM, GOAWAY): tried once more, else
        the client is told so (its gRPC may retry)."""
        if self.router.retry(self, 14, transparent=True):
            return
        self.code, self.message = 14, "the upstream refused the stream"
        self.down.reset(REFUSED_STREAM)
        self.finish()

    def lost(self, stream: Stream, exc: Exception | None) -> None:
        if stream is self.down:
            self.client_gone("cancelled by the client (its connection closed)")
        elif stream is self.up:
            why = f": {exc}" if exc else ""
            self.respond(14, f"crgrpc proxy: the upstream connection closed{why}")

    def client_gone(self, reason: str) -> None:
        if self.finished:
            return
        self.cancel_reason = reason
        if self.up is not None and not self.up.closed:
            self.up.reset(CANCEL)
        self.code = None
        self.finish()

    def done(self, stream: Stream) -> None:
        """Both sides of stream ended."""
        if stream is self.down:
            self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.replay = None
        for handle in (self.timer, self.retrying):
            if handle is not None:
                handle.cancel()
        self.timer = self.retrying = None
        up = self.up
        if up is not None and not up.closed:
            if up.local_open or up.recv_open:
                up.reset(CANCEL)  # e.g. answered while the client still sends
            else:
                up.drop()
        down = self.down
        if not down.closed:
            if down.local_open:
                down.reset(CANCEL)
            elif down.recv_open:
                down.reset(NO_ERROR)  # answered; the rest of the client's side is not needed
            else:
                down.drop()
        for _, flow, _ in self.pending or ():
            down.conn.consumed_closed(flow)
        self.pending = None
        self.router.finished(self)


class Downstream(Conn):
    """A client's connection to the proxy (h2c)."""

    client_side = False

    def __init__(self, router: Router, on_close: Callable[[Downstream], None]) -> None:
        super().__init__()
        self.router = router
        self.peer = ""
        self._on_close = on_close

    def own_settings(self) -> dict[int, int]:
        return {S_MAX_CONCURRENT_STREAMS: MAX_CLIENT_STREAMS}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        name = transport.get_extra_info("peername")
        if isinstance(name, tuple) and len(name) >= 2:
            host = str(name[0])
            self.peer = f"ipv6:[{host}]:{name[1]}" if ":" in host else f"ipv4:{host}:{name[1]}"
        elif name:
            self.peer = f"unix:{name}"
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._on_close(self)

    def on_headers(self, sid: int, headers: Headers, end: bool) -> None:
        stream = self.streams.get(sid)
        if stream is not None:  # trailers from a client: gRPC sends none; they end its side
            if end:
                stream.recv_open = False
                stream.link.data(stream, b"", 0, True)
                stream.received_end()
            return
        if sid % 2 == 0 or sid <= self.last_peer_sid:
            raise ConnectionError_(PROTOCOL_ERROR, f"stream {sid} cannot be opened by a client")
        self.last_peer_sid = sid
        stream = Stream(self, sid, None)
        if self.goaway_sent or len(self.streams) >= MAX_CLIENT_STREAMS:
            self.streams[sid] = stream
            stream.reset(REFUSED_STREAM)
            return
        method = ""
        for k, v in headers:
            if k == b":path":
                method = v.decode("utf-8", "replace").lstrip("/")
                break
        link = Link(stream, self.router, method, self.peer)
        stream.link = link
        self.streams[sid] = stream
        if end:
            stream.recv_open = False
        self.router.open(link, headers)

    def local_ended(self, stream: Stream) -> None:
        stream.link.finish()


class Upstream(Conn):
    """One connection to the target."""

    client_side = True

    def __init__(self, on_close: Callable[[Upstream], None]) -> None:
        super().__init__()
        self.next_sid = 1
        self.draining = False
        self._on_close = on_close
        self.settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def own_settings(self) -> dict[int, int]:
        return {S_ENABLE_PUSH: 0, S_MAX_CONCURRENT_STREAMS: 0}

    def on_settings(self) -> None:
        if not self.settled.done():  # its limits are known: streams may be opened
            self.settled.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.draining = True
        if not self.settled.done():
            self.settled.set_exception(ConnectionResetError(str(exc) if exc else "the connection closed"))
        super().connection_lost(exc)
        self._on_close(self)

    @property
    def room(self) -> int:
        """Streams it can still open."""
        if self.draining or self.closed or self.next_sid > 0x7FFFFFFF - 2:
            return 0
        return min(self.peer_max_streams, STREAMS_PER_CONNECTION) - len(self.streams)

    def open_stream(self, link: Link) -> Stream:
        sid = self.next_sid
        self.next_sid += 2
        stream = Stream(self, sid, link)
        self.streams[sid] = stream
        return stream

    def on_headers(self, sid: int, headers: Headers, end: bool) -> None:
        stream = self.streams.get(sid)
        if stream is None:
            return  # a stream the relay reset: its block was decoded, nothing more
        if end:
            stream.recv_open = False
        stream.link.headers(stream, headers, end)
        if end:
            stream.received_end()

    def on_goaway(self, last: int, code: int) -> None:
        self.draining = True
        for sid, stream in list(self.streams.items()):
            if sid > last:
                stream.drop()
                stream.link.refused()
        if not self.streams and self.transport is not None:
            self.transport.close()

    def done(self, stream: Stream) -> None:
        super().done(stream)
        if self.draining and not self.streams and self.transport is not None:
            self.transport.close()


__all__ = ["MAX_HEADER_LIST", "Downstream", "Link", "Router", "Upstream", "flush_all"]
