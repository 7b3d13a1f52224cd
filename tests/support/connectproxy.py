"""A local HTTP proxy on 127.0.0.1 that logs what passed through it.

It speaks both forms a client uses: CONNECT host:port (gRPC, and requests for
https:// URLs: a tunnel, bytes piped both ways) and a forwarded request with
an absolute URI (requests for http:// URLs, which the local stand-ins are).
Each request line is logged with its Proxy-Authorization header, and the
bytes carried. `refuse` answers every request with that HTTP status instead
(407 with Proxy-Authenticate); `credentials` ("user:password") makes any
other Proxy-Authorization a 407.
"""

from __future__ import annotations

import base64
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

_REASONS = {403: "Forbidden", 407: "Proxy Authentication Required", 502: "Bad Gateway"}


@dataclass
class Passed:
    """One request the proxy saw."""

    method: str  # CONNECT, GET, POST…
    target: str  # host:port for CONNECT, the absolute URI otherwise
    proxy_authorization: str | None
    status: int  # what the proxy answered (200 for a tunnel it opened)
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class ConnectProxy:
    refuse: int | None = None
    credentials: str | None = None
    log: list[Passed] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._port = int(self._sock.getsockname()[1])
        self._stopped = False
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, credentials: str) -> str:
        return f"http://{credentials}@127.0.0.1:{self.port}"

    def start(self) -> ConnectProxy:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        with suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        self._sock.close()

    # --- what tests look at --------------------------------------------------------------

    def methods(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(p.method, p.target) for p in self.log]

    def targets(self, method: str | None = None) -> list[str]:
        with self._lock:
            return [p.target for p in self.log if method is None or p.method == method]

    # --- serving -------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            if self._stopped:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _record(self, passed: Passed) -> Passed:
        with self._lock:
            self.log.append(passed)
        return passed

    def _serve(self, client: socket.socket) -> None:
        try:
            while self._one(client):
                pass
        except OSError:
            pass
        finally:
            client.close()

    def _one(self, client: socket.socket) -> bool:
        """One request from client; True when the connection may carry another."""
        head, rest = _read_head(client)
        if head is None:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = ([*lines[0].split(" ", 2), "", ""])[:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        auth = headers.get("proxy-authorization")
        refusal = self.refuse
        if refusal is None and self.credentials is not None:
            expected = "Basic " + base64.b64encode(self.credentials.encode()).decode()
            if auth != expected:
                refusal = 407
        if refusal is not None:
            self._record(Passed(method, target, auth, refusal))
            extra = 'Proxy-Authenticate: Basic realm="test"\r\n' if refusal == 407 else ""
            body = f"refused by the test proxy ({refusal})".encode()
            client.sendall(
                f"HTTP/1.1 {refusal} {_REASONS.get(refusal, 'Refused')}\r\n{extra}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            return False
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            try:
                upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            except OSError:
                self._record(Passed(method, target, auth, 502))
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return False
            passed = self._record(Passed(method, target, auth, 200))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
                passed.bytes_up += len(rest)
            _pipe(client, upstream, passed)
            return False
        return self._forward(client, method, target, lines, headers, rest, auth)

    def _forward(
        self,
        client: socket.socket,
        method: str,
        target: str,
        lines: list[str],
        headers: dict[str, str],
        rest: bytes,
        auth: str | None,
    ) -> bool:
        import urllib.parse

        url = urllib.parse.urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            self._record(Passed(method, target, auth, 400))
            client.sendall(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return False
        length = int(headers.get("content-length") or 0)
        body = rest
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                break
            body += chunk
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        kept = [
            line
            for line in lines[1:]
            if line
            and line.split(":", 1)[0].strip().lower()
            not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")
        ]
        request = (
            "\r\n".join([f"{method} {path} HTTP/1.1", *kept, "Connection: close", "", ""]).encode()
            + body
        )
        passed = self._record(Passed(method, target, auth, 0, bytes_up=len(request)))
        try:
            upstream = socket.create_connection((url.hostname, url.port or 80), timeout=10)
        except OSError:
            passed.status = 502
            client.sendall(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            return False
        with upstream:
            upstream.sendall(request)
            answer = b""
            while True:
                chunk = upstream.recv(65536)
                if not chunk:
                    break
                answer += chunk
        status_line = answer.split(b"\r\n", 1)[0].split(b" ")
        passed.status = (
            int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0
        )
        passed.bytes_down = len(answer)
        client.sendall(answer)
        return False  # the answer ends with the upstream's close: so does this connection


def _read_head(sock: socket.socket) -> tuple[bytes | None, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
        if len(data) > 65536:
            return None, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _pipe(a: socket.socket, b: socket.socket, passed: Passed) -> None:
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 30)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
                if s is a:
                    passed.bytes_up += len(data)
                else:
                    passed.bytes_down += len(data)
    except OSError:
        return
    finally:
        b.close()


@contextmanager
def connect_proxy(
    *, refuse: int | None = None, credentials: str | None = None
) -> Iterator[ConnectProxy]:
    proxy = ConnectProxy(refuse=refuse, credentials=credentials).start()
    try:
        yield proxy
    finally:
        proxy.stop()
