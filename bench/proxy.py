"""`crgrpc proxy`'s benchmark (issue 14): the proxy against direct calls, ratios in one run.

    .venv/bin/python bench/proxy.py                        # the full run (~1-2 minutes)
    .venv/bin/python bench/proxy.py --markdown bench/PROXY_RESULTS.md --json out.json

Sets up on 127.0.0.1: a local token issuer (tests/support/issuer.py), the
TLS Echo service with its token check (`crgrpc serve --require-token`, its
own process), and `crgrpc proxy` in front of it (its own process, -o json
log to a file). The measuring client is bench/proxy_client.py, a raw grpcio
client in its own process: direct, it dials TLS with a token minted once;
through the proxy, plaintext with no token. Each round runs direct and proxy
once each, the order alternating, so both see the same machine.

Targets:
  P1. 1,000 unary calls on one connection: the proxy adds at most 1 ms to the
      median latency per call (all rounds' calls pooled).
  P2. a 10,000-message server stream through the proxy takes at most 1.5x the
      direct time (medians; timed in the client, from the call to the last message).
  P3. the proxy's peak RSS after a 100,000-message stream is at most 1.10x its peak
      after a 1,000-message stream (fresh proxies, /proc VmHWM).
Reported, not targets: the same P1 and P2 for crgrpc's proxy on asyncio's own
loop instead of uvloop, and for the two ways to build it on grpcio that the
HTTP/2 relay replaced: a minimal forwarder on grpcio's asyncio API, on uvloop
(bench/proxy_floor.py: only the reads and writes any proxy on grpcio must make,
the least such a proxy can cost) and one on its synchronous API, a thread per
call (bench/proxy_sync.py).

Exits 0 whatever the numbers unless --strict (then 1 when a target fails).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402  (the shared offline environment of child processes)
from harness import Target  # noqa: E402

AUDIENCE = "https://localhost"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Report:
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # measured, value, detail
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Process:
    """A child that prints `listening on HOST:PORT` first; its other output goes to a file."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_file: Path) -> None:
        self.log_file = log_file
        self._err = log_file.open("w")
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline() if self.proc.stdout else ""), daemon=True)
        reader.start()
        reader.join(60)
        if not line or not line[0].startswith("listening on "):
            self.stop()
            raise RuntimeError(f"{cmd[:4]} did not start: {line[0] if line else 'timeout'}\n{log_file.read_text()[-2000:]}")
        self.address = line[0].split()[-1]

    def peak_rss_kb(self) -> int:
        for row in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1])
        raise RuntimeError("no VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._err.close()


def client(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, str(HERE / "proxy_client.py"), *args], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"client {args[:3]} failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout))


def machine_info() -> dict[str, str]:
    import grpc

    cpu = "unknown"
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                cpu = row.split(":", 1)[1].strip()
                break
    import os

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "load average at start": load,
    }


def run(args: argparse.Namespace) -> Report:
    peers.repo_on_path()
    from cloudrun_grpc_cli.demo.certs import make_certs
    from tests.support.issuer import KEY_SA, Issuer

    report = Report(machine=machine_info())
    with tempfile.TemporaryDirectory(prefix="crgrpc-proxy-bench-") as tmp_text, contextlib.ExitStack() as stack:
        tmp = Path(tmp_text)
        env = peers.child_env(tmp)
        certs = make_certs(tmp / "tls")
        issuer = Issuer().start()
        stack.callback(issuer.stop)
        key = issuer.write_service_account_key(tmp / "sa.json")
        token = issuer.id_token(AUDIENCE, email=KEY_SA)
        crgrpc = [sys.executable, "-m", "cloudrun_grpc_cli"]
        upstream = Process([*crgrpc, "serve", "--host", "127.0.0.1", "--port", "0",
                            "--tls-cert", str(certs.cert), "--tls-key", str(certs.key),
                            "--require-token", "--audience", AUDIENCE, "--certs", issuer.certs_url],
                           env, tmp / "serve.log")
        stack.callback(upstream.stop)
        target = f"localhost:{upstream.address.rsplit(':', 1)[1]}"
        proxy_cmd = [*crgrpc, "proxy", target, "--cacert", str(certs.ca), "--key-file", str(key),
                     "--port", "0", "-o", "json"]
        proxy = Process(proxy_cmd, env, tmp / "proxy.log")
        stack.callback(proxy.stop)
        direct = ["--cacert", str(certs.ca), "--token", token]
        peers_to_run: list[tuple[str, str, list[str]]] = [
            ("direct", target, direct),
            ("proxy", proxy.address, []),
        ]
        if not args.no_refs:
            # The same proxy on asyncio's own loop (uvloop hidden from it), and a minimal
            # grpc.aio forwarder on uvloop: the least a proxy on grpcio's asyncio API costs.
            plain = Process([*peers.crgrpc_on_asyncio_loop(), *proxy_cmd[3:]], env, tmp / "proxy-asyncio.log")
            stack.callback(plain.stop)
            floor = Process([sys.executable, str(HERE / "proxy_floor.py"), target, str(certs.ca), token],
                            env, tmp / "floor.log")
            stack.callback(floor.stop)
            peers_to_run += [("proxy on asyncio's loop", plain.address, []),
                             ("grpc.aio forwarder", floor.address, [])]
        if not args.no_sync:
            sync = Process([sys.executable, str(HERE / "proxy_sync.py"), target, str(certs.ca), token],
                           env, tmp / "sync.log")
            stack.callback(sync.stop)
            peers_to_run.append(("sync forwarder", sync.address, []))

        unary: dict[str, list[float]] = {name: [] for name, _, _ in peers_to_run}
        stream: dict[str, list[float]] = {name: [] for name, _, _ in peers_to_run}
        for rnd in range(args.rounds):
            order = peers_to_run if rnd % 2 == 0 else list(reversed(peers_to_run))
            for name, address, extra in order:
                unary[name] += client(env, "unary", address, str(args.unary), *extra)["latencies_ms"]
            for name, address, extra in order:
                stream[name].append(client(env, "stream", address, str(args.stream), *extra)["seconds"])
            log(f"  round {rnd + 1}/{args.rounds}")

        med = {name: statistics.median(v) for name, v in unary.items()}
        for name, values in unary.items():
            q = statistics.quantiles(values, n=100) if len(values) >= 2 else values * 99
            report.rows.append((f"unary latency, {name} ({len(values)} calls)", f"{med[name]:.3f} ms",
                                f"p90 {q[89]:.3f} ms, p99 {q[98]:.3f} ms"))
        smed = {name: statistics.median(v) for name, v in stream.items()}
        for name, values in stream.items():
            report.rows.append((f"{args.stream:,}-message server stream, {name}", f"{smed[name]:.3f} s",
                                f"min {min(values):.3f}, max {max(values):.3f} ({len(values)} runs)"))
        added = med["proxy"] - med["direct"]
        report.targets.append(Target("P1", f"{args.unary:,} unary calls: latency the proxy adds per call (median)",
                                     added, 1.0, unit="ms"))
        report.targets.append(Target("P2", f"{args.stream:,}-message server stream: proxy / direct",
                                     smed["proxy"] / smed["direct"], 1.5, unit="x"))
        for ref in ("proxy on asyncio's loop", "grpc.aio forwarder"):
            if ref in med:
                report.rows.append((f"{ref}: latency added per unary call (reported)",
                                    f"{med[ref] - med['direct']:.3f} ms", f"crgrpc proxy: {added:.3f} ms"))
                report.rows.append((f"{ref}: stream / direct (reported)", f"{smed[ref] / smed['direct']:.2f}x",
                                    f"crgrpc proxy: {smed['proxy'] / smed['direct']:.2f}x"))
        if "sync forwarder" in med:
            report.rows.append(("sync-API forwarder: latency added per unary call (reported)",
                                f"{med['sync forwarder'] - med['direct']:.3f} ms", "crgrpc proxy: "
                                f"{added:.3f} ms"))
            report.rows.append(("sync-API forwarder: stream / direct (reported)",
                                f"{smed['sync forwarder'] / smed['direct']:.2f}x",
                                f"crgrpc proxy: {smed['proxy'] / smed['direct']:.2f}x"))
        proxy.stop()

        peaks = {}
        for n in (args.rss_small, args.rss_large):
            fresh = Process(proxy_cmd, env, tmp / f"proxy-{n}.log")
            try:
                client(env, "stream", fresh.address, str(n))
                peaks[n] = fresh.peak_rss_kb()
            finally:
                fresh.stop()
            report.rows.append((f"proxy peak RSS after a {n:,}-message stream", f"{peaks[n] / 1024:.1f} MiB", "VmHWM"))
        report.targets.append(Target("P3", f"proxy peak RSS, {args.rss_large:,} / {args.rss_small:,} messages",
                                     peaks[args.rss_large] / peaks[args.rss_small], 1.10, unit="x"))
        calls = sum(1 for line in (tmp / "proxy.log").read_text().splitlines() if '"event":"call"' in line)
        report.notes.append(f"the proxy logged {calls} calls (-o json, to a file) during the latency and stream rounds")
    return report


def render(report: Report, args: argparse.Namespace) -> str:
    lines = ["## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in report.machine.items()]
    lines += ["", f"{args.rounds} rounds; direct = TLS with a token, proxy = plaintext to `crgrpc proxy` "
              "(TLS and token upstream); one client process per measurement.", "",
              "| measured | value | detail |", "|---|---:|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in report.rows]
    lines += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    for t in report.targets:
        value = "—" if t.value is None else f"{t.value:.3f} {t.unit}" if t.unit == "ms" else f"{t.value:.2f}{t.unit}"
        limit = f"{t.limit:g} {t.unit}" if t.unit == "ms" else f"{t.limit:.2f}{t.unit}"
        lines.append(f"| {t.key}. {t.text} | {value} | {limit} | {t.verdict} |")
    lines += [""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--unary", type=int, default=1000, help="unary calls per client run")
    p.add_argument("--stream", type=int, default=10_000, help="messages of the timed stream")
    p.add_argument("--rss-small", type=int, default=1_000)
    p.add_argument("--rss-large", type=int, default=100_000)
    p.add_argument("--no-sync", action="store_true", help="skip the sync-API forwarder")
    p.add_argument("--no-refs", action="store_true",
                   help="skip the proxy on asyncio's loop and the minimal grpc.aio forwarder")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--strict", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    text = render(report, args)
    print(text)
    for t in report.targets:
        print(f"{t.verdict}: {t.key}. {t.text}")
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": report.machine,
            "rows": [{"measured": a, "value": b, "detail": c} for a, b, c in report.rows],
            "targets": [{"key": t.key, "text": t.text, "value": t.value, "limit": t.limit, "unit": t.unit,
                         "result": t.verdict} for t in report.targets],
            "notes": report.notes,
        }, indent=2))
    failed = any(t.verdict == "FAIL" for t in report.targets)
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
