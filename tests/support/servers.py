"""Echo servers on 127.0.0.1 for tests: plaintext, TLS, without reflection, on a unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cloudrun_grpc_cli.demo.server import RunningServer, build_server

from .tls import CertFiles, make_certs


@contextmanager
def echo_server(
    *, reflection: bool = True, tls: CertFiles | None = None, host: str = "127.0.0.1", interceptors: tuple = ()
) -> Iterator[RunningServer]:
    server = build_server(
        host,
        0,
        reflection=reflection,
        tls_cert=tls.cert if tls else None,
        tls_key=tls.key if tls else None,
        interceptors=interceptors,
    )
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def unix_echo_server(path: Path) -> Iterator[str]:
    from concurrent import futures

    import grpc
    from grpc_reflection.v1alpha import reflection as refl

    from cloudrun_grpc_cli.demo import echo_pb2_grpc
    from cloudrun_grpc_cli.demo.echo import EchoServicer
    from cloudrun_grpc_cli.demo.server import ECHO_SERVICE

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    echo_pb2_grpc.add_EchoServerServicer_to_server(EchoServicer(), server)
    refl.enable_server_reflection((ECHO_SERVICE, refl.SERVICE_NAME), server)
    server.add_insecure_port(f"unix://{path}")
    server.start()
    try:
        yield f"unix://{path}"
    finally:
        server.stop(0).wait()


__all__ = ["CertFiles", "RunningServer", "echo_server", "make_certs", "unix_echo_server"]
