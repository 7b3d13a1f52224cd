"""A reference forwarder on grpcio's synchronous API, for bench/proxy.py's API comparison.

    python bench/proxy_sync.py UPSTREAM CACERT TOKEN

The same forwarding as crgrpc's proxy (every method as raw bytes, metadata,
headers, trailers, status, deadline), written on grpc.server with a thread
pool and a grpc.Channel: each call holds a thread for its whole life. Prints
its port on the first line. Not part of crgrpc: it exists to measure.
"""

from __future__ import annotations

import contextlib
import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc


def main() -> int:
    upstream, cacert, token = sys.argv[1], sys.argv[2], sys.argv[3]
    creds = grpc.ssl_channel_credentials(Path(cacert).read_bytes())
    channel = grpc.secure_channel(upstream, creds)
    auth = ("authorization", f"Bearer {token}")

    class Forward(grpc.GenericRpcHandler):  # type: ignore[misc]
        def service(self, details: Any) -> Any:
            forward = channel.stream_stream(details.method)

            def behave(requests: Any, context: grpc.ServicerContext) -> Any:
                md = [(m.key, m.value) for m in context.invocation_metadata()
                      if m.key not in ("user-agent", "authorization")]
                left = context.time_remaining()
                call = forward(requests, metadata=[*md, auth],
                               timeout=None if left is None or left > 1e8 else left)
                context.send_initial_metadata(call.initial_metadata())
                with contextlib.suppress(grpc.RpcError):
                    yield from call
                context.set_trailing_metadata(call.trailing_metadata())
                context.set_code(call.code())
                context.set_details(call.details())

            return grpc.stream_stream_rpc_method_handler(behave)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32), options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((Forward(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
