"""Which grpcio client API is fastest, per kind of call: raw clients, side by side.

    .venv/bin/python bench/apis.py [--runs 5] [--stream 50000] [--upload 20000] ...

Starts bench/fast_server.js (grpc-js: the server is not the bottleneck) and
times bench/baseline_a.py for each kind with each API it offers: `sync`,
`single` (SingleThreadedUnaryStream, which only changes unary-stream calls)
and `aio`. Each process writes the same JSON Lines as crgrpc. bench/run.py
runs the same comparison as its `apis` group; the fastest API per kind is
the floor its targets are measured against.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BenchError, Stats, Variant, run_paired

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


@dataclass(frozen=True)
class Server:
    address: str


@contextlib.contextmanager
def fast_server(env: dict[str, str] | None = None) -> Iterator[Server]:
    """bench/fast_server.js on a free loopback port, stopped on exit."""
    if not (REPO / "tests" / "node" / "node_modules" / "@grpc" / "grpc-js").is_dir():
        raise BenchError("bench/fast_server.js needs `npm ci` in tests/node")
    proc = subprocess.Popen(
        ["node", str(HERE / "fast_server.js"), "0"], env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True
        )
        reader.start()
        reader.join(30)
        if not line or not line[0].startswith("listening on "):
            raise BenchError(f"fast_server.js did not start: {line[0] if line else 'timeout'}")
        threading.Thread(target=lambda: proc.stdout and proc.stdout.read(), daemon=True).start()
        yield Server(line[0].strip().removeprefix("listening on "))
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def write_requests(path: Path, count: int) -> Path:
    with path.open("w") as f:
        for i in range(count):
            f.write(json.dumps({"name": f"m{i}"}) + "\n")
    return path


def baseline(*args: str) -> list[str]:
    return [sys.executable, str(HERE / "baseline_a.py"), *args]


def stdin_of(path: Path) -> list[str]:
    """A command reading `path` on stdin (the harness gives children /dev/null)."""
    return ["sh", "-c", 'exec "$@" < "$0"', str(path)]


def api_variants(
    address: str, env: dict[str, str], tmp: Path, *, stream: int, upload: int, bidi: int,
    calls: int,
) -> dict[str, list[Variant]]:
    """kind → one Variant per API (names end with the API)."""
    up = write_requests(tmp / f"upload{upload}.jsonl", upload)
    bi = write_requests(tmp / f"bidi{bidi}.jsonl", bidi)
    out = tmp / "api-out"
    out.mkdir(exist_ok=True)
    kinds: dict[str, list[Variant]] = {}
    kinds["stream"] = [
        Variant(f"A {api}: {stream:,}-message server stream → JSON Lines",
                baseline("stream", address, "--count", str(stream), "--json", "--api", api),
                env, out / f"s-{api}.jsonl", _lines(stream))
        for api in ("sync", "single", "aio")
    ]
    kinds["upload"] = [
        Variant(f"A {api}: {upload:,}-message upload from stdin",
                [*stdin_of(up), *baseline("upload", address, "--api", api)],
                env, out / f"u-{api}.json", _lines(1))
        for api in ("sync", "aio")
    ]
    kinds["bidi"] = [
        Variant(f"A {api}: bidi, {bidi:,} messages each way",
                [*stdin_of(bi), *baseline("bidi", address, "--api", api)],
                env, out / f"b-{api}.jsonl", _lines(bidi))
        for api in ("sync", "aio")
    ]
    kinds["calls"] = [
        Variant(f"A {api}: {calls:,} unary calls in one process, one at a time",
                baseline("calls", address, "--count", str(calls), "--api", api),
                env, out / f"c-{api}.jsonl", _lines(calls))
        for api in ("sync", "single", "aio")
    ] + [
        Variant(f"A {api}: {calls:,} unary calls in one process, 16 in flight",
                baseline("calls", address, "--count", str(calls), "--api", api,
                         "--in-flight", "16"),
                env, out / f"c16-{api}.jsonl", _lines(calls))
        for api in ("sync", "aio")
    ]
    return kinds


def _lines(n: int):  # type: ignore[no-untyped-def]
    def check(path: Path | None) -> None:
        assert path is not None
        got = sum(1 for _ in path.open())
        if got != n:
            raise BenchError(f"{path.name}: expected {n} lines, found {got}")

    return check


def fastest(variants: list[Variant]) -> Variant:
    return min(variants, key=lambda v: Stats.of(v.walls).median)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--stream", type=int, default=50_000)
    p.add_argument("--upload", type=int, default=20_000)
    p.add_argument("--bidi", type=int, default=10_000)
    p.add_argument("--calls", type=int, default=1_000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="crgrpc-apis-") as t, fast_server() as server:
        kinds = api_variants(server.address, dict(__import__("os").environ), Path(t),
                             stream=args.stream, upload=args.upload, bidi=args.bidi,
                             calls=args.calls)
        print("| kind | API | median wall | min–max | CPU (median) |")
        print("|---|---|---:|---:|---:|")
        for kind, variants in kinds.items():
            run_paired(variants, runs=args.runs, warmup=args.warmup,
                       log=lambda m: print(m, file=sys.stderr))
            best = fastest(variants)
            for v in variants:
                st, cpu = Stats.of(v.walls), Stats.of(v.cpus)
                mark = " **fastest**" if v is best else ""
                print(f"| {kind} | {v.name}{mark} | {st.median:.3f} s | {st.low:.3f}–{st.high:.3f}"
                      f" | {cpu.median:.3f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
