"""A grpc.aio Echo server for bench/loadtest.py: SayHello with reflection, in
`--processes` processes sharing one port (SO_REUSEPORT, grpcio's default), so
that the server is not the one Python process the load waits on.

    python bench/aio_server.py --processes 2     → prints the port, then serves
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import signal
import sys

import grpc


async def _serve(port: int, ready: object | None) -> None:
    from grpc_reflection.v1alpha import reflection

    from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc

    class Echo(echo_pb2_grpc.EchoServerServicer):  # type: ignore[misc]
        async def SayHello(self, request: echo_pb2.EchoRequest, context: object) -> echo_pb2.EchoReply:
            return echo_pb2.EchoReply(message=f"Hello {request.name} from K_REVISION local")

    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)])
    echo_pb2_grpc.add_EchoServerServicer_to_server(Echo(), server)
    name = echo_pb2.DESCRIPTOR.services_by_name["EchoServer"].full_name
    reflection.enable_server_reflection((name, reflection.SERVICE_NAME), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    if ready is not None:
        ready.put(bound)  # type: ignore[attr-defined]
    await server.wait_for_termination()


def _child(port: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(port, None))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=1)
    a = ap.parse_args()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    first = ctx.Process(target=_first, args=(ready,), daemon=True)
    first.start()
    port = int(ready.get(timeout=60))
    others = [ctx.Process(target=_child, args=(port,), daemon=True) for _ in range(a.processes - 1)]
    for p in others:
        p.start()
    print(port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        first.join()
    sys.exit(0)


def _first(ready: object) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_serve(0, ready))


if __name__ == "__main__":
    main()
