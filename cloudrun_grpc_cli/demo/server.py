"""Build and run a gRPC server hosting Echo, with reflection and optional TLS."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from . import echo_pb2, echo_pb2_grpc
from .echo import EchoServicer

ECHO_SERVICE = echo_pb2.DESCRIPTOR.services_by_name["EchoServer"].full_name


@dataclass
class RunningServer:
    server: grpc.Server
    host: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def stop(self, grace: float | None = 0) -> None:
        self.server.stop(grace).wait()


def build_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    reflection: bool = True,
    interceptors: Sequence[grpc.ServerInterceptor[Any, Any]] = (),
    max_workers: int = 16,
) -> RunningServer:
    """Start Echo on host:port (0 picks a free port) and return it running."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers), interceptors=list(interceptors)
    )
    echo_pb2_grpc.add_EchoServerServicer_to_server(EchoServicer(), server)
    if reflection:
        from grpc_reflection.v1alpha import reflection as refl

        refl.enable_server_reflection((ECHO_SERVICE, refl.SERVICE_NAME), server)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if tls_cert is not None and tls_key is not None:
        creds = grpc.ssl_server_credentials([(tls_key.read_bytes(), tls_cert.read_bytes())])
        bound = server.add_secure_port(bind, creds)
    else:
        bound = server.add_insecure_port(bind)
    if bound == 0:
        raise OSError(f"cannot listen on {bind}")
    server.start()
    return RunningServer(server=server, host=host, port=bound)
