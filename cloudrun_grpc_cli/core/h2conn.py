"""HTTP/2 connections for the proxy's relay (core/relay.py): frames, settings,
windows and header blocks, on either side of a connection.

The frame layer of RFC 9113 as a relay needs it, on an asyncio Protocol: a
frame's 9-byte head is read with one struct call and its payload is a slice;
header blocks are decoded and encoded by hpack (python-hyper's, the library
under h2). What a connection writes while it handles one read is sent in one
write at the end of that read (`flush_all`).

A `Stream` is one stream on one connection: its send window, and what waits
for that window (DATA, then END_STREAM or a trailers block). Flow control:
what a peer sends is given back to its windows (`Conn.consumed`) only once
the relay has written it on the other side, so a stream never holds more
than the window the relay advertised (STREAM_WINDOW).

h2 itself is not used: it builds objects and runs state machines per frame,
about 1 ms of CPU per unary call on the benchmark machine, several times the
cost of relaying the bytes (bench/PROXY_RESULTS.md).
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import Any

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20

# Error codes (RFC 9113 section 7).
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL = 5, 6, 7, 8
COMPRESSION_ERROR = 9

S_HEADER_TABLE_SIZE, S_ENABLE_PUSH, S_MAX_CONCURRENT_STREAMS = 1, 2, 3
S_INITIAL_WINDOW_SIZE, S_MAX_FRAME_SIZE, S_MAX_HEADER_LIST_SIZE = 4, 5, 6

DEFAULT_WINDOW = 65_535
DEFAULT_FRAME = 16_384
STREAM_WINDOW = 1 << 20  # what the relay lets a peer send on one stream before it is forwarded
CONN_WINDOW = 1 << 24  # and on one connection
MAX_HEADER_LIST = 1 << 20

_HEAD = struct.Struct(">BHBBI")  # length (24 bits as 8 + 16), type, flags, stream id
_SETTING = struct.Struct(">HI")
_WINDOW = struct.Struct(">I")
_GOAWAY = struct.Struct(">II")


def frame(kind: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _HEAD.pack(n >> 16, n & 0xFFFF, kind, flags, sid) + payload


def _unpadded(payload: bytes) -> bytes:
    """A PADDED frame's payload without its pad length byte and padding."""
    pad = payload[0] if payload else 0
    return payload[1:len(payload) - pad]


def settings_frame(values: dict[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(_SETTING.pack(k, v) for k, v in values.items()))


class ConnectionError_(Exception):
    """A connection-level protocol error: GOAWAY with this code, then close."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


Headers = list[tuple[bytes, bytes]]

# Everything a connection has to write, flushed once at the end of each read.
_dirty: set[Conn] = set()


def flush_all() -> None:
    while _dirty:
        _dirty.pop().flush()


class Stream:
    """One stream on one connection: its send window and what waits for it."""

    __slots__ = (
        "closed",
        "conn",
        "limit",
        "link",
        "local_open",
        "messages",
        "msg_head",
        "msg_left",
        "queue",
        "recv_open",
        "sid",
        "trailers",
        "unacked",
        "window",
    )

    def __init__(self, conn: Conn, sid: int, link: Any) -> None:
        self.conn = conn
        self.sid = sid
        self.window = conn.peer_initial_window
        # data, the flow length to give back, whose it is, END_STREAM with it
        self.queue: deque[tuple[bytes, int, Stream | None, bool]] = deque()
        self.trailers: Headers | None = None  # a trailers block after the queue
        self.link = link
        self.closed = False
        self.recv_open = True  # the peer may still send on it
        self.local_open = True  # we may still send on it
        self.unacked = 0  # bytes received and forwarded, not yet given back by WINDOW_UPDATE
        self.msg_left = 0  # bytes of the current gRPC message not yet seen (received side)
        self.msg_head = b""  # a message prefix split between frames
        self.messages = 0  # gRPC messages received on it
        self.limit = 0  # the largest message allowed (0: any)

    def count(self, data: bytes) -> int:
        """gRPC messages that begin in data (a 5-byte prefix each); -1 when one is
        larger than limit."""
        pos, n, seen = 0, len(data), 0
        left = self.msg_left
        while pos < n:
            if left:
                take = left if left < n - pos else n - pos
                left -= take
                pos += take
                continue
            head = self.msg_head
            need = 5 - len(head)
            head += data[pos:pos + need]
            pos += need
            if len(head) < 5:
                self.msg_head = head
                break
            self.msg_head = b""
            seen += 1
            left = int.from_bytes(head[1:5], "big")
            if self.limit and left > self.limit:
                self.messages += seen
                return -1
        self.msg_left = left
        self.messages += seen
        return seen

    # --- sending on this stream ---

    def send_data(self, data: bytes, flow: int, source: Stream | None, end: bool) -> None:
        """data on this stream as far as the windows allow, the rest queued; the flow
        bytes source received are given back to its peer once all of data is sent."""
        if self.closed or not self.local_open:
            if source is not None and flow:
                source.conn.consumed(source, flow)
            return
        if self.queue:
            self.queue.append((data, flow, source, end))
        else:
            self._send(data, flow, source, end)

    def _send(self, data: bytes, flow: int, source: Stream | None, end: bool) -> bool:
        """Write what the windows allow; the rest goes first in the queue. True: all sent."""
        room = min(self.window, self.conn.window)
        if len(data) > room:
            if room > 0:
                self._write(data[:room], False)
                data = data[room:]
            self.queue.appendleft((data, flow, source, end))
            return False
        self._write(data, end)
        if source is not None and flow:
            source.conn.consumed(source, flow)
        return True

    def _write(self, data: bytes, end: bool) -> None:
        conn = self.conn
        n = len(data)
        self.window -= n
        conn.window -= n
        size = conn.peer_max_frame
        sid = self.sid
        if n <= size:
            conn.out.append(frame(DATA, END_STREAM if end else 0, sid, data))
        else:
            for i in range(0, n, size):
                last = end and i + size >= n
                conn.out.append(frame(DATA, END_STREAM if last else 0, sid, data[i:i + size]))
        _dirty.add(conn)
        if end:
            self.sent_end()

    def drain(self) -> None:
        """Send what the windows now allow, then the trailers once nothing is queued."""
        q = self.queue
        while q:
            if not self._send(*q.popleft()):
                return
        if self.trailers is not None and not self.closed:
            block, self.trailers = self.trailers, None
            self.conn.send_headers(self, block, end=True)

    def send_headers(self, headers: Headers, *, end: bool) -> None:
        """A header block; trailers (end) wait for the queue."""
        if self.closed or not self.local_open:
            return
        if end and self.queue:
            self.trailers = headers
            return
        self.conn.send_headers(self, headers, end=end)

    def sent_end(self) -> None:
        self.local_open = False
        self.conn.local_ended(self)

    def received_end(self) -> None:
        """The peer's END_STREAM (recv_open is already False when the link saw it)."""
        self.recv_open = False
        if not self.local_open and not self.closed:
            self.conn.done(self)

    def discard(self) -> None:
        """Forget what waits to be sent, giving it back to its senders."""
        for _, flow, source, _ in self.queue:
            if source is not None and flow:
                source.conn.consumed(source, flow)
        self.queue.clear()
        self.trailers = None

    def reset(self, code: int) -> None:
        """RST_STREAM to the peer; the stream is gone."""
        if self.closed:
            return
        self.conn.out.append(frame(RST_STREAM, 0, self.sid, _WINDOW.pack(code)))
        _dirty.add(self.conn)
        self.drop()

    def drop(self) -> None:
        """Forget the stream; what waited in its queue is given back to its senders."""
        if self.closed:
            return
        self.closed = True
        self.discard()
        self.conn.streams.pop(self.sid, None)


class Conn(asyncio.Protocol):
    """One HTTP/2 connection, either side: frames, settings, windows, header blocks."""

    client_side = False

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.out: list[bytes] = []
        self.streams: dict[int, Stream] = {}
        self.window = DEFAULT_WINDOW  # the peer's connection window for what we send
        self.peer_initial_window = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_FRAME
        self.peer_max_streams = 1 << 31
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=MAX_HEADER_LIST)
        self.decoder.max_allowed_table_size = 4096
        self.unacked = 0
        self.preface = not self.client_side  # a server waits for the client's preface
        self.closed = False
        self.goaway_sent = False
        self.continuing: tuple[int, int, list[bytes]] | None = None  # a header block's sid, flags, parts so far
        self.last_peer_sid = 0
        self.held = 0  # bytes the peer sent that are not given back yet (its window's use)

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's are not asyncio.Transport
        head = PREFACE if self.client_side else b""
        values = {S_INITIAL_WINDOW_SIZE: STREAM_WINDOW, S_MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST}
        values.update(self.own_settings())
        self.out.append(head + settings_frame(values))
        self.out.append(frame(WINDOW_UPDATE, 0, 0, _WINDOW.pack(CONN_WINDOW - DEFAULT_WINDOW)))
        self.flush()

    def own_settings(self) -> dict[int, int]:
        return {}

    def data_received(self, data: bytes) -> None:
        try:
            self._receive(data)
        except ConnectionError_ as e:
            self.goaway(e.code, str(e))
        except hpack.HPACKError as e:
            self.goaway(COMPRESSION_ERROR, f"bad header block: {e}")
        except Exception as e:  # a bug in the relay: this connection ends, the proxy goes on
            self.goaway(INTERNAL_ERROR, "internal error")
            self.on_error(e)
        finally:
            flush_all()

    def on_error(self, exc: Exception) -> None:
        """The connection ended on an unexpected error (its owner may log it)."""

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        for stream in list(self.streams.values()):
            stream.drop()
            stream.link.lost(stream, exc)
        self.streams.clear()
        flush_all()

    # --- writing ---

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out)
            self.out.clear()
            if self.transport is not None and not self.closed:
                self.transport.write(data)

    def send_headers(self, stream: Stream, headers: Headers, *, end: bool) -> None:
        block = self.encoder.encode(headers, huffman=False)
        size = self.peer_max_frame
        flags = END_STREAM if end else 0
        if len(block) <= size:
            self.out.append(frame(HEADERS, flags | END_HEADERS, stream.sid, block))
        else:
            self.out.append(frame(HEADERS, flags, stream.sid, block[:size]))
            for i in range(size, len(block), size):
                last = i + size >= len(block)
                self.out.append(frame(CONTINUATION, END_HEADERS if last else 0, stream.sid, block[i:i + size]))
        _dirty.add(self)
        if end:
            stream.sent_end()

    def consumed(self, stream: Stream, n: int) -> None:
        """n bytes the peer sent on stream were forwarded: give the windows back."""
        self.consumed_closed(n)
        if stream.closed or not stream.recv_open:
            return
        stream.unacked += n
        if stream.unacked >= STREAM_WINDOW // 4:
            self.out.append(frame(WINDOW_UPDATE, 0, stream.sid, _WINDOW.pack(stream.unacked)))
            stream.unacked = 0
            _dirty.add(self)

    def goaway(self, code: int, text: str = "") -> None:
        if self.closed:
            return
        if not self.goaway_sent:
            self.goaway_sent = True
            self.out.append(frame(GOAWAY, 0, 0, _GOAWAY.pack(self.last_peer_sid, code) + text.encode()[:200]))
        self.flush()
        if code != NO_ERROR and self.transport is not None:
            self.transport.close()

    # --- reading ---

    def _receive(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if self.preface:
            if len(buf) < len(PREFACE):
                self.buf = buf
                return
            if not buf.startswith(PREFACE):
                raise ConnectionError_(PROTOCOL_ERROR, "not an HTTP/2 client")
            buf = buf[len(PREFACE):]
            self.preface = False
        pos, n = 0, len(buf)
        unpack = _HEAD.unpack_from
        while n - pos >= 9 and not self.closed:
            hi, lo, kind, flags, sid = unpack(buf, pos)
            length = (hi << 16) | lo
            end = pos + 9 + length
            if end > n:
                break
            if length > DEFAULT_FRAME:
                raise ConnectionError_(FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE")
            payload = buf[pos + 9:end]
            pos = end
            sid &= 0x7FFFFFFF
            if self.continuing is not None and kind != CONTINUATION:
                raise ConnectionError_(PROTOCOL_ERROR, "a header block was interrupted")
            if kind == DATA:
                self._data(sid, flags, payload)
            elif kind == HEADERS:
                self._headers(sid, flags, payload)
            elif kind == CONTINUATION:
                self._continuation(sid, flags, payload)
            elif kind == WINDOW_UPDATE:
                self._window_update(sid, payload)
            elif kind == RST_STREAM:
                stream = self.streams.get(sid)
                if stream is not None:
                    code = _WINDOW.unpack(payload)[0] if len(payload) == 4 else CANCEL
                    stream.drop()
                    stream.link.reset(stream, code)
            elif kind == SETTINGS:
                self._settings(sid, flags, payload)
            elif kind == PING:
                if not flags & ACK:
                    self.out.append(frame(PING, ACK, 0, payload))
                    _dirty.add(self)
            elif kind == GOAWAY:
                if len(payload) >= 8:
                    last, code = _GOAWAY.unpack_from(payload)
                    self.on_goaway(last & 0x7FFFFFFF, code)
            elif kind == PUSH_PROMISE:
                raise ConnectionError_(PROTOCOL_ERROR, "push is disabled")
            # PRIORITY and unknown frame types are ignored (RFC 9113 section 4.1, 5.5)
        self.buf = buf[pos:] if pos < n else b""

    def _data(self, sid: int, flags: int, payload: bytes) -> None:
        flow = len(payload)
        self.held += flow
        if self.held > CONN_WINDOW:
            raise ConnectionError_(FLOW_CONTROL_ERROR, "more data than the window allows")
        if flags & PADDED:
            payload = _unpadded(payload)
        stream = self.streams.get(sid)
        end = bool(flags & END_STREAM)
        if stream is None or not stream.recv_open:
            # a stream that is gone (reset, or ended on our side): the connection
            # window still wants the bytes back
            if sid == 0:
                raise ConnectionError_(PROTOCOL_ERROR, "DATA on stream 0")
            self.consumed_closed(flow)
            return
        if end:
            stream.recv_open = False
        stream.link.data(stream, payload, flow, end)
        if end:
            stream.received_end()

    def consumed_closed(self, n: int) -> None:
        """n bytes given back to the connection's window only (the stream's is gone or
        needs none): WINDOW_UPDATE once a quarter of the window is owed."""
        self.held -= n
        self.unacked += n
        if self.unacked >= CONN_WINDOW // 4:
            self.out.append(frame(WINDOW_UPDATE, 0, 0, _WINDOW.pack(self.unacked)))
            self.unacked = 0
            _dirty.add(self)

    def _headers(self, sid: int, flags: int, payload: bytes) -> None:
        if flags & PADDED:
            payload = _unpadded(payload)
        if flags & PRIORITY_FLAG:
            payload = payload[5:]
        if flags & END_HEADERS:
            self._block(sid, flags, payload)
        else:
            self.continuing = (sid, flags, [payload])

    def _continuation(self, sid: int, flags: int, payload: bytes) -> None:
        if self.continuing is None or self.continuing[0] != sid:
            raise ConnectionError_(PROTOCOL_ERROR, "CONTINUATION out of place")
        _, first, parts = self.continuing
        parts.append(payload)
        if flags & END_HEADERS:
            self.continuing = None
            self._block(sid, first, b"".join(parts))

    def _block(self, sid: int, flags: int, block: bytes) -> None:
        headers: Headers = self.decoder.decode(block, raw=True)  # type: ignore[assignment]  # (bytes, bytes) pairs
        self.on_headers(sid, headers, bool(flags & END_STREAM))

    def _window_update(self, sid: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ConnectionError_(FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size")
        inc = _WINDOW.unpack(payload)[0] & 0x7FFFFFFF
        if sid == 0:
            self.window += inc
            if self.window > 0x7FFFFFFF:
                raise ConnectionError_(FLOW_CONTROL_ERROR, "connection window overflow")
            for stream in list(self.streams.values()):
                if stream.queue or stream.trailers is not None:
                    stream.drain()
                    if self.window <= 0:
                        break
            return
        one = self.streams.get(sid)
        if one is not None:
            one.window += inc
            if one.queue or one.trailers is not None:
                one.drain()

    def _settings(self, sid: int, flags: int, payload: bytes) -> None:
        if flags & ACK:
            return
        if len(payload) % 6:
            raise ConnectionError_(FRAME_SIZE_ERROR, "SETTINGS of the wrong size")
        for i in range(0, len(payload), 6):
            key, value = _SETTING.unpack_from(payload, i)
            if key == S_INITIAL_WINDOW_SIZE:
                if value > 0x7FFFFFFF:
                    raise ConnectionError_(FLOW_CONTROL_ERROR, "initial window too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.window += delta
            elif key == S_MAX_FRAME_SIZE:
                if not DEFAULT_FRAME <= value <= 16_777_215:
                    raise ConnectionError_(PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                self.peer_max_frame = value
            elif key == S_HEADER_TABLE_SIZE:
                self.encoder.header_table_size = min(value, 4096)
            elif key == S_MAX_CONCURRENT_STREAMS:
                self.peer_max_streams = value
        self.out.append(frame(SETTINGS, ACK, 0))
        _dirty.add(self)
        self.on_settings()
        for stream in list(self.streams.values()):
            if stream.queue:
                stream.drain()

    # --- what each side does with streams ---

    def on_headers(self, sid: int, headers: Headers, end: bool) -> None:
        raise NotImplementedError

    def on_goaway(self, last: int, code: int) -> None:
        """The peer's GOAWAY: streams above last were never seen by it."""

    def on_settings(self) -> None:
        """The peer's SETTINGS were applied."""

    def local_ended(self, stream: Stream) -> None:
        """We sent END_STREAM on stream."""
        if not stream.recv_open:
            self.done(stream)

    def done(self, stream: Stream) -> None:
        """Both sides of stream sent END_STREAM."""
        if not stream.closed:
            stream.closed = True
            self.streams.pop(stream.sid, None)
            stream.link.done(stream)
