"""The Echo servicer of the Cloud Run gRPC walkthrough (protos/echo.proto)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc

from . import echo_pb2, echo_pb2_grpc

DEFAULT_STREAM_COUNT = 2


def _revision() -> str:
    return os.environ.get("K_REVISION") or "local"


def _hello(name: str) -> str:
    return f"Hello {name} from K_REVISION {_revision()}"


def _fail(context: grpc.ServicerContext, code: int, where: str) -> None:
    status = _status_code(code)
    context.abort(status, f"fail_code {code} requested {where}")


def _status_code(code: int) -> grpc.StatusCode:
    for sc in grpc.StatusCode:
        if sc.value[0] == code:
            return sc
    return grpc.StatusCode.UNKNOWN


class EchoServicer(echo_pb2_grpc.EchoServerServicer):  # type: ignore[misc]
    """SayHello, SayHelloStream, SayHelloClientStream, SayHelloBidi."""

    def SayHello(
        self, request: echo_pb2.EchoRequest, context: grpc.ServicerContext
    ) -> echo_pb2.EchoReply:
        context.send_initial_metadata((("rpcheaderkey", "val"),))
        context.set_trailing_metadata((("rpctrailerkey", "val"),))
        if request.fail_code:
            _fail(context, request.fail_code, "before replying")
        return echo_pb2.EchoReply(message=_hello(request.name))

    def SayHelloStream(
        self, request: echo_pb2.EchoRequest, context: grpc.ServicerContext
    ) -> Iterator[echo_pb2.EchoReply]:
        context.send_initial_metadata((("streamheaderkey", "val"),))
        context.set_trailing_metadata((("streamtrailerkey", "val"),))
        count = request.count if request.count > 0 else DEFAULT_STREAM_COUNT
        for i in range(1, count + 1):
            if request.fail_code and i > request.fail_after:
                _fail(context, request.fail_code, f"after {request.fail_after} messages")
            yield echo_pb2.EchoReply(message=f"Msg{i} {_hello(request.name)}")
        if request.fail_code:
            _fail(context, request.fail_code, f"after {count} messages")

    def SayHelloClientStream(
        self, request_iterator: Iterator[echo_pb2.EchoRequest], context: grpc.ServicerContext
    ) -> echo_pb2.EchoReply:
        context.send_initial_metadata((("streamheaderkey", "val"),))
        context.set_trailing_metadata((("streamtrailerkey", "val"),))
        names: list[str] = []
        for request in request_iterator:
            if request.fail_code and len(names) >= request.fail_after:
                _fail(context, request.fail_code, f"after {len(names)} messages")
            names.append(request.name)
        return echo_pb2.EchoReply(message=_hello(", ".join(names)))

    def SayHelloBidi(
        self, request_iterator: Iterator[echo_pb2.EchoRequest], context: grpc.ServicerContext
    ) -> Iterator[echo_pb2.EchoReply]:
        context.send_initial_metadata((("streamheaderkey", "val"),))
        context.set_trailing_metadata((("streamtrailerkey", "val"),))
        for sent, request in enumerate(request_iterator):
            if request.fail_code and sent >= request.fail_after:
                _fail(context, request.fail_code, f"after {sent} messages")
            yield echo_pb2.EchoReply(message=_hello(request.name))
