"""--retries uses gRPC's own retry policy: UNAVAILABLE (and --retry-on codes) are retried,
on reflection calls too, never after a response message arrived."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc

from .support.cli import run


class Flaky(echo_pb2_grpc.EchoServerServicer):  # type: ignore[misc]
    """Fails the first `failures` calls of each method with `code`, before any headers."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures = failures
        self.code = code
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _attempt(self, name: str, context: grpc.ServicerContext) -> None:
        with self._lock:
            n = self.attempts[name] = self.attempts.get(name, 0) + 1
        if n <= self.failures:
            context.abort(self.code, f"attempt {n} fails")

    def SayHello(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._attempt("SayHello", context)
        return echo_pb2.EchoReply(message=f"Hello {request.name}")

    def SayHelloStream(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        with self._lock:
            n = self.attempts["SayHelloStream"] = self.attempts.get("SayHelloStream", 0) + 1
        yield echo_pb2.EchoReply(message=f"Msg1 attempt {n}")
        context.abort(grpc.StatusCode.UNAVAILABLE, "dropped after one message")


class FlakyReflection(grpc.ServerInterceptor):  # type: ignore[misc]
    """Fails the first `failures` reflection calls with UNAVAILABLE."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self._lock = threading.Lock()

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if "ServerReflection" not in details.method:
            return continuation(details)
        with self._lock:
            self.attempts += 1
            fail = self.attempts <= self.failures

        if not fail:
            return continuation(details)

        def abort(request_iterator: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAVAILABLE, "reflection warming up")

        return grpc.stream_stream_rpc_method_handler(abort)


def serve(servicer: Flaky, interceptor: FlakyReflection | None = None) -> tuple[grpc.Server, str]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8), interceptors=[interceptor] if interceptor else []
    )
    echo_pb2_grpc.add_EchoServerServicer_to_server(servicer, server)
    reflection.enable_server_reflection(("echo.EchoServer", reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
def flaky() -> Iterator[tuple[Flaky, str]]:
    servicer = Flaky(failures=2)
    server, address = serve(servicer)
    yield servicer, address
    server.stop(0).wait()


def test_retries_recover_from_unavailable(flaky: tuple[Flaky, str]) -> None:
    servicer, address = flaky
    r = run("call", "--plaintext", address, "SayHello", "-d", '{"name":"r"}', "--retries", "2")
    assert (r.code, r.stdout) == (0, '{"message":"Hello r"}\n')
    assert servicer.attempts["SayHello"] == 3


def test_no_retries_fail_with_78(flaky: tuple[Flaky, str]) -> None:
    servicer, address = flaky
    r = run("call", "--plaintext", address, "SayHello", "--retries", "0")
    assert r.code == 64 + 14
    assert r.stderr.splitlines()[0] == "error: UNAVAILABLE: attempt 1 fails"
    assert servicer.attempts["SayHello"] == 1


def test_too_few_retries_fail(flaky: tuple[Flaky, str]) -> None:
    servicer, address = flaky
    r = run("call", "--plaintext", address, "SayHello", "--retries", "1")
    assert r.code == 78
    assert servicer.attempts["SayHello"] == 2


def test_no_retry_after_a_response_message(flaky: tuple[Flaky, str]) -> None:
    servicer, address = flaky
    r = run("call", "--plaintext", address, "SayHelloStream", "--retries", "4")
    assert r.code == 78
    assert r.stdout == '{"message":"Msg1 attempt 1"}\n'
    assert servicer.attempts["SayHelloStream"] == 1


def test_retry_on_adds_codes() -> None:
    servicer = Flaky(failures=1, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    server, address = serve(servicer)
    try:
        plain = run("call", "--plaintext", address, "SayHello", "--retries", "2")
        assert plain.code == 64 + 8
        servicer.attempts.clear()
        r = run("call", "--plaintext", address, "SayHello", "--retries", "2", "--retry-on", "RESOURCE_EXHAUSTED")
        assert r.code == 0
        assert servicer.attempts["SayHello"] == 2
    finally:
        server.stop(0).wait()


def test_reflection_calls_are_retried_too() -> None:
    interceptor = FlakyReflection(failures=2)
    server, address = serve(Flaky(failures=0), interceptor)
    try:
        failed = run("call", "--plaintext", address, "SayHello", "--no-schema-cache")
        assert failed.code == 78  # the reflection call's status
        interceptor.attempts = 0
        r = run("call", "--plaintext", address, "SayHello", "-d", '{"name":"x"}', "--retries", "3", "--no-schema-cache")
        assert (r.code, r.stdout) == (0, '{"message":"Hello x"}\n')
        assert interceptor.attempts >= 3
    finally:
        server.stop(0).wait()


@pytest.mark.parametrize(("argv", "message"), [
    (["--retries", "5"], "error: invalid value for '--retries': 5 is not a whole number from 0 to 4"),
    (["--retry-on", "NOPE"], "error: unknown status code 'NOPE' for --retry-on"),
])
def test_retry_usage_errors(argv: list[str], message: str) -> None:
    r = run("call", "--plaintext", "127.0.0.1:1", "SayHello", *argv)
    assert r.code == 2
    assert r.stderr.splitlines()[0] == message
