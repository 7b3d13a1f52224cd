"""The floor of a grpc.aio forwarder, for bench/proxy.py: the least a proxy on
grpcio's asyncio API can do per call.

    python bench/proxy_floor.py UPSTREAM CACERT TOKEN [--asyncio]

Every method as raw bytes through one stream-stream handler and one upstream
stream-stream call, a fixed token, no log, no metadata rules, no token
refresh, no pool: only the reads and writes any such proxy makes. On uvloop
like crgrpc's proxy (--asyncio: on asyncio's own loop). Prints its port on
the first line. Not part of crgrpc: it measures the least a proxy built on
grpcio's asyncio API would cost, which crgrpc's HTTP/2 relay replaced.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

EOF_: Any = aio.EOF  # type: ignore[attr-defined]


async def serve(upstream: str, cacert: str, token: str) -> None:
    creds = grpc.ssl_channel_credentials(Path(cacert).read_bytes())
    channel = aio.secure_channel(upstream, creds)
    auth = ("authorization", f"Bearer {token}")

    async def forward(method: str, _requests: Any, context: Any) -> None:
        md = [(k, v) for k, v in context.invocation_metadata() or () if k not in ("user-agent", "authorization")]
        call = channel.stream_stream(method)(None, metadata=[*md, auth], timeout=context.time_remaining())

        async def pump() -> None:
            while (m := await context.read()) is not EOF_:
                await call.write(m)
            await call.done_writing()

        task = asyncio.ensure_future(pump())
        await context.send_initial_metadata(await call.initial_metadata())
        while (m := await call.read()) is not EOF_:
            await context.write(m)
        context.set_trailing_metadata(await call.trailing_metadata())
        context.set_code(await call.code())
        context.set_details(await call.details())
        task.cancel()

    class Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
        def service(self, details: Any) -> Any:
            return grpc.stream_stream_rpc_method_handler(functools.partial(forward, details.method))

    server = aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Forward(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def main() -> int:
    upstream, cacert, token = sys.argv[1:4]
    if "--asyncio" in sys.argv[4:]:
        asyncio.run(serve(upstream, cacert, token))
    else:
        import uvloop

        uvloop.run(serve(upstream, cacert, token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
