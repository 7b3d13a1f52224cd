"""`crgrpc bench` end to end against the TLS Echo service behind its token check.

Every run mints its token with google-auth from a service-account key of the
local issuer and goes through TokenCheck (signature, audience, expiry) on
every call, as Cloud Run would. Counts are asserted exactly where the run
makes them exact (--total, --rate schedules, the server's own count);
timings only within generous bounds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from tests.support.cli import Result, run
from tests.support.issuer import Issuer, issuer_fixture  # noqa: F401
from tests.support.load import (
    Arrivals,
    FailPattern,
    Guarded,
    PeerRecorder,
    SlowIssuer,
    Stall,
    guarded_echo,
)
from tests.support.tls import CertFiles, make_certs

KEYS = ["method", "total", "ok", "errors", "duration_s", "rps", "latency_ms", "histogram", "status", "error_samples"]
LATENCY_KEYS = ["min", "mean", "p50", "p90", "p95", "p99", "max"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("load-tls"))


@pytest.fixture
def srv(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> Iterator[Guarded]:
    with guarded_echo(issuer, certs, tmp_path) as s:
        yield s


def bench(s: Guarded, *args: str, workers: str = "1", mode: str = "json") -> Result:
    return run("bench", s.target, *s.args(), "--workers", workers, "-o", mode, *args)


def report_of(r: Result) -> dict:
    assert r.code == 0, r
    doc = r.json
    check_consistent(doc)
    return doc


def check_consistent(doc: dict) -> None:
    """The report's fields, and how they agree with each other."""
    assert list(doc) == KEYS
    assert doc["ok"] + doc["errors"] == doc["total"]
    assert sum(doc["status"].values()) == doc["total"]
    assert doc["status"].get("OK", 0) == doc["ok"]
    assert sum(b["count"] for b in doc["histogram"]) == doc["total"]
    bounds = [b["le_ms"] for b in doc["histogram"]]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
    lat = doc["latency_ms"]
    assert list(lat) == LATENCY_KEYS
    if doc["total"]:
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"]
        assert bounds[0] >= lat["min"] * 0.999 and bounds[-1] >= lat["max"] * 0.999
        assert doc["duration_s"] > 0
        assert doc["rps"] == pytest.approx(doc["total"] / doc["duration_s"], rel=1e-3)
    else:
        assert all(v is None for v in lat.values()) and doc["histogram"] == []


# --- the four kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "data", "calls_name"),
    [
        ("SayHello", '{"name": "x"}', "SayHello"),
        ("echo.EchoServer/SayHelloStream", '{"name": "x", "count": 3}', "SayHelloStream"),
        ("SayHelloClientStream", '{"name": "a"} {"name": "b"}', "SayHelloClientStream"),
        ("SayHelloBidi", '{"name": "a"}\n{"name": "b"}', "SayHelloBidi"),
    ],
)
def test_each_kind_counts_requests(srv: Guarded, method: str, data: str, calls_name: str) -> None:
    doc = report_of(bench(srv, method, "-d", data, "-n", "30", "-c", "4"))
    assert doc["method"] == f"echo.EchoServer/{calls_name}"
    assert (doc["total"], doc["ok"], doc["errors"]) == (30, 30, 0)
    assert doc["status"] == {"OK": 30}
    assert doc["error_samples"] == []
    assert len(srv.echo_calls(calls_name)) == 30  # one RPC per request, each with a token
    assert len(srv.tokens()) == 1  # minted once, reused by every request


def _line(out: str, label: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(label + " "))


def test_streams_count_their_messages(srv: Guarded) -> None:
    r = bench(srv, "SayHelloStream", "-d", '{"name": "x", "count": 3}', "-n", "20", mode="pretty")
    assert r.code == 0, r
    assert _line(r.stdout, "messages") == "messages  60 received (3.0 per request)"
    assert not any(line.startswith("sent ") for line in r.stdout.splitlines())

    r = bench(srv, "SayHelloBidi", "-d", '{"name": "a"} {"name": "b"} {"name": "c"}', "-n", "10", mode="pretty")
    assert r.code == 0, r
    assert _line(r.stdout, "messages") == "messages  30 received (3.0 per request)"
    assert _line(r.stdout, "sent") == "sent      30 messages (3 per stream)"

    r = bench(srv, "SayHelloClientStream", "-d", '{"name": "a"} {"name": "b"}', "-n", "10", mode="pretty")
    assert r.code == 0, r
    assert _line(r.stdout, "sent") == "sent      20 messages (2 per stream)"


def test_unary_and_server_methods_take_one_message(srv: Guarded) -> None:
    r = bench(srv, "SayHello", "-d", '{"name": "a"} {"name": "b"}', "-n", "5")
    assert (r.code, r.stdout) == (6, "")
    assert r.stderr.splitlines()[0] == (
        "error: request data: 2 messages for the unary method echo.EchoServer/SayHello, which takes one"
    )
    assert srv.echo_calls() == []


def test_bad_request_data_exits_6_before_any_load(srv: Guarded) -> None:
    r = bench(srv, "SayHello", "-d", '{"nope": 1}', "-n", "5")
    assert (r.code, r.stdout) == (6, "")
    assert r.stderr.startswith("error: request data: message 1: unknown field 'nope' in echo.EchoRequest\n")
    assert srv.echo_calls() == []


# --- --total and --duration -------------------------------------------------------------------


def test_total_sends_exactly_n(srv: Guarded) -> None:
    doc = report_of(bench(srv, "SayHello", "-n", "57", "-c", "5"))
    assert (doc["total"], doc["ok"]) == (57, 57)
    assert len(srv.echo_calls("SayHello")) == 57


def test_duration_runs_for_that_long(srv: Guarded) -> None:
    started = time.monotonic()
    doc = report_of(bench(srv, "SayHello", "--duration", "1", "-c", "2"))
    assert time.monotonic() - started < 15
    assert doc["total"] > 0 and doc["errors"] == 0
    assert 1.0 <= doc["duration_s"] < 2.5  # the last requests end just after the second
    assert len(srv.echo_calls("SayHello")) == doc["total"]


# --- --rate: open loop, latency from the due time ------------------------------------------


def test_rate_spreads_requests_over_time(srv: Guarded) -> None:
    doc = report_of(bench(srv, "SayHello", "--rate", "40", "-n", "40", "-c", "10"))
    assert doc["total"] == 40
    # 40 requests at 40/s are due over 0.975 s: a closed loop would take a fraction of that
    # (the upper bounds are generous: a loaded machine answers late, never early)
    assert 0.975 <= doc["duration_s"] <= 3.0
    assert 13 <= doc["rps"] <= 41.1


def test_rate_with_duration_sends_the_schedule(srv: Guarded) -> None:
    doc = report_of(bench(srv, "SayHello", "--rate", "50", "--duration", "1", "-c", "10"))
    assert doc["total"] == 50  # due at 0, 0.02 … 0.98 s: exactly rate x duration
    assert 0.98 <= doc["duration_s"] <= 3.0
    assert 16 <= doc["rps"] <= 51


def _slow_count(doc: dict, ms: float) -> int:
    return sum(b["count"] for b in doc["histogram"] if b["le_ms"] > ms)


def test_open_loop_counts_the_wait_of_requests_due_during_a_stall(
    issuer: Issuer, certs: CertFiles, tmp_path: Path
) -> None:
    """The 10th call stalls 0.6 s. At 50/s with one lane, the ~30 requests due during
    the stall wait for it, and their latency counts from when each was due."""
    with guarded_echo(issuer, certs, tmp_path, Stall([10], 0.6)) as s:
        doc = report_of(bench(s, "SayHello", "--rate", "50", "-n", "60", "-c", "1"))
    assert doc["total"] == 60
    assert doc["latency_ms"]["max"] >= 550
    assert _slow_count(doc, 100) >= 15
    assert doc["latency_ms"]["p90"] >= 300


def test_closed_loop_latency_is_from_sending(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> None:
    """The same stall without --rate: one slow request, the others measured from sending."""
    with guarded_echo(issuer, certs, tmp_path, Stall([10], 0.6)) as s:
        doc = report_of(bench(s, "SayHello", "-n", "60", "-c", "1"))
    assert doc["latency_ms"]["max"] >= 550
    assert _slow_count(doc, 450) == 1


# --- --warmup ---------------------------------------------------------------------------------


def test_warmup_requests_are_left_out(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> None:
    """A cold start: the first 3 calls take 0.6 s each. --warmup 3 keeps them out."""
    with guarded_echo(issuer, certs, tmp_path, Stall([1, 2, 3], 0.6)) as s:
        doc = report_of(bench(s, "SayHello", "-n", "20", "-c", "1", "--warmup", "3"))
        assert len(s.echo_calls("SayHello")) == 23
    assert doc["total"] == 20
    assert doc["latency_ms"]["max"] < 550
    with guarded_echo(issuer, certs, tmp_path, Stall([1, 2, 3], 0.6)) as s:
        cold = report_of(bench(s, "SayHello", "-n", "20", "-c", "1"))
    assert cold["latency_ms"]["max"] >= 590
    assert _slow_count(cold, 550) == 3


def test_warmup_in_seconds_with_a_rate(srv: Guarded) -> None:
    r = bench(srv, "SayHello", "--rate", "20", "--duration", "1", "--warmup", "0.5s", "-c", "2", mode="pretty")
    assert r.code == 0, r
    assert _line(r.stdout, "requests").startswith("requests  20 in ")  # due in [0.5 s, 1.5 s)
    assert _line(r.stdout, "warmup") == "warmup    10 requests left out"  # due in [0, 0.5 s)
    assert len(srv.echo_calls("SayHello")) == 30


# --- --max-error-rate and the exit code ------------------------------------------------------

# Per 10 calls: 7 OK, 2 RESOURCE_EXHAUSTED, 1 INTERNAL.
PATTERN = [None, grpc.StatusCode.INTERNAL, None, grpc.StatusCode.RESOURCE_EXHAUSTED, None,
           grpc.StatusCode.RESOURCE_EXHAUSTED, None, None, None, None]


def test_error_rate_within_the_limit_exits_0(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> None:
    with guarded_echo(issuer, certs, tmp_path, FailPattern(PATTERN)) as s:
        r = bench(s, "SayHello", "-n", "20", "-c", "1", "--max-error-rate", "0.3")
    doc = report_of(r)
    assert (doc["total"], doc["ok"], doc["errors"]) == (20, 14, 6)
    assert doc["status"] == {"OK": 14, "RESOURCE_EXHAUSTED": 4, "INTERNAL": 2}
    assert doc["error_samples"] == [
        "INTERNAL: rejected by the test (internal)",
        "RESOURCE_EXHAUSTED: rejected by the test (resource_exhausted)",
    ]
    assert r.stderr == ""


def test_error_rate_above_the_limit_exits_64_plus_the_most_frequent(
    issuer: Issuer, certs: CertFiles, tmp_path: Path
) -> None:
    with guarded_echo(issuer, certs, tmp_path, FailPattern(PATTERN)) as s:
        r = bench(s, "SayHello", "-n", "20", "-c", "1", "--max-error-rate", "0.29")
    assert r.code == 64 + 8  # RESOURCE_EXHAUSTED, not INTERNAL
    doc = r.json
    check_consistent(doc)
    assert doc["errors"] == 6
    assert r.stderr == (
        "error: 6 of 20 requests failed (30%), more than --max-error-rate 0.29 allows; "
        "most often RESOURCE_EXHAUSTED (4): rejected by the test (resource_exhausted)\n"
    )


def test_a_failing_method_fails_the_default_gate(srv: Guarded) -> None:
    r = bench(srv, "SayHello", "-d", '{"fail_code": 3}', "-n", "10")
    assert r.code == 67
    doc = r.json
    check_consistent(doc)
    assert (doc["ok"], doc["errors"], doc["status"]) == (0, 10, {"INVALID_ARGUMENT": 10})
    assert doc["error_samples"] == ["INVALID_ARGUMENT: fail_code 3 requested before replying"]
    assert r.stderr == (
        "error: 10 of 10 requests failed (100%), more than --max-error-rate 0 allows; "
        "most often INVALID_ARGUMENT (10): fail_code 3 requested before replying\n"
    )
    r = bench(srv, "SayHello", "-d", '{"fail_code": 3}', "-n", "10", "--max-error-rate", "1")
    assert (r.code, r.stderr) == (0, "")


def test_an_unusable_token_exits_3_before_any_load(srv: Guarded) -> None:
    r = run("bench", srv.target, "--cacert", str(srv.ca), "--auth", "--token", "x.y.z", "SayHello", "-n", "3", "--workers", "1", "-o", "json")
    assert r.code == 3  # an unusable --token: exit 3 before any connection
    assert srv.echo_calls() == []


# --- tokens -----------------------------------------------------------------------------------


def test_a_token_that_expires_mid_run_gives_no_error(certs: CertFiles, tmp_path: Path) -> None:
    """Tokens live 8 s and come 3 s old (a quarter of their life, 2 s, is the refresh
    margin); the server allows no clock skew; the issuer takes 0.5 s to mint. A 5 s
    run outlives its first token: the next is minted in the background while the
    load goes on, and no request fails."""
    issuer = SlowIssuer(lifetime=8, delay=0.5, age=3).start()
    arrivals = Arrivals()
    try:
        with guarded_echo(issuer, certs, tmp_path, arrivals, clock_skew=0) as s:
            doc = report_of(bench(s, "SayHello", "--rate", "20", "--duration", "5", "-c", "10"))
            tokens = s.tokens()
    finally:
        issuer.stop()
    assert (doc["total"], doc["errors"]) == (100, 0)
    assert doc["status"] == {"OK": 100}
    assert len(tokens) >= 2  # the run outlived its first token
    assert 2 <= len(issuer.minted) <= 3  # refreshed near expiry, never per request
    for arrived, answered in issuer.windows[1:]:  # each refresh: requests went on meanwhile
        assert any(arrived < t < answered for t in arrivals.times), issuer.windows


def test_a_given_token_that_ends_before_the_run_is_warned_about(srv: Guarded, issuer: Issuer) -> None:
    token = issuer.id_token("https://localhost", email="sa@test-project.iam.gserviceaccount.com", lifetime=2)
    r = run("bench", srv.target, "--cacert", str(srv.ca), "--token", token, "SayHello",
            "--duration", "2.5", "--rate", "10", "--workers", "1", "-o", "json")
    assert r.code == 0, r  # the server allows 10 s of clock skew
    assert r.stderr.startswith("warning: the token you gave expires in ")
    assert r.stderr.endswith(
        " s, before the run ends (about 2.5 s): requests after that will fail; let crgrpc "
        "mint it (--key-file, ADC) to have it refreshed\n"
    )


# --- workers and connections ----------------------------------------------------------------


def test_two_workers_merge_their_figures(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> None:
    """Two worker processes on one schedule at --rate: their counts and histograms add up."""
    peers = PeerRecorder()
    with guarded_echo(issuer, certs, tmp_path, peers) as s:
        r = bench(s, "SayHello", "--rate", "40", "--duration", "1", "-c", "10", "--no-token-cache", workers="2")
        doc = report_of(r)
        calls = len(s.echo_calls("SayHello"))
    assert (doc["total"], doc["ok"], doc["status"]) == (40, 40, {"OK": 40})  # they took turns
    assert calls == 40
    assert 13 <= doc["rps"] <= 41.1
    assert len(set(peers.peers)) == 2  # one connection per worker
    assert len(issuer.minted) == 3  # the command's own (for reflection), then once per worker


def test_connections_are_separate_tcp_connections(issuer: Issuer, certs: CertFiles, tmp_path: Path) -> None:
    peers = PeerRecorder()
    with guarded_echo(issuer, certs, tmp_path, peers) as s:
        doc = report_of(bench(s, "SayHello", "-n", "60", "-c", "6", "--connections", "3"))
    assert doc["total"] == 60
    counts = {p: peers.peers.count(p) for p in peers.peers}
    assert len(counts) == 3 and sum(counts.values()) == 60
    assert min(counts.values()) >= 5  # two lanes on each connection


# --- the terminal ----------------------------------------------------------------------------


def test_pretty_summary(srv: Guarded) -> None:
    r = bench(srv, "SayHello", "-d", '{"name": "x"}', "-n", "25", "-c", "5", mode="pretty")
    assert r.code == 0, r
    lines = r.stdout.splitlines()
    assert lines[0] == f"→ bench echo.EchoServer/SayHello (unary) at {srv.target}"
    assert lines[1] == "  1 worker · 5 concurrent · 1 connection · closed loop · 25 requests"
    assert lines[3] == "summary"
    assert lines[4].startswith("requests  25 in ") and lines[4].endswith(" rps")
    assert lines[5:7] == ["ok        25 (100.0%)", "errors    0 (0.0%)"]
    assert lines[8].split() == ["latency", "ms", "min", "mean", "p50", "p90", "p95", "p99", "max"]
    assert lines[11] == "latency histogram"
    bars = [line for line in lines[12:] if line.lstrip().startswith("≤ ")]
    assert sum(int(line.split()[-2].replace(",", "")) for line in bars) == 25
    assert lines[-2:] == ["status", "OK  25 (100.0%)"]
    assert all(line == line.rstrip() for line in lines)


def test_live_progress_line_on_a_terminal(srv: Guarded) -> None:
    r = run("bench", srv.target, *srv.args(), "SayHello", "--duration", "1", "--workers", "1", tty=True, color="always")
    assert r.code == 0, r
    # one terminal: the line is drawn on stdout's console, then erased for the summary
    assert " done · " in r.stdout and " rps · " in r.stdout and " errors · p50 " in r.stdout
    assert "/1 s" in r.stdout
    assert "summary" in r.stdout


def test_progress_text() -> None:
    from cloudrun_grpc_cli.core.load.runner import Progress
    from cloudrun_grpc_cli.core.load.spec import LoadSpec, Warmup
    from cloudrun_grpc_cli.render.bench import progress_text

    class Load:
        spec = LoadSpec(total=1000, warmup=Warmup(requests=50))

    p = Progress(elapsed=2.0, warmup_done=50, done=420, errors=1, rps=210.4, p50_ms=1.234, p99_ms=12.5, measuring=True)
    assert progress_text(p, Load()) == "420/1,000 done · 210 rps · 1 error · p50 1.23 ms · p99 12.5 ms"  # type: ignore[arg-type]
    warm = p._replace(done=0, warmup_done=20, measuring=False)
    assert progress_text(warm, Load()) == "warming up: 20/50 requests"  # type: ignore[arg-type]


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "first", "hint"),
    [
        ([], "give exactly one of --total and --duration", "--total N sends N requests; --duration SECONDS sends for that long"),
        (["-n", "5", "--duration", "1"], "give exactly one of --total and --duration", "--total N sends N requests; --duration SECONDS sends for that long"),
        (["-n", "5", "-c", "2", "--workers", "3"], "--workers 3 is more than --concurrency 2: each worker needs at least one request in flight", "raise --concurrency, or lower --workers"),
        (["-n", "5", "--connections", "11"], "--connections 11 is more than --concurrency 10: a connection without a request in flight carries no load", "raise --concurrency to at least --connections"),
        (["-n", "5", "--connections", "1", "--workers", "2"], "--workers 2 is more than --connections 1: each worker dials connections of its own", "raise --connections, or lower --workers"),
        (["-n", "5", "-o", "full"], "-o full is not available for this command", "use one of: pretty, json"),
    ],
)
def test_usage_errors_exit_2_before_dialing(args: list[str], first: str, hint: str) -> None:
    r = run("bench", "127.0.0.1:1", "--plaintext", "SayHello", *args)
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == f"error: {first}\nhint: {hint}\n"


@pytest.mark.parametrize(
    ("flag", "value", "what"),
    [
        ("--warmup", "x", "a whole number of requests (100) or of seconds (5s)"),
        ("--warmup", "-1", "a whole number of requests (100) or of seconds (5s)"),
        ("--warmup", "5m", "a whole number of requests (100) or of seconds (5s)"),
        ("--max-error-rate", "1.5", "a finite number from 0 to 1"),
        ("--max-error-rate", "nan", "a finite number from 0 to 1"),
        ("--rate", "0", "a finite number from 0.01 to 10000000"),
        ("--total", "0", "a whole number from 1 to 1000000000"),
        ("--concurrency", "0", "a whole number from 1 to 100000"),
        ("--workers", "0", "a whole number from 1 to 1024"),
        ("--connections", "0", "a whole number from 1 to 10000"),
        ("--duration", "0", "a finite number from 0.001 to 99999999"),
    ],
)
def test_bad_values(flag: str, value: str, what: str, monkeypatch: pytest.MonkeyPatch) -> None:
    r = run("bench", "127.0.0.1:1", "--plaintext", "SayHello", flag, value)
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == f"error: invalid value for '{flag}': {value} is not {what}\nhint: run 'crgrpc bench --help'\n"
    env = "CRGRPC_BENCH_" + flag.lstrip("-").replace("-", "_").upper()
    monkeypatch.setenv(env, value)
    r = run("bench", "127.0.0.1:1", "--plaintext", "SayHello")
    assert r.code == 2
    assert r.stderr.splitlines()[0] == f"error: invalid value for {env} ({flag}): {value} is not {what}"


def test_connection_refused_exits_4() -> None:
    r = run("bench", "127.0.0.1:1", "--plaintext", "SayHello", "-n", "5", "--workers", "1", "-o", "json")
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr.startswith("error: cannot connect to 127.0.0.1:1: connection refused\n")


# --- Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_reports_what_was_measured_and_ends_by_sigint(srv: Guarded) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", "bench", srv.target, *srv.args(), "SayHello",
         "--duration", "60", "--rate", "50", "-c", "2", "--workers", "2", "-o", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=dict(os.environ), start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 45
        while len(srv.echo_calls("SayHello")) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: to the whole process group
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGINT, err  # ends by SIGINT: a shell reports 130
    assert err.decode().endswith("error: interrupted\n")
    doc = json.loads(out)
    check_consistent(doc)
    assert doc["total"] >= 10 and doc["errors"] == 0


def test_json_report_loads_no_rich() -> None:
    from tests.support.servers import echo_server
    from tests.test_imports import crgrpc_imports, loaded

    with echo_server() as s:
        _, out, modules = crgrpc_imports("bench", s.address, "--plaintext", "SayHello", "-n", "5", "--workers", "1", "-o", "json")
    assert json.loads(out)["total"] == 5
    assert loaded(modules, "rich") == []
    assert loaded(modules, "hdrh")  # the histograms


def test_bench_goes_through_the_proxy(srv: Guarded) -> None:
    """The workers' connections go through --proxy like the session's: one tunnel for the
    session (reflection) and one per connection."""
    from tests.support.connectproxy import connect_proxy

    with connect_proxy() as proxy:
        doc = report_of(bench(srv, "SayHello", "-n", "20", "-c", "2", "--connections", "2", "--proxy", proxy.url))
        tunnels = proxy.targets("CONNECT")
    assert (doc["total"], doc["ok"]) == (20, 20)
    assert tunnels == [srv.target] * 3
