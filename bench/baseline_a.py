"""Baseline A: the floor for a Python gRPC client process.

A raw grpcio client with the generated Echo stubs doing the same work as
crgrpc, nothing else: no reflection, no checks beyond grpcio's and
json_format's. With --json it reads and writes the same JSON as crgrpc
(JSON Lines in, compact JSON Lines out); without it, a stream only counts.

    python bench/baseline_a.py unary  TARGET [--cacert CA] [--token TOKEN]
    python bench/baseline_a.py stream TARGET --count N [--json] [--api sync|single|aio]
    python bench/baseline_a.py upload TARGET [--api sync|aio] < requests.jsonl
    python bench/baseline_a.py bidi   TARGET [--api sync|aio] < requests.jsonl
    python bench/baseline_a.py large  TARGET --data-file request.json
    python bench/baseline_a.py calls  TARGET --count N [--in-flight K]   # N unary calls

--api picks grpcio's client API: `sync` (its synchronous API: a polling
thread hands each message to the caller), `single` (the synchronous API with
grpc.experimental.ChannelOptions.SingleThreadedUnaryStream: unary-stream calls
are driven on the caller's thread) or `aio` (grpc.aio on an asyncio loop).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.experimental
from google.protobuf import json_format

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc

BIG = 64 * 1024 * 1024
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def to_line(msg: Any) -> str:
    """The same bytes as crgrpc -o json: MessageToDict, compact."""
    return _COMPACT.encode(json_format.MessageToDict(msg)) + "\n"


def requests_from_stdin() -> Iterator[echo_pb2.EchoRequest]:
    for line in sys.stdin:
        if line.strip():
            yield json_format.Parse(line, echo_pb2.EchoRequest())


def options(api: str, large: bool) -> list[tuple[str, Any]]:
    opts: list[tuple[str, Any]] = []
    if api == "single":
        opts.append((grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1))
    if large:
        opts += [("grpc.max_receive_message_length", BIG), ("grpc.max_send_message_length", BIG)]
    return opts


def run_sync(args: argparse.Namespace) -> int:
    opts = options(args.api, args.kind == "large")
    if args.cacert:
        with open(args.cacert, "rb") as f:
            creds = grpc.ssl_channel_credentials(f.read())
        channel = grpc.secure_channel(args.target, creds, options=opts)
    else:
        channel = grpc.insecure_channel(args.target, options=opts)
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None
    out = sys.stdout
    with channel:
        stub = echo_pb2_grpc.EchoServerStub(channel)
        if args.kind == "unary":
            reply = stub.SayHello(echo_pb2.EchoRequest(name=args.name), metadata=metadata)
            # the same output as `crgrpc call -o json`: one compact JSON object
            out.write(to_line(reply))
        elif args.kind == "calls":
            write = out.write
            if args.api == "single":  # unary as a single-threaded unary-stream call
                call = channel.unary_stream(
                    "/echo.EchoServer/SayHello",
                    echo_pb2.EchoRequest.SerializeToString,
                    echo_pb2.EchoReply.FromString,
                )
                for i in range(args.count):
                    for msg in call(echo_pb2.EchoRequest(name=f"m{i}"), metadata=metadata):
                        write(to_line(msg))
            elif args.in_flight > 1:
                from collections import deque

                window: deque[Any] = deque()
                for i in range(args.count):
                    window.append(stub.SayHello.future(echo_pb2.EchoRequest(name=f"m{i}")))
                    if len(window) >= args.in_flight:
                        write(to_line(window.popleft().result()))
                while window:
                    write(to_line(window.popleft().result()))
            else:
                for i in range(args.count):
                    write(to_line(stub.SayHello(echo_pb2.EchoRequest(name=f"m{i}"))))
        elif args.kind == "large":
            with open(args.data_file, encoding="utf-8") as f:
                request = json_format.Parse(f.read(), echo_pb2.EchoRequest())
            reply = stub.SayHello(request, metadata=metadata)
            del request
            out.write(to_line(reply))
        elif args.kind == "stream":
            request = echo_pb2.EchoRequest(name=args.name, count=args.count)
            n = 0
            if args.json:
                write = out.write
                for msg in stub.SayHelloStream(request, metadata=metadata):
                    write(to_line(msg))
            else:
                for _ in stub.SayHelloStream(request, metadata=metadata):
                    n += 1
                out.write(f"{n}\n")
        elif args.kind == "upload":
            reply = stub.SayHelloClientStream(requests_from_stdin(), metadata=metadata)
            out.write(to_line(reply))
        else:  # bidi
            write = out.write
            for msg in stub.SayHelloBidi(requests_from_stdin(), metadata=metadata):
                write(to_line(msg))
    return 0


async def run_aio(args: argparse.Namespace) -> int:
    opts = options(args.api, args.kind == "large")
    channel = grpc.aio.insecure_channel(args.target, options=opts)
    out = sys.stdout
    write = out.write

    async def requests() -> AsyncIterator[echo_pb2.EchoRequest]:
        for r in requests_from_stdin():
            yield r

    async with channel:
        stub = echo_pb2_grpc.EchoServerStub(channel)
        if args.kind == "unary":
            write(to_line(await stub.SayHello(echo_pb2.EchoRequest(name=args.name))))
        elif args.kind == "calls":
            import asyncio

            sem = asyncio.Semaphore(args.in_flight)

            async def one(i: int) -> Any:
                async with sem:
                    return await stub.SayHello(echo_pb2.EchoRequest(name=f"m{i}"))

            if args.in_flight > 1:
                for reply in await asyncio.gather(*(one(i) for i in range(args.count))):
                    write(to_line(reply))
            else:
                for i in range(args.count):
                    write(to_line(await stub.SayHello(echo_pb2.EchoRequest(name=f"m{i}"))))
        elif args.kind == "large":
            with open(args.data_file, encoding="utf-8") as f:
                request = json_format.Parse(f.read(), echo_pb2.EchoRequest())
            reply = await stub.SayHello(request)
            del request
            write(to_line(reply))
        elif args.kind == "stream":
            request = echo_pb2.EchoRequest(name=args.name, count=args.count)
            n = 0
            async for msg in stub.SayHelloStream(request):
                if args.json:
                    write(to_line(msg))
                n += 1
            if not args.json:
                write(f"{n}\n")
        elif args.kind == "upload":
            write(to_line(await stub.SayHelloClientStream(requests())))
        else:
            async for msg in stub.SayHelloBidi(requests()):
                write(to_line(msg))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("unary", "stream", "upload", "bidi", "large", "calls"))
    parser.add_argument("target")
    parser.add_argument("--api", choices=("sync", "single", "aio"), default="sync")
    parser.add_argument("--json", action="store_true", help="write each stream message as JSON")
    parser.add_argument("--cacert")
    parser.add_argument("--token")
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--name", default="bench")
    parser.add_argument("--data-file")
    parser.add_argument("--in-flight", type=int, default=1, help="calls: concurrent calls")
    args = parser.parse_args(argv)
    if args.api == "aio":
        import asyncio

        return asyncio.run(run_aio(args))
    return run_sync(args)


if __name__ == "__main__":
    sys.exit(main())
