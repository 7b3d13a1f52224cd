"""The hand-written load loop crgrpc bench is measured against: grpcio's asyncio
API with the generated Echo stubs, `--concurrency` coroutines on one channel,
each sending its next SayHello as soon as the last one answered (closed loop).

    python bench/aio_loop.py ADDRESS --concurrency 32 --duration 5 --warmup 1

Prints one JSON line: total, duration_s, rps, p50_ms, p99_ms (of the requests
after the warmup; latency from sending to the answer, as crgrpc's closed loop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc


async def main(address: str, concurrency: int, duration: float, warmup: float) -> dict[str, float]:
    channel = grpc.aio.insecure_channel(address)
    stub = echo_pb2_grpc.EchoServerStub(channel)
    request = echo_pb2.EchoRequest(name="x")
    await stub.SayHello(request)  # connected
    latencies: list[float] = []
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + duration

    async def lane() -> None:
        clock = time.perf_counter
        while True:
            t0 = clock()
            if t0 >= end:
                return
            await stub.SayHello(request)
            if t0 >= measure_from:
                latencies.append(clock() - t0)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - measure_from
    await channel.close()
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, max(0, int(p / 100 * n + 0.5) - 1))] * 1000, 3)

    return {"total": n, "duration_s": round(elapsed, 6), "rps": round(n / elapsed, 3),
            "p50_ms": pct(50), "p99_ms": pct(99)}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    a = ap.parse_args()
    print(json.dumps(asyncio.run(main(a.address, a.concurrency, a.duration, a.warmup))))
