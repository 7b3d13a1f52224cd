"""Reflection against real grpcio servers: v1 only, v1alpha only, both, none, failures."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import json_format, message_factory

from cloudrun_grpc_cli.core.schema import (
    SchemaSource,
    reflection_source,
    resolve_method,
    symbol_kind,
    to_proto_text,
)
from cloudrun_grpc_cli.errors import ConnectError, ExitCode, RpcStatusError, SchemaError
from tests.support.reflection_servers import (
    ReflectionServer,
    source_for,
    start_server,
    start_shop_server,
    start_silent_server,
)

ECHO_SERVICE = """\
service EchoServer {
  rpc SayHello(echo.EchoRequest) returns (echo.EchoReply);
  rpc SayHelloStream(echo.EchoRequest) returns (stream echo.EchoReply);
  rpc SayHelloClientStream(stream echo.EchoRequest) returns (echo.EchoReply);
  rpc SayHelloBidi(stream echo.EchoRequest) returns (stream echo.EchoReply);
}"""


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ReflectionServer]:
    versions = getattr(request, "param", ("v1", "v1alpha"))
    srv = start_server(versions)
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("server", "used"),
    [(("v1",), "v1"), (("v1alpha",), "v1alpha"), (("v1", "v1alpha"), "v1")],
    indirect=["server"],
    ids=["v1-only", "v1alpha-only", "both"],
)
def test_each_reflection_version(server: ReflectionServer, used: str) -> None:
    src = source_for(server)
    assert isinstance(src, SchemaSource)
    services = src.list_services()
    assert "echo.EchoServer" in services
    assert services == sorted(services)
    assert to_proto_text(src.find_service("echo.EchoServer")) == ECHO_SERVICE
    assert src.version == used
    other = "v1alpha" if used == "v1" else "v1"
    assert server.requests[other] == 0
    assert server.requests[used] >= 2


@pytest.mark.parametrize("server", [("v1alpha",)], indirect=True)
def test_version_remembered_after_fallback(server: ReflectionServer) -> None:
    src = source_for(server)
    src.list_services()
    src.find_service("echo.EchoServer")
    src.find_symbol("echo.EchoRequest.name")
    assert src.version == "v1alpha"
    assert server.requests["v1"] == 0  # v1 was UNIMPLEMENTED, never counted


def test_no_reflection_is_schema_error_with_hint() -> None:
    srv = start_server(versions=())
    try:
        src = source_for(srv)
        with pytest.raises(SchemaError) as info:
            src.list_services()
        assert info.value.exit_code == ExitCode.SCHEMA == 5
        assert str(info.value) == "server does not support reflection"
        assert any("--proto" in h and "--protoset" in h for h in info.value.hints)
        with pytest.raises(SchemaError):
            resolve_method(src, "echo.EchoServer/SayHello")
    finally:
        srv.stop()


def test_metadata_called_per_rpc_and_sent(server: ReflectionServer) -> None:
    calls: list[int] = []

    def metadata() -> list[tuple[str, str]]:
        calls.append(1)
        return [("authorization", f"Bearer t{len(calls)}"), ("x-user", "me")]

    src = reflection_source(server.channel(), metadata=metadata, timeout=10, address=server.address)
    src.list_services()
    src.find_service("echo.EchoServer")
    assert len(calls) == 2
    assert [m["authorization"] for m in server.metadata] == ["Bearer t1", "Bearer t2"]
    assert all(m["x-user"] == "me" for m in server.metadata)


def test_list_services_is_lazy(server: ReflectionServer) -> None:
    src = source_for(server)
    src.list_services()
    assert server.total == 1
    assert src.file_descriptor_set().file == []
    src.list_services()
    assert server.total == 1  # remembered


def test_method_symbol_falls_back_to_service(server: ReflectionServer) -> None:
    # grpcio's reflection cannot find "echo.EchoServer.SayHello" itself.
    src = source_for(server)
    method = src.find_symbol("echo.EchoServer.SayHello")
    assert symbol_kind(method) == "method"
    assert src.find_symbol("echo.EchoServer/SayHelloBidi").name == "SayHelloBidi"
    assert to_proto_text(method) == "rpc SayHello(echo.EchoRequest) returns (echo.EchoReply);"


def test_find_symbol_kinds(server: ReflectionServer) -> None:
    src = source_for(server)
    assert symbol_kind(src.find_symbol("echo.EchoServer")) == "service"
    assert symbol_kind(src.find_symbol("echo.EchoRequest")) == "message"
    assert symbol_kind(src.find_symbol(".echo.EchoRequest.fail_code")) == "field"


def test_unknown_symbol_suggests(server: ReflectionServer) -> None:
    src = source_for(server)
    with pytest.raises(SchemaError) as info:
        src.find_symbol("echo.EchoRequst")
    assert "echo.EchoRequst" in str(info.value)
    assert any("echo.EchoRequest" in h for h in info.value.hints)
    with pytest.raises(SchemaError) as info2:
        src.find_service("echo.EchoSrver")
    assert any("echo.EchoServer" in h for h in info2.value.hints)


def test_richer_schema_and_message_classes() -> None:
    srv = start_shop_server()
    try:
        src = source_for(srv)
        product = src.find_symbol("shop.v1.Product")
        assert symbol_kind(product) == "message"
        assert symbol_kind(src.find_symbol("shop.v1.Product.Kind")) == "enum"
        assert symbol_kind(src.find_symbol("shop.v1.Product.PHYSICAL")) == "enum value"
        assert symbol_kind(src.find_symbol("shop.v1.ACTIVE")) == "enum value"
        assert symbol_kind(src.find_symbol("shop.v1.Status.RETIRED")) == "enum value"
        cls = message_factory.GetMessageClass(product)
        msg = json_format.ParseDict(
            {
                "id": "p1",
                "labels": {"a": "b"},
                "created": "2024-01-02T03:04:05Z",
                "variants": [{"price": {"currencyCode": "EUR", "units": "3"}}],
            },
            cls(),
        )
        assert json_format.MessageToDict(msg)["created"] == "2024-01-02T03:04:05Z"
        names = {f.name for f in src.file_descriptor_set().file}
        assert {
            "shop/v1/catalog.proto",
            "shop/common/money.proto",
            "google/protobuf/timestamp.proto",
        } <= names
    finally:
        srv.stop()


def test_silent_server_hits_deadline_not_a_hang() -> None:
    srv = start_silent_server()
    try:
        src = source_for(srv, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(RpcStatusError) as info:
            src.list_services()
        assert time.monotonic() - start < 10
        assert info.value.exit_code == ExitCode.DEADLINE
    finally:
        srv.stop()


def test_refused_connection_is_connect_error() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    src = reflection_source(
        grpc.insecure_channel(f"127.0.0.1:{port}"),
        metadata=list,
        timeout=5,
        address=f"127.0.0.1:{port}",
    )
    with pytest.raises(ConnectError):
        src.list_services()


def test_reflection_call_status_maps_to_64_plus_n() -> None:
    def answer(requests, context):  # type: ignore[no-untyped-def]
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "no invoker role")
        yield  # pragma: no cover

    srv = start_server(("v1",), answer=answer, echo=False)
    try:
        with pytest.raises(RpcStatusError) as info:
            source_for(srv).list_services()
        assert info.value.exit_code == 64 + 7
        assert "no invoker role" in str(info.value)
    finally:
        srv.stop()


class StreamEnds(grpc.ServerInterceptor):  # type: ignore[misc]
    """How each reflection stream ended, as the server saw it: True when the RPC was
    still active as its handler returned (the client half-closed), False when the
    client had cancelled it."""

    def __init__(self, linger: float = 0) -> None:
        self.ends: list[bool] = []
        self.linger = linger  # seconds the handler keeps the stream open after its answers

    def intercept_service(self, continuation, details):  # type: ignore[no-untyped-def]
        handler = continuation(details)
        if handler is None or "ServerReflection" not in details.method:
            return handler
        inner = handler.stream_stream

        def stream(requests, context):  # type: ignore[no-untyped-def]
            try:
                yield from inner(requests, context)
                end = time.monotonic() + self.linger
                while context.is_active() and time.monotonic() < end:
                    time.sleep(0.01)
            finally:
                self.ends.append(context.is_active())

        return grpc.stream_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )


def test_a_call_ends_its_reflection_streams_without_cancelling_them() -> None:
    # Half-closed, a served stream ends with the server's OK while the call goes on;
    # a cancel would show as a CANCELLED call in a server's, a front end's or
    # crgrpc proxy's log for every reflection stream.
    from tests.support.cli import run
    from tests.support.servers import echo_server

    ends = StreamEnds()
    with echo_server(interceptors=(ends,)) as srv:
        r = run("call", "--plaintext", f"127.0.0.1:{srv.port}", "SayHello", "-d", '{"name": "x"}')
        assert (r.code, r.stdout, r.stderr) == (0, '{"message":"Hello x from K_REVISION local"}\n', "")
        deadline = time.monotonic() + 5
        while len(ends.ends) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    # v1 (UNIMPLEMENTED here, no handler) is not seen; v1alpha's list and file streams are.
    assert ends.ends and all(ends.ends), ends.ends


def test_list_waits_for_the_servers_end_of_its_stream_but_not_for_long() -> None:
    from tests.support.cli import run
    from tests.support.servers import echo_server

    ends = StreamEnds()
    with echo_server(interceptors=(ends,)) as srv:
        r = run("list", "--plaintext", f"127.0.0.1:{srv.port}")
        assert (r.code, r.stderr) == (0, "")
        assert r.lines == [{"service": "echo.EchoServer"}, {"service": "grpc.reflection.v1alpha.ServerReflection"}]
        assert ends.ends == [True]  # ended by the server before list returned

    # A server that answers but never ends the stream: list gives up waiting after
    # a second, cancels it, and is done.
    stuck = StreamEnds(linger=30)
    with echo_server(interceptors=(stuck,)) as srv:
        start = time.monotonic()
        r = run("list", "--plaintext", f"127.0.0.1:{srv.port}")
        took = time.monotonic() - start
        assert (r.code, r.stderr) == (0, "")
        assert len(r.lines) == 2
        assert took < 5, took
        deadline = time.monotonic() + 5
        while not stuck.ends and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stuck.ends == [False]  # cancelled by the client
