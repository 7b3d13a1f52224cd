"""Hostile HTTP stand-ins for the endpoints crgrpc's auth talks to, all on 127.0.0.1.

`HostileHttp` is a threaded http.server whose every answer is decided by a
behaviour function of the recorded request. The behaviours here are what a
careless or broken token endpoint, IAM Credentials, STS or metadata server
does:

- `quote_back(status, content_type)`: quotes the request — its body and its
  Authorization header — back in the answer, in that content type (JSON,
  form-encoded, text/plain or text/html), as some endpoints do in their errors;
- `answer(status, content_type, body)`: a fixed answer (a 200 of HTML, JSON
  without `id_token`, a non-JWT `id_token`, …);
- `huge(size)`: a 200 whose body is `size` bytes, streamed in chunks;
- `hang()`: reads the request and never answers (the connection stays open);
- `trickle(delay)`: a whole answer, sent a byte at a time from its status line on;
- `metadata_server(identity)`: a sane metadata server but for its identity
  endpoint, which does what `identity` does.

Metadata-server pings (GET / with Metadata-Flavor: Google) are answered as a
real metadata server would, unless `ping=False`, so that the metadata source
is chosen and its next request meets the behaviour.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from cloudrun_grpc_cli.demo.httpserver import LocalHttp


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def fields(self) -> dict[str, Any]:
        """The body as a dict: form-encoded or JSON, whichever it is."""
        if self.headers.get("content-type", "").startswith("application/json"):
            try:
                data = json.loads(self.body or b"null")
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        return dict(urllib.parse.parse_qsl(self.text))


@dataclass
class Answer:
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b""
    size: int | None = None  # stream this many bytes of filler instead of body
    hang: bool = False  # never answer
    trickle: float | None = None  # send the whole answer, status line included, a byte per this many seconds
    declare_length: bool = True  # with `size`: False sends no Content-Length (the body ends at close)
    headers: dict[str, str] = field(default_factory=dict)


Behaviour = Callable[[Request], Answer]


def answer(status: int, content_type: str, body: str | bytes | dict[str, Any]) -> Behaviour:
    data = body if isinstance(body, bytes) else (json.dumps(body) if isinstance(body, dict) else body).encode()
    return lambda _req: Answer(status, content_type, data)


def quote_back(status: int, content_type: str) -> Behaviour:
    """Answer `status` quoting the request's body and Authorization header, in content_type."""

    def behave(req: Request) -> Answer:
        auth = req.headers.get("authorization", "")
        if content_type == "application/json":
            body = json.dumps(
                {
                    "error": "invalid_request",
                    "error_description": f"could not use {req.text} (sent with {auth or 'no authorization'})",
                    "request": req.fields(),
                    "headers": {"authorization": auth},
                    "raw": req.text,
                }
            )
        elif content_type == "application/x-www-form-urlencoded":
            body = "error=invalid_request&" + req.text + "&authorization=" + urllib.parse.quote(auth)
        elif content_type == "text/html":
            body = f"<html><body><h1>Error {status}</h1><pre>{req.text}\nAuthorization: {auth}</pre></body></html>"
        else:
            body = f"bad request: {req.text}\nAuthorization: {auth}\n"
        return Answer(status, content_type, body.encode())

    return behave


def huge(size: int = 64 << 20, content_type: str = "application/json", *, declare_length: bool = True) -> Behaviour:
    """A 200 of `size` bytes (the start of a JSON object that never ends)."""
    return lambda _req: Answer(200, content_type, size=size, declare_length=declare_length)


def trickle(delay: float = 0.2) -> Behaviour:
    """A valid-looking answer sent one byte every `delay` seconds, from its status line on."""
    body = json.dumps({"id_token": "x" * 200}).encode()
    return lambda _req: Answer(200, "application/json", body, trickle=delay)


def hang() -> Behaviour:
    return lambda _req: Answer(hang=True)


def metadata_server(identity: Behaviour, email: str = "default-sa@test-project.iam.gserviceaccount.com") -> Behaviour:
    """A metadata server whose identity endpoint does what `identity` does (the rest is sane)."""
    flavor = {"Metadata-Flavor": "Google"}

    def behave(req: Request) -> Answer:
        if req.path.endswith("/service-accounts/default/"):
            info = {"aliases": ["default"], "email": email, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
            return Answer(200, "application/json", json.dumps(info).encode(), headers=flavor)
        if req.path.endswith("/service-accounts/default/identity"):
            ans = identity(req)
            ans.headers = {**flavor, **ans.headers}
            return ans
        return Answer(404, "text/plain", b"not found", headers=flavor)

    return behave


class HostileHttp(LocalHttp):
    """Start with .start() or `with HostileHttp(behaviour) as h:`; .url is http://127.0.0.1:PORT."""

    def __init__(self, behaviour: Behaviour, *, ping: bool = True) -> None:
        self.behaviour = behaviour
        self.ping = ping
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._release = threading.Event()  # lets hanging handlers go at stop()

    def start(self) -> HostileHttp:
        self._serve(self._handle, protocol="HTTP/1.1")
        return self

    def stop(self) -> None:
        self._release.set()
        super().stop()

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        req = Request(
            method=method,
            path=url.path,
            query=dict(urllib.parse.parse_qsl(url.query)),
            headers={k.lower(): v for k, v in h.headers.items()},
            body=h.rfile.read(length) if length else b"",
        )
        with self._lock:
            self.requests.append(req)
        if self.ping and method == "GET" and req.path in ("/", "/computeMetadata/v1/", "/computeMetadata/v1"):
            ans = Answer(200, "application/text", b"computeMetadata/", headers={"Metadata-Flavor": "Google"})
        else:
            ans = self.behaviour(req)
        if ans.hang:
            self._release.wait(120)
            h.close_connection = True
            return
        if ans.trickle is not None:
            raw = (
                f"HTTP/1.1 {ans.status} OK\r\nContent-Type: {ans.content_type}\r\n"
                f"Content-Length: {len(ans.body)}\r\n\r\n"
            ).encode() + ans.body
            try:
                for i in range(len(raw)):
                    if self._release.wait(ans.trickle):
                        break
                    h.wfile.write(raw[i : i + 1])
                    h.wfile.flush()
            except OSError:
                pass
            h.close_connection = True
            return
        try:
            h.send_response(ans.status)
            h.send_header("Content-Type", ans.content_type)
            for k, v in ans.headers.items():
                h.send_header(k, v)
            if ans.size is None:
                h.send_header("Content-Length", str(len(ans.body)))
                h.end_headers()
                h.wfile.write(ans.body)
                return
            if ans.declare_length:
                h.send_header("Content-Length", str(ans.size))
            h.send_header("Connection", "close")
            h.end_headers()
            chunk = b'{"id_token": "' + b"A" * (1 << 16)
            sent = 0
            start = time.monotonic()
            while sent < ans.size and not self._release.is_set() and time.monotonic() - start < 60:
                piece = chunk[: ans.size - sent]
                h.wfile.write(piece)
                sent += len(piece)
        except OSError:
            pass  # the client stopped reading: what a bounded client does
        h.close_connection = True
