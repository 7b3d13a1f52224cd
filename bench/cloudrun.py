"""The cost of a run:// target (issue 13): a call by `run://` with a warm resolution cache
against the same call by URL, whole processes side by side.

    .venv/bin/python bench/cloudrun.py                      # 21 paired rounds
    .venv/bin/python bench/cloudrun.py --runs 5 --warmup 1  # quick
    .venv/bin/python bench/cloudrun.py --markdown bench/CLOUDRUN.md --strict

Sets up on 127.0.0.1: the bundled Echo service over TLS (`crgrpc serve`), the local token
issuer and a service-account key for it, and the Cloud Run Admin API v2 stand-in
(cloudrun_grpc_cli.demo.runapi) describing the Echo service. Both commands send the same
audience (the service's uri) and read warm token and schema caches; the run:// one also
reads the resolution cache, so it makes no Admin API request once warm (checked). Target:
the median wall time of the run:// call is at most 1.05 times the call by URL.

Exits 0 whatever the numbers unless --strict (then 1 when the target fails).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers
from harness import BenchError, Stats, Variant, ratio, run_paired

LIMIT = 1.05
NAME = "bench"
PROJECT, REGION, SERVICE = "bench-project", "us-central1", "echo"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def expect_hello(path: Path | None) -> None:
    assert path is not None
    text = path.read_text()
    if f"Hello {NAME} from" not in text:
        raise BenchError(f"{path.name}: unexpected output {text[:300]!r}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    peers.repo_on_path()
    from cloudrun_grpc_cli.demo.runapi import RunApi, service_json
    from tests.support.tls import make_certs

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="crgrpc-bench-run-")))
        env = peers.child_env(tmp)
        certs = make_certs(tmp / "tls")
        iss: Any = stack.enter_context(peers.issuer())
        key = iss.write_service_account_key(tmp / "sa.json")
        log("starting Echo (TLS) and the Admin API stand-in ...")
        tls = peers.start_echo(stack, env, tls_cert=certs.cert, tls_key=certs.key)
        uri = f"https://localhost:{tls.port}"
        api = RunApi(iss.access_tokens).start()
        stack.callback(api.stop)
        api.add(service_json(PROJECT, REGION, SERVICE, uri))
        cr = [sys.executable, "-m", "cloudrun_grpc_cli"]
        common = ["echo.EchoServer/SayHello", "-d", json.dumps({"name": NAME}), "-o", "json",
                  "--cacert", str(certs.ca), "--key-file", str(key)]
        out = tmp / "out"
        out.mkdir()
        by_url = Variant("crgrpc call https://… (warm token and schema caches)",
                         [*cr, "call", uri, *common, "--audience", uri], env, out / "url.json",
                         expect_hello)
        by_run = Variant("crgrpc call run://… (warm resolution cache too)",
                         [*cr, "call", f"run://{PROJECT}/{REGION}/{SERVICE}", *common,
                          "--run-api", api.url], env, out / "run.json", expect_hello)
        variants = [by_url, by_run]
        log(f"[cloudrun] {args.runs} paired rounds after {args.warmup} warm-up round(s)")
        # One round outside the measurement fills every cache (the run:// resolution too).
        run_paired(variants, runs=0, warmup=max(args.warmup, 1), log=log)
        before = api.count()
        run_paired(variants, runs=args.runs, warmup=0, log=log)
        warm_requests = api.count() - before
        value = ratio(by_run.walls, by_url.walls)
        rows = [
            {"name": v.name, "median": Stats.of(v.walls).median, "low": Stats.of(v.walls).low,
             "high": Stats.of(v.walls).high, "cpu": Stats.of(v.cpus).median, "runs": len(v.walls)}
            for v in variants
        ]
        return {
            "machine": {"cpus": str(os.cpu_count()), "load": " ".join(f"{x:.1f}" for x in os.getloadavg())},
            "cpu_ratio": ratio(by_run.cpus, by_url.cpus),
            "rows": rows,
            "target": {
                "key": "cloudrun",
                "text": f"run:// call, warm cache ≤ {LIMIT:.2f}× the same call by URL",
                "value": value,
                "limit": LIMIT,
                "result": "PASS" if value <= LIMIT and warm_requests == 0 else "FAIL",
            },
            "admin_api_requests_when_warm": warm_requests,
        }


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["## run:// targets", "",
             f"{m['cpus']} CPUs, load average {m['load']} at the end. Wall time of the whole "
             "process; median of paired runs, order rotated each round; CPU is user + system.", "",
             "| command | median | min–max | CPU (median) | runs |", "|---|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['name']} | {r['median']:.3f} s | {r['low']:.3f}–{r['high']:.3f} | {r['cpu']:.3f} s | {r['runs']} |")
    t = results["target"]
    lines += ["", "| target | measured | limit | result |", "|---|---:|---:|---|",
              f"| {t['text']} | {t['value']:.2f}× | {t['limit']:.2f}× | {t['result']} |", "",
              f"- CPU time, run:// / URL: {results['cpu_ratio']:.2f}× (less sensitive to a loaded machine)",
              f"- Admin API requests while warm: {results['admin_api_requests_when_warm']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--strict", action="store_true", help="exit 1 when the target fails")
    args = p.parse_args(argv)
    results = measure(args)
    t = results["target"]
    for r in results["rows"]:
        print(f"{r['name']}: median {r['median']:.3f} s ({r['low']:.3f}–{r['high']:.3f}, {r['runs']} runs)")
    print(f"CPU time, run:// / URL: {results['cpu_ratio']:.3f}×")
    print(f"{t['result']}: {t['key']}. {t['text']}: {t['value']:.3f}× "
          f"(Admin API requests while warm: {results['admin_api_requests_when_warm']})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(results))
    return 1 if args.strict and t["result"] != "PASS" else 0


if __name__ == "__main__":
    sys.exit(main())
