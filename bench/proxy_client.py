"""The measuring client of bench/proxy.py: a raw grpcio client, one process per measurement.

    python bench/proxy_client.py unary  ADDR N   [--cacert CA --token JWT]
    python bench/proxy_client.py stream ADDR N   [--cacert CA --token JWT]

unary: N SayHello calls on one channel (after 50 warm-up calls), each timed
alone; stream: one SayHelloStream of N messages, timed from the call to the
last message. Prints one JSON object. Messages are pre-serialized bytes and
answers are counted, not decoded, so the client costs the same either way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import grpc

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cloudrun_grpc_cli.demo import echo_pb2  # noqa: E402

WARMUP = 50


def channel(args: argparse.Namespace) -> grpc.Channel:
    if args.cacert:
        creds = grpc.ssl_channel_credentials(Path(args.cacert).read_bytes())
        return grpc.secure_channel(args.address, creds)
    return grpc.insecure_channel(args.address)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("unary", "stream"))
    p.add_argument("address")
    p.add_argument("n", type=int)
    p.add_argument("--cacert")
    p.add_argument("--token")
    args = p.parse_args()
    md = (("authorization", f"Bearer {args.token}"),) if args.token else ()
    with channel(args) as ch:
        if args.mode == "unary":
            call = ch.unary_unary("/echo.EchoServer/SayHello")
            req = echo_pb2.EchoRequest(name="x").SerializeToString()
            for _ in range(WARMUP):
                call(req, metadata=md, timeout=30)
            latencies = []
            for _ in range(args.n):
                t = time.perf_counter()
                call(req, metadata=md, timeout=30)
                latencies.append((time.perf_counter() - t) * 1000)
            print(json.dumps({"latencies_ms": latencies}))
        else:
            stream = ch.unary_stream("/echo.EchoServer/SayHelloStream")
            req = echo_pb2.EchoRequest(name="x", count=args.n).SerializeToString()
            list(stream(echo_pb2.EchoRequest(name="w", count=10).SerializeToString(), metadata=md))
            t = time.perf_counter()
            count = sum(1 for _ in stream(req, metadata=md, timeout=300))
            seconds = time.perf_counter() - t
            if count != args.n:
                print(f"got {count} messages, not {args.n}", file=sys.stderr)
                return 1
            print(json.dumps({"seconds": seconds, "count": count}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
