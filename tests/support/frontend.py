"""A real HTTP/2 front end that answers like Cloud Run's before the app sees a call.

Cloud Run refuses a request with a bad or missing token at its front end: a
raw HTTP/2 response with `:status` 401, 403 (or 503 when the service cannot
serve), no `grpc-status`, no body. A gRPC server cannot answer like that, so
this responder speaks HTTP/2 itself with the `h2` library on a plain socket
server on 127.0.0.1 (h2c, or TLS with ALPN "h2"). It records the request
headers of every stream, so tests can see what the client sent (the token).
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from .tls import CertFiles

Answer = Callable[[str], int]  # request path → HTTP status


@dataclass
class FrontEnd:
    """Answers every request with `status` (or `answer(path)`); start() / stop()."""

    status: int = 401
    tls: CertFiles | None = None
    answer: Answer | None = None
    requests: list[dict[str, str]] = field(default_factory=list)  # headers, in arrival order

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._stopping = threading.Event()
        self._ssl: ssl.SSLContext | None = None
        if self.tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls.cert), str(self.tls.key))
            ctx.set_alpn_protocols(["h2"])
            self._ssl = ctx

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FrontEnd:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.settimeout(0.05)
        self._sock = sock
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        with self._lock:
            return [r.get(":path", "") for r in self.requests]

    # --- HTTP/2 ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            sock = self._sock
            if sock is None:
                return
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        raw.settimeout(None)
        conn: socket.socket = raw
        try:
            if self._ssl is not None:
                conn = self._ssl.wrap_socket(raw, server_side=True)
            h2conn = h2.connection.H2Connection(
                config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
            )
            h2conn.initiate_connection()
            conn.sendall(h2conn.data_to_send())
            conn.settimeout(0.2)
            while not self._stopping.is_set():
                try:
                    data = conn.recv(65535)
                except TimeoutError:
                    continue
                if not data:
                    return
                try:
                    events = h2conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    return
                for event in events:
                    self._on_event(h2conn, event)
                    if isinstance(event, h2.events.ConnectionTerminated):
                        conn.sendall(h2conn.data_to_send())
                        return
                out = h2conn.data_to_send()
                if out:
                    conn.sendall(out)
        except (OSError, ssl.SSLError):
            return
        finally:
            with suppress(OSError):
                conn.close()

    def _on_event(self, h2conn: h2.connection.H2Connection, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = {str(k): str(v) for k, v in event.headers or ()}
            with self._lock:
                self.requests.append(headers)
            status = self.answer(headers.get(":path", "")) if self.answer else self.status
            # What Cloud Run's front end sends: an HTTP status, no grpc-status, no body.
            with suppress(h2.exceptions.H2Error):
                h2conn.send_headers(
                    event.stream_id, [(":status", str(status)), ("content-length", "0")],
                    end_stream=True,
                )
        elif isinstance(event, h2.events.DataReceived):
            # The request body of a stream already answered: keep the windows open.
            with suppress(h2.exceptions.H2Error):
                h2conn.acknowledge_received_data(
                    event.flow_controlled_length, event.stream_id
                )


@contextmanager
def front_end(
    status: int = 401, *, tls: CertFiles | None = None, answer: Answer | None = None
) -> Iterator[FrontEnd]:
    server = FrontEnd(status=status, tls=tls, answer=answer).start()
    try:
        yield server
    finally:
        server.stop()
