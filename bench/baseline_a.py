"""Baseline A: the floor for a Python gRPC client process.

A raw grpcio client with the generated Echo stubs making the same call as
crgrpc, nothing else: no reflection, no JSON conversion of stream messages.

    python bench/baseline_a.py unary  TARGET [--cacert CA] [--token TOKEN]
    python bench/baseline_a.py stream TARGET --count N
"""

from __future__ import annotations

import argparse
import sys

import grpc
from google.protobuf import json_format

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("unary", "stream"))
    parser.add_argument("target")
    parser.add_argument("--cacert")
    parser.add_argument("--token")
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--name", default="bench")
    args = parser.parse_args(argv)

    if args.cacert:
        with open(args.cacert, "rb") as f:
            channel = grpc.secure_channel(args.target, grpc.ssl_channel_credentials(f.read()))
    else:
        channel = grpc.insecure_channel(args.target)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    with channel:
        stub = echo_pb2_grpc.EchoServerStub(channel)
        if args.kind == "unary":
            reply = stub.SayHello(echo_pb2.EchoRequest(name=args.name), metadata=metadata)
            # the same output as `crgrpc call -o json`: one compact JSON object
            sys.stdout.write(json_format.MessageToJson(reply, indent=None) + "\n")
        else:
            n = 0
            request = echo_pb2.EchoRequest(name=args.name, count=args.count)
            for _ in stub.SayHelloStream(request, metadata=metadata):
                n += 1
            sys.stdout.write(f"{n}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
