"""The local HTTP server the stand-ins share (token issuer, Admin API, tests' hostile endpoints).

A threaded server on a free 127.0.0.1 port that hands each request of the
given methods to one function, serving from a daemon thread; nothing logged.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

Handle = Callable[[BaseHTTPRequestHandler, str], None]


def serve_http(
    handle: Handle,
    *,
    methods: Sequence[str] = ("GET", "POST"),
    protocol: str = "HTTP/1.0",
    tls: ssl.SSLContext | None = None,
) -> ThreadingHTTPServer:
    """Start serving on 127.0.0.1 (a free port): handle(request, method) answers each
    request; over TLS with tls (a server-side context), else plain HTTP."""

    def answer(method: str) -> Callable[[BaseHTTPRequestHandler], None]:
        return lambda request: handle(request, method)

    attrs: dict[str, Any] = {
        "protocol_version": protocol,
        "log_message": lambda self, format, *args: None,
        **{f"do_{m}": answer(m) for m in methods},
    }
    handler = type("Handler", (BaseHTTPRequestHandler,), attrs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


def stop_http(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


_L = TypeVar("_L", bound="LocalHttp")


class LocalHttp:
    """A stand-in's server: `start` (by `_serve`) runs it, `stop` ends it, `with`
    does both; on 127.0.0.1 at .port, .url (http://127.0.0.1:PORT) and .host."""

    _server: ThreadingHTTPServer | None = None

    def start(self: _L) -> _L:
        raise NotImplementedError

    def __enter__(self: _L) -> _L:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handle: Handle, **options: Any) -> None:
        self._server = serve_http(handle, **options)

    def stop(self) -> None:
        if self._server is not None:
            stop_http(self._server)
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"
