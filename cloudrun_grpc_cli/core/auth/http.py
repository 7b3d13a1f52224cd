"""The bounded HTTP transport every mint goes through (google-auth's Request over it).

One `BoundedSession` serves one mint — every request google-auth makes for
it (token endpoint, STS, IAM Credentials, the metadata server) and the
generateIdToken call. It bounds them all (README "Security"):

- time: a connection within `connect` seconds (10 s), and the whole mint
  within `total` seconds (30 s) — each request's timeout is what is left of
  that, and a watchdog shuts the sockets down when it runs out, so that even
  an endpoint trickling bytes cannot stretch it;
- size: an answer is read as a stream and cut at `max_bytes` (1 MiB);

goes through core.egress's proxy decision (--proxy or the proxy variables;
the metadata server always direct; a proxy that refuses is egress's
ConnectError, exit 4, raised as it is), and turns what goes wrong into one
short reason naming the endpoint (its URL without the query): "connection
refused", "no answer within 30 s", "answer larger than 1 MiB". Each exchange is recorded (`exchanges`, `last`) for the
caller to explain a failure, and the secrets sent and received are handed to
`scrub.remember`. Imports requests: load it only when minting.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests
import requests.adapters
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from . import scrub

CONNECT_TIMEOUT = 10.0
TOTAL_TIMEOUT = 30.0
MAX_ANSWER_BYTES = 1 << 20
_CHUNK = 64 * 1024


class HttpBounds(NamedTuple):
    """How long one mint may take and how large an answer may be."""

    connect: float = CONNECT_TIMEOUT
    total: float = TOTAL_TIMEOUT
    max_bytes: int = MAX_ANSWER_BYTES

    @classmethod
    def within(cls, total: float) -> HttpBounds:
        """`total` seconds in all, a connection within min(10 s, total)."""
        return cls(connect=min(CONNECT_TIMEOUT, total), total=total)


def endpoint(url: str) -> str:
    """scheme://host[:port]/path of url: no query, fragment or user info."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0]
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"


@dataclass
class Exchange:
    """One request of a mint and what came of it."""

    method: str
    url: str  # endpoint(url): no query
    status: int | None = None
    content_type: str = ""  # the media type, without parameters
    body: bytes = b""
    problem: str | None = None  # set when no whole answer came

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def is_json(self) -> bool:
        return self.json() is not None

    @property
    def answered(self) -> str:
        """"answered 200 text/html" (the media type, or "without a content type")."""
        return f"answered {self.status} {self.content_type or 'without a content type'}"

    def text(self, limit: int = 200) -> str:
        """The body on one line, tags dropped, secrets scrubbed, at most `limit` characters."""
        import re

        raw = self.body[: limit * 8].decode("utf-8", "replace")
        if "html" in self.content_type or raw.lstrip().startswith("<"):
            raw = re.sub(r"<[^>]*>", " ", raw)
        flat = " ".join(scrub.scrub(raw).split())
        return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class EndpointError(Exception):
    """A request that got no whole answer; str() is "URL: reason".

    Not a requests.RequestException, so that google-auth's Request does not
    turn it into a TransportError, which its metadata and token-endpoint code
    would retry after pauses of up to 8 s, stretching the bound: it goes
    straight up to the mint, which explains it from `BoundedSession.last`.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class _Watch:
    """Shuts a mint's sockets down once its deadline has passed."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._socks.append(sock)
            if self._timer is None and not self.fired:
                self._timer = threading.Timer(max(0.0, self.deadline - time.monotonic()), self.fire)
                self._timer.daemon = True
                self._timer.start()
            late = self.fired
        if late:
            _shutdown(sock)

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            socks = list(self._socks)
        for sock in socks:
            _shutdown(sock)

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._socks.clear()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """An HTTPAdapter whose connections hand their sockets to a _Watch."""

    def __init__(self, watch: _Watch) -> None:
        self._watch = watch
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        watch = self._watch

        class Conn(HTTPConnection):
            def connect(self) -> None:
                super().connect()
                watch.add(self.sock)

        class TlsConn(HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                watch.add(self.sock)

        class Pool(HTTPConnectionPool):
            ConnectionCls = Conn

        class TlsPool(HTTPSConnectionPool):
            ConnectionCls = TlsConn

        self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TlsPool}


def _chain(exc: BaseException) -> list[BaseException]:
    """exc, its causes and contexts, and the exceptions in their args (urllib3 nests them)."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 20:
        e = todo.pop(0)
        if any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        for nxt in (e.__cause__, e.__context__, getattr(e, "reason", None)):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    return seen


def connection_problem(exc: BaseException, bounds: HttpBounds) -> str:
    """What went wrong, in a few words, for an exception of requests or urllib3."""
    chain = _chain(exc)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"no connection within {bounds.connect:g} s"
    if isinstance(exc, requests.exceptions.Timeout) or any(
        isinstance(e, (TimeoutError, socket.timeout)) for e in chain
    ):
        return f"no answer within {bounds.total:g} s"
    for e in chain:
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(e, ssl.SSLError):
            return f"TLS handshake failed ({getattr(e, 'reason', None) or type(e).__name__})"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError,)) or any(
        type(e).__name__ in ("RemoteDisconnected", "IncompleteRead", "ProtocolError") for e in chain
    ):
        return "connection closed before a whole answer"
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return "not a valid URL"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "an answer that cannot be decoded"
    return f"request failed ({type(exc).__name__})"


class BoundedSession(requests.Session):
    """A requests.Session bounded in time and size for one mint (module docstring)."""

    def __init__(self, bounds: HttpBounds | None = None, *, proxy: str | None = None) -> None:
        from .. import egress

        super().__init__()
        self.proxy = proxy  # --proxy; None: the proxy variables
        self.trust_env = False  # proxies are core.egress's decision; netrc is never read
        bundle = egress.ca_bundle()
        if bundle:
            self.verify = bundle
        self.bounds = bounds or HttpBounds()
        self.deadline = time.monotonic() + self.bounds.total
        self.exchanges: list[Exchange] = []
        self._watch = _Watch(self.deadline)
        adapter = _WatchedAdapter(self._watch)
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self.headers["Accept-Encoding"] = "identity"

    @property
    def last(self) -> Exchange | None:
        return self.exchanges[-1] if self.exchanges else None

    def close(self) -> None:
        self._watch.cancel()
        super().close()

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        url_s = url.decode() if isinstance(url, bytes) else str(url)
        method_s = method.decode() if isinstance(method, bytes) else str(method)
        ex = Exchange(method_s.upper(), endpoint(url_s))
        self.exchanges.append(ex)
        _remember_request(kwargs)
        left = self.deadline - time.monotonic()
        if left <= 0 or self._watch.fired:
            ex.problem = f"no answer within {self.bounds.total:g} s"
            raise EndpointError(ex.url, ex.problem)
        given = kwargs.get("timeout")
        wait = min(float(given), left) if isinstance(given, (int, float)) and given > 0 else left
        kwargs["timeout"] = (min(self.bounds.connect, wait), wait)
        kwargs["stream"] = True
        kwargs.setdefault("allow_redirects", False)
        from .. import egress

        proxy, kwargs["proxies"] = egress.route(url_s, self.proxy)
        try:
            resp = super().request(method, url, *args, **kwargs)
            egress.check_answer(proxy, url_s, resp.status_code)
            ex.status = resp.status_code
            ex.content_type = resp.headers.get("content-type", "").split(";")[0].strip().lower()
            ex.body = self._read(resp, ex)
            if self._watch.fired:  # cut off by the deadline: what came is not the answer
                ex.problem = f"no answer within {self.bounds.total:g} s"
                raise EndpointError(ex.url, ex.problem)
        except requests.RequestException as exc:
            refused = egress.refusal(proxy, url_s, exc)
            if refused is not None:
                ex.problem = refused.message
                raise refused from None
            ex.problem = (
                f"no answer within {self.bounds.total:g} s"
                if self._watch.fired
                else connection_problem(exc, self.bounds)
            )
            raise EndpointError(ex.url, ex.problem) from None
        resp._content = ex.body  # what .content, .text and .json() read
        resp._content_consumed = True  # type: ignore[attr-defined]
        _remember_answer(ex)
        return resp

    def _read(self, resp: requests.Response, ex: Exchange) -> bytes:
        cap = self.bounds.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            resp.close()
            ex.problem = f"answer larger than {size_text(cap)}"
            raise EndpointError(ex.url, ex.problem)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                size += len(chunk)
                if size > cap:
                    ex.problem = f"answer larger than {size_text(cap)}"
                    raise EndpointError(ex.url, ex.problem)
                chunks.append(chunk)
        finally:
            if ex.problem is not None:
                resp.close()
        return b"".join(chunks)


def _remember_request(kwargs: Mapping[str, Any]) -> None:
    headers = kwargs.get("headers") or {}
    content_type = ""
    for name, value in dict(headers).items():
        low = str(name).lower()
        if low in ("authorization", "proxy-authorization", "x-goog-iam-authorization-token"):
            scrub.remember_authorization(str(value))
        elif low == "content-type":
            content_type = str(value)
    data = kwargs.get("data")
    if isinstance(data, Mapping):
        scrub.remember_fields(data)
    elif isinstance(data, (bytes, str)):
        scrub.remember_body(data, content_type)
    if kwargs.get("json") is not None:
        scrub.remember_fields(kwargs["json"])


def _remember_answer(ex: Exchange) -> None:
    scrub.remember_body(ex.body, ex.content_type)
    if ex.status == 200 and not ex.is_json:
        # The metadata server answers an ID token as text: a single word.
        word = ex.body.decode("utf-8", "replace").strip()
        if len(word) >= 20 and not any(c.isspace() for c in word):
            scrub.remember(word)


def google_request(
    bounds: HttpBounds | None = None, *, proxy: str | None = None
) -> tuple[Any, BoundedSession]:
    """google-auth's Request over a new BoundedSession, and that session."""
    from google.auth.transport.requests import Request

    session = BoundedSession(bounds, proxy=proxy)
    return Request(session=session), session
