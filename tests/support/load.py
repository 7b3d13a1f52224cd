"""What the load tests serve: the TLS Echo service behind its token check (as Cloud
Run guards it), and server interceptors that stall, fail or record calls.

`guarded_echo` starts Echo on 127.0.0.1 with certificates made at test time;
every call (reflection included) must carry an ID token of the local issuer
for https://localhost. `args()` are the crgrpc flags that reach it: the CA
and a service-account key of the issuer, so crgrpc mints with google-auth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from cloudrun_grpc_cli.demo.tokencheck import TokenCheck

from .issuer import KEY_SA, Issuer
from .recorder import MetadataRecorder
from .servers import CertFiles, echo_server

AUD = "https://localhost"
ECHO = "/echo.EchoServer/"


def _echo_call(details: Any) -> bool:
    return str(details.method).startswith(ECHO)


class Stall(grpc.ServerInterceptor):  # type: ignore[misc]
    """Hold the Echo calls numbered in `calls` (1-based, in arrival order) for `seconds`."""

    def __init__(self, calls: Sequence[int], seconds: float) -> None:
        self.calls = set(calls)
        self.seconds = seconds
        self.count = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if _echo_call(details):
            with self._lock:
                self.count += 1
                n = self.count
            if n in self.calls:
                time.sleep(self.seconds)
        return continuation(details)


class FailPattern(grpc.ServerInterceptor):  # type: ignore[misc]
    """Answer Echo call n (1-based) with pattern[(n - 1) % len(pattern)]: None lets it
    through, a StatusCode rejects it."""

    def __init__(self, pattern: Sequence[grpc.StatusCode | None]) -> None:
        self.pattern = list(pattern)
        self.count = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or not _echo_call(details):
            return handler
        with self._lock:
            self.count += 1
            code = self.pattern[(self.count - 1) % len(self.pattern)]
        if code is None:
            return handler

        def reject(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(code, f"rejected by the test ({code.name.lower()})")

        return grpc.unary_unary_rpc_method_handler(
            reject, handler.request_deserializer, handler.response_serializer
        )


class PeerRecorder(grpc.ServerInterceptor):  # type: ignore[misc]
    """The client address (ip:port: one per TCP connection) of every unary Echo call."""

    def __init__(self) -> None:
        self.peers: list[str] = []
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        inner = handler.unary_unary

        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            with self._lock:
                self.peers.append(context.peer())
            return inner(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behavior, handler.request_deserializer, handler.response_serializer
        )


@dataclass
class SlowIssuer(Issuer):
    """An issuer whose token endpoint takes `delay` seconds to answer, and whose ID
    tokens were issued `age` seconds before (as a cached token is); `windows` holds
    (arrived, answered) of each token request (time.monotonic)."""

    delay: float = 0.0
    age: int = 0
    windows: list[tuple[float, float]] = field(default_factory=list)

    def id_token(self, audience: str, **kw: Any) -> str:
        if kw.get("now") is None:
            kw["now"] = int(time.time()) - self.age
        return super().id_token(audience, **kw)

    def _route(self, r: Any) -> Any:
        if r.path != "/token":
            return super()._route(r)
        arrived = time.monotonic()
        time.sleep(self.delay)
        answer = super()._route(r)
        self.windows.append((arrived, time.monotonic()))
        return answer


class Arrivals(grpc.ServerInterceptor):  # type: ignore[misc]
    """When (time.monotonic) each Echo call reached the server."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if _echo_call(details):
            self.times.append(time.monotonic())
        return continuation(details)


@dataclass
class Guarded:
    port: int
    recorder: MetadataRecorder
    ca: Path
    key_file: Path
    issuer: Issuer
    extra: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    def args(self) -> list[str]:
        return ["--cacert", str(self.ca), "--key-file", str(self.key_file)]

    def echo_calls(self, method: str = "") -> list[dict[str, str | bytes]]:
        """The metadata of every Echo call the server saw (method: one of them)."""
        return [md for m, md in self.recorder.calls if m.startswith(ECHO + method)]

    def tokens(self) -> list[str]:
        """The distinct bearer tokens of the Echo calls, in the order first seen."""
        seen: dict[str, None] = {}
        for md in self.echo_calls():
            value = md.get("authorization")
            if isinstance(value, str):
                seen.setdefault(value.removeprefix("Bearer "), None)
        return list(seen)


@contextmanager
def guarded_echo(
    issuer: Issuer,
    certs: CertFiles,
    tmp: Path,
    *interceptors: Any,
    clock_skew: int = 10,
) -> Iterator[Guarded]:
    """TLS Echo that checks every call's token (issuer's, aud https://localhost)."""
    recorder = MetadataRecorder()
    check = TokenCheck(AUD, certs=issuer.certs_url, allowed_emails=(KEY_SA,), clock_skew=clock_skew)
    key = issuer.write_service_account_key(tmp / "sa.json")
    with echo_server(tls=certs, interceptors=(recorder, check, *interceptors)) as srv:
        yield Guarded(srv.port, recorder, certs.ca, key, issuer, tuple(interceptors))
