"""The load generator's parts without a command line: shares, warmup texts,
histograms (against hdrhistogram's own answers), the merge, the exit rule, and
the token feed refreshing in the background."""

from __future__ import annotations

import itertools
import random
import time

import pytest
from hdrh.histogram import HdrHistogram

from cloudrun_grpc_cli.core import aioloop
from cloudrun_grpc_cli.core.auth.policy import AuthPlan
from cloudrun_grpc_cli.core.auth.token import IdToken, MintingProvider, StaticProvider
from cloudrun_grpc_cli.core.load.histogram import Latencies, bucket_bounds
from cloudrun_grpc_cli.core.load.report import ErrorRateExceeded, Report, check_error_rate
from cloudrun_grpc_cli.core.load.spec import LoadSpec, Share, Warmup, parse_warmup, split
from cloudrun_grpc_cli.core.load.tokens import TokenFeed
from cloudrun_grpc_cli.core.load.worker import Job, WorkerResult, _Run, _wait_until
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.errors import UsageError
from cloudrun_grpc_cli.settings import Settings
from tests.support.issuer import Issuer

# --- shares -----------------------------------------------------------------------------------


def test_split_shares_total_concurrency_connections_and_warmup() -> None:
    shares = split(LoadSpec(total=31, concurrency=5, connections=4, warmup=Warmup(requests=7), workers=3))
    assert shares == [
        Share(worker=0, workers=3, total=11, warmup_requests=3, concurrency=2, connections=2),
        Share(worker=1, workers=3, total=10, warmup_requests=2, concurrency=2, connections=1),
        Share(worker=2, workers=3, total=10, warmup_requests=2, concurrency=1, connections=1),
    ]


def test_default_is_one_connection_per_worker_and_no_more_workers_than_requests() -> None:
    assert [s.connections for s in split(LoadSpec(duration=1, workers=4))] == [1, 1, 1, 1]
    assert len(split(LoadSpec(total=2, workers=4))) == 2
    assert len(split(LoadSpec(total=100, concurrency=1))) == 1  # default workers: never above -c


@pytest.mark.parametrize(
    "spec",
    [LoadSpec(), LoadSpec(total=1, duration=1), LoadSpec(total=1, concurrency=2, workers=3),
     LoadSpec(total=1, connections=11), LoadSpec(total=1, connections=1, workers=2)],
)
def test_conflicts_are_usage_errors(spec: LoadSpec) -> None:
    with pytest.raises(UsageError):
        split(spec)


@pytest.mark.parametrize(
    ("text", "warmup"),
    [("0", Warmup()), ("100", Warmup(requests=100)), ("5s", Warmup(seconds=5.0)),
     ("2.5s", Warmup(seconds=2.5)), (" 3 S ", Warmup(seconds=3.0)), (".5s", Warmup(seconds=0.5))],
)
def test_parse_warmup(text: str, warmup: Warmup) -> None:
    assert parse_warmup(text) == warmup


@pytest.mark.parametrize("text", ["", "x", "-1", "1.5", "5m", "5 ms", "inf s", "nans", "1e3s"])
def test_parse_warmup_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"^a whole number of requests \(100\) or of seconds \(5s\)$"):
        parse_warmup(text)


# --- histograms -------------------------------------------------------------------------------


def _latencies(values_us: list[int]) -> Latencies:
    lat = Latencies()
    for v in values_us:
        lat.record(v / 1e6)
    return lat


def test_figures_are_hdrhistograms_own() -> None:
    rng = random.Random(7)
    values = [max(1, int(rng.lognormvariate(8, 1.3))) for _ in range(20000)]
    lat = _latencies(values)
    ref = HdrHistogram(1, 3_600_000_000, 3)
    for v in values:
        ref.record_value(v)
    ps = [50.0, 90.0, 95.0, 99.0, 99.9, 100.0]
    assert lat.percentiles_ms(ps) == {p: round(ref.get_value_at_percentile(p) / 1000, 3) for p in ps}
    assert lat.mean_ms == round(ref.get_mean_value() / 1000, 3)
    assert lat.values() == [(i.value_iterated_to, i.count_at_value_iterated_to) for i in ref.get_recorded_iterator()]
    assert (lat.min_ms, lat.max_ms) == (round(ref.get_min_value() / 1000, 3), round(ref.get_max_value() / 1000, 3))


def test_merging_is_exact_not_an_average_of_percentiles() -> None:
    """Worker A: 90 fast requests; worker B: 10 slow. The merged p50 is a fast
    one and p95 a slow one, as if one process had recorded all 100."""
    fast, slow = [1000 + i for i in range(90)], [50_000 + i for i in range(10)]
    a, b, both = _latencies(fast), _latencies(slow), _latencies(fast + slow)
    merged = Latencies.decode(a.encode())
    merged.add_encoded(b.encode())
    assert merged.count == 100
    assert merged.values() == both.values()
    assert merged.percentiles_ms([50, 95, 99]) == both.percentiles_ms([50, 95, 99])
    assert 1.0 <= merged.percentile_ms(50) <= 1.1
    assert merged.percentile_ms(95) == pytest.approx(50.0, rel=0.01)
    averaged = (a.percentile_ms(50) + b.percentile_ms(50)) / 2
    assert abs(averaged - merged.percentile_ms(50)) > 20  # what averaging would have said


def _result(values_us: list[int], errors: dict[str, int] | None = None, *, start: float, end: float,
            samples: tuple[tuple[float, str], ...] = ()) -> WorkerResult:
    errors = errors or {}
    codes = {"INTERNAL": 13, "RESOURCE_EXHAUSTED": 8, "UNAVAILABLE": 14}
    return WorkerResult(
        latencies=_latencies(values_us).encode(), ok=len(values_us) - sum(errors.values()),
        errors=errors, codes={k: codes[k] for k in errors}, samples=samples, received=0,
        started=start, ended=end, warmup_done=0, warmup_errors=0, token_refreshes=0,
        token_failures=0, token_failure="",
    )


def _merge(*results: WorkerResult) -> Report:
    return Report.merge(results, method="m", kind="unary", target="t", spec=LoadSpec(total=1),
                        connections=len(results), sent_per_request=1)


def test_report_merge_counts_time_and_samples() -> None:
    a = _result([1000] * 6, {"INTERNAL": 2}, start=10.0, end=12.0, samples=((11.5, "INTERNAL: b"), (10.5, "INTERNAL: a")))
    b = _result([2000] * 4, {"RESOURCE_EXHAUSTED": 2}, start=10.1, end=12.5, samples=((10.7, "RESOURCE_EXHAUSTED: c"), (10.9, "INTERNAL: a")))
    r = _merge(a, b)
    doc = r.document()
    assert (doc["total"], doc["ok"], doc["errors"]) == (10, 6, 4)
    assert doc["duration_s"] == 2.5 and doc["rps"] == 4.0
    assert doc["status"] == {"OK": 6, "RESOURCE_EXHAUSTED": 2, "INTERNAL": 2}  # ties: by status number
    assert doc["error_samples"] == ["INTERNAL: a", "RESOURCE_EXHAUSTED: c", "INTERNAL: b"]  # first seen first
    assert doc["histogram"] == [{"le_ms": 1.0, "count": 6}, {"le_ms": 1.25, "count": 0}, {"le_ms": 1.6, "count": 0}, {"le_ms": 2.0, "count": 4}]


def test_the_gate() -> None:
    r = _merge(_result([1000] * 10, {"INTERNAL": 1, "UNAVAILABLE": 2}, start=0, end=1,
                       samples=((0.1, "INTERNAL: x"), (0.2, "UNAVAILABLE: y"))))
    check_error_rate(r, 0.3)
    with pytest.raises(ErrorRateExceeded) as info:
        check_error_rate(r, 0.29)
    err = info.value
    assert (err.exit_code, err.code, err.name, err.details) == (78, 14, "UNAVAILABLE", "y")
    assert err.message == ("3 of 10 requests failed (30%), more than --max-error-rate 0.29 allows; "
                           "most often UNAVAILABLE (2): y")
    check_error_rate(_merge(_result([1000] * 3, start=0, end=1)), 0.0)  # no error: 0


@pytest.mark.parametrize(
    ("lo", "hi", "bounds"),
    [(1000, 1000, [1.0]), (900, 2100, [1.0, 1.25, 1.6, 2.0, 2.5]), (3, 7, [0.0032, 0.004, 0.005, 0.0063, 0.008]),
     (1000, 10_000_000, [1.0, 1.6, 2.5, 4.0, 6.3, 10.0, 16.0, 25.0, 40.0, 63.0, 100.0, 160.0, 250.0, 400.0,
                         630.0, 1000.0, 1600.0, 2500.0, 4000.0, 6300.0, 10000.0]),
     (1, 3_600_000_000, [0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0, 10000000.0])],
)
def test_bucket_bounds(lo: int, hi: int, bounds: list[float]) -> None:
    assert bucket_bounds(lo, hi) == bounds


# --- the token feed ---------------------------------------------------------------------------


def test_the_feed_refreshes_before_expiry_without_minting_per_request() -> None:
    issuer = Issuer(lifetime=2)
    minted: list[float] = []

    def mint() -> str:
        minted.append(time.time())
        return issuer.id_token("https://x")

    provider = MintingProvider(source="test", mint=mint, identity="i", audience="https://x", header="authorization", cache=None)
    feed = TokenFeed(AuthPlan(provider, "authorization", "https://x"), [("x-user", "u")])
    first = feed.metadata
    assert first[0] == ("x-user", "u") and first[1][0] == "authorization"
    assert len(minted) == 1
    feed.start()
    try:
        for _ in range(10000):  # requests read the metadata: no mint
            assert feed.metadata[1][1].startswith("Bearer ")
        assert len(minted) == 1
        deadline = time.monotonic() + 5
        while feed.refreshes < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed.refreshes >= 2 and feed.failures == 0
        assert feed.metadata != first
        # each refresh came while the old token had a quarter of its life left
        assert all(b - a < 2 for a, b in itertools.pairwise(minted))
    finally:
        feed.stop()


def test_a_static_token_is_not_refreshed() -> None:
    token = IdToken.parse(Issuer(lifetime=1).id_token("https://x"), "--token")
    feed = TokenFeed(AuthPlan(StaticProvider(token), "authorization", "https://x")).start()
    assert not feed.refreshing and feed._thread is None
    feed.stop()


# --- the start of a run -----------------------------------------------------------------------


def _job(total: int, warmup: Warmup = Warmup()) -> Job:
    share = split(LoadSpec(total=total, concurrency=1, warmup=warmup))[0]
    return Job(parse_target("localhost:1"), Settings(), "/echo.EchoServer/SayHello", "unary", (b"",), share,
               duration=None, warmup_seconds=warmup.seconds, rate=None, grace=1.0)


def test_a_ticket_taken_a_hair_before_the_start_is_measured_not_a_warmup() -> None:
    # uvloop's sleep may end 1 ms early, so a lane can take its first ticket just
    # before the start. With no warmup it is one of the --total, not an extra
    # request (`-n 30` once sent 31).
    run = _Run(_job(3), feed=None, start=time.monotonic() + 0.5)  # type: ignore[arg-type]
    tickets = [run.take() for _ in range(4)]
    assert [t[1] for t in tickets if t is not None] == [True, True, True]
    assert tickets[3] is None
    assert (run.issued, run.m_issued) == (3, 3)


def test_a_warmup_by_requests_still_comes_first() -> None:
    run = _Run(_job(2, Warmup(requests=2)), feed=None, start=time.monotonic() + 0.5)  # type: ignore[arg-type]
    tickets = [run.take() for _ in range(5)]
    assert [t[1] for t in tickets if t is not None] == [False, False, True, True]
    assert tickets[4] is None


def test_waiting_for_the_start_never_ends_early_on_the_runs_event_loop() -> None:
    # The workers' loop is uvloop, whose timers keep milliseconds: a bare
    # asyncio.sleep(t - now) ends before t about one time in four.
    async def lateness() -> list[float]:
        out = []
        for i in range(100):
            t = time.monotonic() + 0.001 + (i % 13) / 1000
            await _wait_until(t)
            out.append(time.monotonic() - t)
        return out

    late = aioloop.run(lateness())
    assert min(late) >= 0
