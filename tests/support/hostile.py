"""Faulty and hostile test servers, all on 127.0.0.1.

- `types_server`: a real gRPC server (with reflection) of a schema of our own,
  `hostile.Types`, whose messages have bytes, enum, 64-bit, repeated, map and
  nested fields, and whose methods misbehave on request: a stream that ends
  with a message too large, a slow unary call, a bidi call that answers (and
  sends its headers) only after the client finished sending.
- `DroppingServer`: a raw HTTP/2 server (the `h2` library) that answers any
  call with response headers and a few gRPC messages, then resets the TCP
  connection when the test says so — a connection dropped mid-stream.
- `Blackhole`: accepts TCP connections and never says a word (a TLS handshake
  that never completes).
- `Reject`: a server interceptor answering every non-reflection call with one
  status (UNAUTHENTICATED, like an app checking tokens).
- `mint_jwt`: an RS256 JWT signed with a key generated here, by google-auth.
- helpers: `free_port`, `echo_protoset`, `spawn_serve`.
"""

from __future__ import annotations

import functools
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message_factory import GetMessageClass

from .rawgrpc import frame

TYPES_PROTO = """
syntax = "proto3";
package hostile;

message Scalars {
  enum Color { COLOR_UNSPECIFIED = 0; RED = 1; GREEN = 2; }
  bytes blob = 1;
  int32 i32 = 2;
  int64 i64 = 3;
  uint32 u32 = 4;
  Color color = 5;
  repeated int32 nums = 6;
  map<string, int32> counts = 7;
  double ratio = 8;
  bool flag = 9;
  Scalars child = 10;
  string last_word = 11;  // JSON name lastWord: for --proto-names
}

message GrowRequest {
  int32 small = 1;      // this many small messages first
  int32 big_bytes = 2;  // then one message with this many bytes
}

message Blob {
  bytes data = 1;
  int32 seq = 2;
}

message SlowRequest {
  double seconds = 1;
}

service Types {
  rpc Echo(Scalars) returns (Scalars);
  rpc Grow(GrowRequest) returns (stream Blob);
  rpc Slow(SlowRequest) returns (Blob);
  // Reads every request before it answers (or sends headers).
  rpc Gather(stream Blob) returns (stream Blob);
}
"""

TYPES_SERVICE = "hostile.Types"


@functools.cache
def types_fds() -> descriptor_pb2.FileDescriptorSet:
    """hostile.proto compiled by grpcio-tools' protoc."""
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "hostile.proto"
        src.write_text(TYPES_PROTO)
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{tmp}", f"--descriptor_set_out={out}", "--include_imports", str(src)]
        if protoc.main(args) != 0:
            raise RuntimeError("protoc failed on hostile.proto")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


@functools.cache
def types_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for f in types_fds().file:
        pool.Add(f)
    return pool


def message_class(name: str) -> Any:
    return GetMessageClass(types_pool().FindMessageTypeByName(f"hostile.{name}"))


@dataclass
class HostileServer:
    server: grpc.Server
    port: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    gathered: list[int] = field(default_factory=list)  # requests read per Gather call
    headers_sent_after: list[int] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _types_handlers(state: HostileServer) -> grpc.GenericRpcHandler:
    scalars = message_class("Scalars")
    grow_req = message_class("GrowRequest")
    blob = message_class("Blob")
    slow_req = message_class("SlowRequest")

    def echo(request: Any, context: grpc.ServicerContext) -> Any:
        return request

    def grow(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for i in range(request.small):
            yield blob(data=b"small", seq=i + 1)
        yield blob(data=b"x" * request.big_bytes, seq=request.small + 1)

    def slow(request: Any, context: grpc.ServicerContext) -> Any:
        context.add_callback(state.cancelled.set)
        end = time.monotonic() + request.seconds
        while context.is_active() and time.monotonic() < end:
            time.sleep(0.02)
        return blob(data=b"late")

    def gather(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        got = [r.seq for r in requests]  # no headers, no messages until the client is done
        state.gathered.append(len(got))
        for seq in got:
            yield blob(seq=seq)

    def ser(m: Any) -> bytes:
        return m.SerializeToString()  # type: ignore[no-any-return]

    return grpc.method_handlers_generic_handler(
        TYPES_SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, scalars.FromString, ser),
            "Grow": grpc.unary_stream_rpc_method_handler(grow, grow_req.FromString, ser),
            "Slow": grpc.unary_unary_rpc_method_handler(slow, slow_req.FromString, ser),
            "Gather": grpc.stream_stream_rpc_method_handler(gather, blob.FromString, ser),
        },
    )


@contextmanager
def types_server(*, interceptors: tuple[grpc.ServerInterceptor, ...] = ()) -> Iterator[HostileServer]:
    """hostile.Types with v1alpha reflection over its own descriptor pool."""
    from grpc_reflection.v1alpha import reflection

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), interceptors=list(interceptors))
    port = server.add_insecure_port("127.0.0.1:0")
    state = HostileServer(server=server, port=port)
    server.add_generic_rpc_handlers((_types_handlers(state),))
    reflection.enable_server_reflection(
        (TYPES_SERVICE, reflection.SERVICE_NAME), server, pool=types_pool()
    )
    server.start()
    try:
        yield state
    finally:
        server.stop(0).wait()


# -- a raw HTTP/2 server that drops the connection mid-stream ----------------------------


class DroppingServer:
    """Answers any call with headers and `messages`, then resets the connection on drop()."""

    def __init__(self, messages: list[bytes]) -> None:
        self.messages = messages
        self._drop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port = int(self._sock.getsockname()[1])
        self.calls = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def drop(self) -> None:
        self._drop.set()

    def close(self) -> None:
        self._drop.set()
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events

        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        conn.settimeout(0.05)
        answered: set[int] = set()
        try:
            while not self._drop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived) and ev.stream_id not in answered:
                        answered.add(ev.stream_id)
                        self.calls += 1
                        h2c.send_headers(
                            ev.stream_id, [(":status", "200"), ("content-type", "application/grpc")]
                        )
                        for m in self.messages:
                            h2c.send_data(ev.stream_id, frame(m))
                    elif isinstance(ev, h2.events.DataReceived):
                        h2c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                out = h2c.data_to_send()
                if out:
                    conn.sendall(out)
        finally:
            # An abrupt end: RST, no GOAWAY, no trailers.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()


# -- a TCP server that never speaks ---------------------------------------------------------


class Blackhole:
    """Accepts connections and holds them open without sending a byte."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._sock.close()
        for c in self.accepted:
            c.close()


# -- interceptors ---------------------------------------------------------------------------


class Reject(grpc.ServerInterceptor):  # type: ignore[misc]
    """Answers every call but reflection with `code` (an app refusing the token)."""

    def __init__(
        self,
        code: grpc.StatusCode = grpc.StatusCode.UNAUTHENTICATED,
        message: str = "invalid token",
        *,
        reflection: bool = False,
    ) -> None:
        self.code = code
        self.message = message
        self.reflection = reflection  # refuse reflection calls too
        self.seen: list[dict[str, Any]] = []

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if "ServerReflection" in details.method and not self.reflection:
            return continuation(details)
        self.seen.append(dict(details.invocation_metadata))
        code, message = self.code, self.message

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(code, message)

        if "ServerReflection" in details.method:
            return grpc.stream_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)


# -- tokens ------------------------------------------------------------------------------------


@functools.cache
def _signer() -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from google.auth import crypt

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return crypt.RSASigner.from_string(pem, key_id="hostile-key-1")


def mint_jwt(audience: str, *, lifetime: int = 3600, email: str = "caller@test-project.iam.gserviceaccount.com") -> str:
    """A Google-shaped RS256 ID token, signed by google-auth with a key generated here."""
    from google.auth import jwt

    now = int(time.time())
    claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": email,
        "sub": "112233445566778899",
        "email": email,
        "email_verified": True,
        "iat": now - 10,
        "exp": now + lifetime,
    }
    return bytes(jwt.encode(_signer(), claims)).decode()


# -- misc --------------------------------------------------------------------------------------


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def echo_protoset(path: Path) -> Path:
    """The Echo schema as a FileDescriptorSet file (for servers without reflection)."""
    from cloudrun_grpc_cli.demo import echo_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    echo_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    path.write_bytes(fds.SerializeToString())
    return path


def spawn_serve(port: int = 0, *, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`crgrpc serve` as a process on 127.0.0.1; returns it once it is listening."""
    import os

    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("listening on 127.0.0.1:"):
        proc.kill()
        proc.wait(10)
        raise RuntimeError(f"crgrpc serve did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


class EchoTokenBack(grpc.ServerInterceptor):  # type: ignore[misc]
    """A careless app: refuses calls quoting the authorization header back, in the
    status message and in a trailer (reflection too when `reflection`)."""

    def __init__(self, *, reflection: bool = False) -> None:
        self.reflection = reflection

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if "ServerReflection" in details.method and not self.reflection:
            return continuation(details)
        auth = str(dict(details.invocation_metadata).get("authorization", ""))

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.set_trailing_metadata((("x-seen-authorization", auth),))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, f"bad credentials: {auth}")

        if "ServerReflection" in details.method:
            return grpc.stream_stream_rpc_method_handler(deny)
        return grpc.unary_unary_rpc_method_handler(deny)
