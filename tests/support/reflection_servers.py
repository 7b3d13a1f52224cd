"""Reflection test servers: v1 only, v1alpha only, both, none, replayed recordings, custom.

Every server listens on 127.0.0.1 port 0 and counts the reflection requests
it receives (per version), so tests can tell whether a client dialled.
grpcio-reflection only ships v1alpha; its servicer also answers v1 here by
registering the same handler under grpc.reflection.v1's method path (the
two protocols are wire-compatible).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from grpc_reflection.v1alpha import reflection, reflection_pb2

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from cloudrun_grpc_cli.demo.echo import EchoServicer

DATA = Path(__file__).resolve().parent.parent / "data"
PROTOS = DATA / "protos"
REPO = Path(__file__).resolve().parents[2]
NODE_RECORDING = DATA / "node_reflection.json"
NODE_COMMON_RECORDING = DATA / "node_common_reflection.json"

METHODS = {
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}
SERVICE_NAMES = {
    "v1": "grpc.reflection.v1.ServerReflection",
    "v1alpha": "grpc.reflection.v1alpha.ServerReflection",
}

Request = Any  # grpcio-reflection's messages are untyped
Response = Any
Responder = Callable[[Request], Response]


@dataclass
class ReflectionServer:
    server: grpc.Server
    port: int
    requests: dict[str, int] = field(default_factory=lambda: {"v1": 0, "v1alpha": 0})
    metadata: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.address)

    def stop(self) -> None:
        self.server.stop(0).wait()


def _handler(
    state: ReflectionServer,
    version: str,
    answer: Callable[[Iterator[Request], grpc.ServicerContext], Iterable[Response]],
) -> grpc.RpcMethodHandler:
    def info(requests: Iterator[Request], context: grpc.ServicerContext) -> Iterator[Response]:
        with state.lock:
            state.metadata.append({k: str(v) for k, v in context.invocation_metadata()})

        def counted() -> Iterator[Request]:
            for request in requests:
                with state.lock:
                    state.requests[version] += 1
                yield request

        yield from answer(counted(), context)

    return grpc.stream_stream_rpc_method_handler(
        info,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )


def start_server(
    versions: Sequence[str] = ("v1", "v1alpha"),
    *,
    answer: Callable[[Iterator[Request], grpc.ServicerContext], Iterable[Response]] | None = None,
    services: Sequence[str] = (echo_pb2.DESCRIPTOR.services_by_name["EchoServer"].full_name,),
    pool: descriptor_pool.DescriptorPool | None = None,
    echo: bool = True,
) -> ReflectionServer:
    """A server with reflection under the given versions (grpcio's servicer unless answer)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    if echo:
        echo_pb2_grpc.add_EchoServerServicer_to_server(EchoServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    state = ReflectionServer(server=server, port=port)
    if answer is None:
        names = [*services, *(SERVICE_NAMES[v] for v in versions)]
        servicer = reflection.ReflectionServicer(names, pool=pool)
        answer = servicer.ServerReflectionInfo
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for version in versions:
        handlers[version] = _handler(state, version, answer)
    for version, handler in handlers.items():
        service, method = METHODS[version].strip("/").split("/")
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {method: handler}),)
        )
    server.start()
    return state


def per_request(
    responder: Responder,
) -> Callable[[Iterator[Request], grpc.ServicerContext], Iterator[Response]]:
    """Adapt a request -> response function to the bidi stream."""

    def answer(requests: Iterator[Request], context: grpc.ServicerContext) -> Iterator[Response]:
        for request in requests:
            yield responder(request)

    return answer


# -- descriptors ---------------------------------------------------------------


def compile_protos(
    *names: str, include_source_info: bool = False
) -> descriptor_pb2.FileDescriptorSet:
    """Compile files under tests/data/protos (and protos/) with grpcio-tools."""
    import tempfile

    import grpc_tools
    from grpc_tools import protoc

    bundled = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{REPO / 'protos'}",
            f"-I{bundled}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *(["--include_source_info"] if include_source_info else []),
            *names,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {args}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def pool_of(fds: descriptor_pb2.FileDescriptorSet) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for fdp in fds.file:
        pool.Add(fdp)
    return pool


def start_shop_server(versions: Sequence[str] = ("v1alpha",)) -> ReflectionServer:
    """grpcio's reflection over the Echo and shop protos (only Echo is implemented)."""
    fds = compile_protos("echo.proto", "shop/v1/catalog.proto")
    return start_server(
        versions,
        services=["echo.EchoServer", "shop.v1.Catalog", "shop.v1.Greeter"],
        pool=pool_of(fds),
    )


def file_response(request: Request, *files: descriptor_pb2.FileDescriptorProto | bytes) -> Response:
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        file_descriptor_response=reflection_pb2.FileDescriptorResponse(
            file_descriptor_proto=[
                f if isinstance(f, bytes) else f.SerializeToString() for f in files
            ]
        ),
    )


def error_response(request: Request, code: grpc.StatusCode, message: str) -> Response:
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        error_response=reflection_pb2.ErrorResponse(
            error_code=code.value[0], error_message=message
        ),
    )


def list_response(request: Request, *services: str) -> Response:
    return reflection_pb2.ServerReflectionResponse(
        original_request=request,
        list_services_response=reflection_pb2.ListServiceResponse(
            service=[reflection_pb2.ServiceResponse(name=s) for s in services]
        ),
    )


def start_files_server(
    services: Sequence[str],
    by_symbol: dict[str, Sequence[descriptor_pb2.FileDescriptorProto | bytes]],
    by_name: dict[str, Sequence[descriptor_pb2.FileDescriptorProto | bytes]] | None = None,
    *,
    versions: Sequence[str] = ("v1",),
) -> ReflectionServer:
    """A reflection server answering from fixed tables (anything else: NOT_FOUND)."""
    names = by_name or {}

    def respond(request: Request) -> Response:
        kind = request.WhichOneof("message_request")
        if kind == "list_services":
            return list_response(request, *services)
        if kind == "file_containing_symbol" and request.file_containing_symbol in by_symbol:
            return file_response(request, *by_symbol[request.file_containing_symbol])
        if kind == "file_by_filename" and request.file_by_filename in names:
            return file_response(request, *names[request.file_by_filename])
        return error_response(request, grpc.StatusCode.NOT_FOUND, f"not found: {kind}")

    return start_server(versions, answer=per_request(respond), echo=False)


# -- recorded replies --------------------------------------------------------------


def request_key(request: Request) -> str:
    return json.dumps(json_format.MessageToDict(request), sort_keys=True)


def load_recording(path: Path = NODE_RECORDING) -> dict[str, bytes]:
    """Raw responses by request key; an exchange's "files" index the shared "files" list."""
    doc = json.loads(path.read_text())
    blobs = [base64.b64decode(b) for b in doc.get("files", [])]
    out: dict[str, bytes] = {}
    for ex in doc["exchanges"]:
        data = base64.b64decode(ex["response"])
        if "files" in ex:
            response = reflection_pb2.ServerReflectionResponse.FromString(data)
            response.file_descriptor_response.file_descriptor_proto.extend(
                blobs[i] for i in ex["files"]
            )
            data = response.SerializeToString()
        out[json.dumps(ex["request"], sort_keys=True)] = data
    return out


def start_replay_server(
    path: Path = NODE_RECORDING, versions: Sequence[str] = ("v1", "v1alpha")
) -> ReflectionServer:
    """Answer reflection requests with responses recorded from another server.

    Unknown requests get NOT_FOUND, as grpc-node's reflection answers them.
    """
    recorded = load_recording(path)

    def respond(request: Request) -> Response:
        data = recorded.get(request_key(request))
        if data is None:
            kind = request.WhichOneof("message_request")
            return error_response(request, grpc.StatusCode.NOT_FOUND, f"not recorded: {kind}")
        response = reflection_pb2.ServerReflectionResponse.FromString(data)
        response.original_request.CopyFrom(request)
        return response

    return start_server(versions, answer=per_request(respond), echo=False)


def start_silent_server() -> ReflectionServer:
    """Reflection that accepts the stream and never answers (deadline tests)."""

    def answer(requests: Iterator[Request], context: grpc.ServicerContext) -> Iterator[Response]:
        for _ in requests:
            while context.is_active():
                time.sleep(0.05)
            return
        yield from ()

    return start_server(("v1",), answer=answer, echo=False)


# -- helpers for tests --------------------------------------------------------------


def source_for(
    server: ReflectionServer, *, timeout: float = 10.0, metadata: Sequence[tuple[str, str]] = ()
) -> Any:
    """A crgrpc reflection source dialling server."""
    from cloudrun_grpc_cli.core.schema import reflection_source

    return reflection_source(
        server.channel(), metadata=lambda: list(metadata), timeout=timeout, address=server.address
    )


def strip_comments(text: str) -> str:
    """Proto text without comment lines (reflection rarely carries comments)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("//"))
