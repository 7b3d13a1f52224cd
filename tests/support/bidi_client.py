"""A bidi client in a process of its own: `python -m tests.support.bidi_client ADDRESS N SIZE`
sends N messages on one test.Probe/Hold stream (N-1 of SIZE bytes, then b"end") and
prints {"count", "first", "last"} of the answers as JSON. Out of the test process, it
does not share a GIL with the upstream server the test runs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator

import grpc

PROBE_HOLD = "/test.Probe/Hold"


async def main(address: str, n: int, size: int) -> dict[str, object]:
    message = b"b" * size
    count, first, last = 0, b"", b""

    def requests() -> Iterator[bytes]:
        for _ in range(n - 1):
            yield message
        yield b"end"

    async with grpc.aio.insecure_channel(address) as ch:
        call = ch.stream_stream(PROBE_HOLD)(requests(), timeout=300)
        async for answer in call:
            if not count:
                first = answer
            count += 1
            last = answer
    return {"count": count, "first": first.decode(), "last": last.decode()}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))
