"""The figures of a load run, merged from its workers, and the exit rule.

Counts are added; histograms are merged by adding their counts (exact:
percentiles of all requests, not averages of the workers' percentiles);
the measured phase runs from the earliest worker's start to the latest
request's end. `document()` is `-o json`'s report. `check_error_rate` is
the CI gate: the run fails, with the most frequent failing status (64+N),
when more than --max-error-rate of its requests failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...errors import RpcStatusError
from .histogram import Latencies
from .spec import LoadSpec
from .worker import MAX_SAMPLES, WorkerResult

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0))


@dataclass
class Report:
    method: str  # pkg.Service/Method
    kind: str
    target: str
    spec: LoadSpec
    workers: int
    connections: int
    latencies: Latencies = field(default_factory=Latencies)
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # NAME → count
    codes: dict[str, int] = field(default_factory=dict)  # NAME → status number
    samples: list[str] = field(default_factory=list)
    received: int = 0  # answer messages of the requests that succeeded
    sent_per_request: int = 1
    started: float | None = None
    ended: float | None = None
    warmup_done: int = 0
    warmup_errors: int = 0
    token_refreshes: int = 0
    token_failures: int = 0
    token_failure: str = ""
    interrupted: bool = False

    @classmethod
    def merge(
        cls,
        results: Sequence[WorkerResult],
        *,
        method: str,
        kind: str,
        target: str,
        spec: LoadSpec,
        connections: int,
        sent_per_request: int,
    ) -> Report:
        report = cls(
            method=method,
            kind=kind,
            target=target,
            spec=spec,
            workers=len(results),
            connections=connections,
            sent_per_request=sent_per_request,
        )
        samples: list[tuple[float, str]] = []
        for r in results:
            report.latencies.add_encoded(r.latencies)
            report.ok += r.ok
            for name, n in r.errors.items():
                report.errors[name] = report.errors.get(name, 0) + n
            report.codes.update(r.codes)
            samples.extend(r.samples)
            report.received += r.received
            if r.started is not None:
                report.started = r.started if report.started is None else min(report.started, r.started)
            if r.ended is not None:
                report.ended = r.ended if report.ended is None else max(report.ended, r.ended)
            report.warmup_done += r.warmup_done
            report.warmup_errors += r.warmup_errors
            report.token_refreshes += r.token_refreshes
            report.token_failures += r.token_failures
            report.token_failure = report.token_failure or r.token_failure
        seen: set[str] = set()
        for _, text in sorted(samples):
            if text not in seen and len(report.samples) < MAX_SAMPLES:
                seen.add(text)
                report.samples.append(text)
        return report

    # --- figures ------------------------------------------------------------------------

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def total(self) -> int:
        return self.ok + self.error_count

    @property
    def duration_s(self) -> float:
        if self.started is None or self.ended is None:
            return 0.0
        return max(0.0, self.ended - self.started)

    @property
    def rps(self) -> float:
        d = self.duration_s
        return self.total / d if d > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.error_count / self.total if self.total else 0.0

    @property
    def messages_sent(self) -> int:
        return self.ok * self.sent_per_request

    def latency_ms(self) -> dict[str, float | None]:
        h = self.latencies
        if not h.count:
            return dict.fromkeys(("min", "mean", *(p for p, _ in PERCENTILES), "max"))
        out: dict[str, float | None] = {"min": h.min_ms, "mean": h.mean_ms}
        values = h.percentiles_ms([p for _, p in PERCENTILES])
        for name, p in PERCENTILES:
            out[name] = values[p]
        out["max"] = h.max_ms
        return out

    def status(self) -> dict[str, int]:
        """NAME → count: OK first, then the failures, most frequent first."""
        out: dict[str, int] = {"OK": self.ok} if self.ok else {}
        for name, n in sorted(self.errors.items(), key=lambda kv: (-kv[1], self.codes.get(kv[0], 99))):
            out[name] = n
        return out

    def most_frequent_failure(self) -> tuple[int, str, int] | None:
        """(status number, NAME, count) of the failure seen most (ties: the lower number)."""
        if not self.errors:
            return None
        name, n = min(self.errors.items(), key=lambda kv: (-kv[1], self.codes.get(kv[0], 99)))
        return self.codes.get(name, 2), name, n

    def document(self) -> dict[str, Any]:
        """The -o json report."""
        return {
            "method": self.method,
            "total": self.total,
            "ok": self.ok,
            "errors": self.error_count,
            "duration_s": round(self.duration_s, 6),
            "rps": round(self.rps, 3),
            "latency_ms": self.latency_ms(),
            "histogram": [{"le_ms": le, "count": n} for le, n in self.latencies.buckets()],
            "status": self.status(),
            "error_samples": list(self.samples),
        }


class ErrorRateExceeded(RpcStatusError):
    """More requests failed than --max-error-rate allows: exit 64+N, N the most
    frequent failing status."""

    def __init__(self, report: Report, limit: float) -> None:
        worst = report.most_frequent_failure()
        assert worst is not None
        code, name, count = worst
        sample = next((s for s in report.samples if s.startswith(name + ":")), "")
        details = sample[len(name) + 1 :].strip()
        super().__init__(code, name, details)
        pct = _percent(report.error_rate)
        most = f"most often {name} ({count:,})"
        self.message = (
            f"{report.error_count:,} of {report.total:,} requests failed ({pct}), more than "
            f"--max-error-rate {limit:g} allows; {most}" + (f": {details}" if details else "")
        )


def _percent(x: float) -> str:
    p = x * 100
    if p == 0 or p >= 10:
        return f"{p:.0f}%" if p == round(p) else f"{p:.1f}%"
    return f"{p:.2g}%"


def check_error_rate(report: Report, limit: float) -> None:
    """Raise ErrorRateExceeded when the error rate is above limit (a fraction)."""
    if report.error_count and report.error_rate > limit:
        raise ErrorRateExceeded(report, limit)
