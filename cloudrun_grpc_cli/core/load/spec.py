"""What a load run is asked to do, and how it is shared among worker processes.

`LoadSpec` is the user's request (`crgrpc bench` options, already range-checked
by the CLI); `split` turns it into one `Share` per worker: each worker's part
of --total, of the warmup requests, of --concurrency and of --connections.
A rate is not split: worker w of W takes the tickets w, w+W, w+2W… of one
schedule at --rate, so the workers' requests interleave evenly.
"""

from __future__ import annotations

import math
import os
import re
from typing import NamedTuple

from ...errors import UsageError

MAX_WARMUP_REQUESTS = 1_000_000_000
MAX_WARMUP_SECONDS = 99_999_999.0
WARMUP_TEXT = "a whole number of requests (100) or of seconds (5s)"
_SECONDS = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*s$")


class Warmup(NamedTuple):
    """--warmup: requests, or seconds, run first and left out of the figures."""

    requests: int = 0
    seconds: float = 0.0

    @property
    def none(self) -> bool:
        return self.requests == 0 and self.seconds == 0

    def describe(self) -> str:
        if self.requests:
            return f"{self.requests:,} request{'s' if self.requests != 1 else ''}"
        if self.seconds:
            return f"{self.seconds:g} s"
        return "none"


def parse_warmup(text: str) -> Warmup:
    """`100` (requests) or `5s` / `2.5s` (seconds); ValueError(WARMUP_TEXT) otherwise."""
    t = text.strip().lower()
    if t.isdigit():
        n = int(t)
        if n > MAX_WARMUP_REQUESTS:
            raise ValueError(WARMUP_TEXT)
        return Warmup(requests=n)
    m = _SECONDS.match(t)
    if m is None:
        raise ValueError(WARMUP_TEXT)
    seconds = float(m.group(1))
    if not math.isfinite(seconds) or seconds > MAX_WARMUP_SECONDS:
        raise ValueError(WARMUP_TEXT)
    return Warmup(seconds=seconds)


class LoadSpec(NamedTuple):
    total: int | None = None  # measured requests; exactly one of total and duration
    duration: float | None = None  # seconds of measured load
    concurrency: int = 10  # requests in flight at most, over all workers
    connections: int | None = None  # channels over all workers; None: one per worker
    rate: float | None = None  # requests per second over all workers; None: closed loop
    warmup: Warmup = Warmup()
    workers: int | None = None  # None: the CPU cores this process may use
    max_error_rate: float = 0.0


class Share(NamedTuple):
    """One worker's part of the run."""

    worker: int  # 0, 1, … of `workers`
    workers: int
    total: int | None
    warmup_requests: int
    concurrency: int
    connections: int


def cpu_cores() -> int:
    """The cores this process may run on (its affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check(spec: LoadSpec) -> None:
    """The rules between options (each one's range is the CLI's)."""
    if (spec.total is None) == (spec.duration is None):
        raise UsageError(
            "give exactly one of --total and --duration",
            "--total N sends N requests; --duration SECONDS sends for that long",
        )
    if spec.connections is not None and spec.connections > spec.concurrency:
        raise UsageError(
            f"--connections {spec.connections} is more than --concurrency {spec.concurrency}: "
            "a connection without a request in flight carries no load",
            "raise --concurrency to at least --connections",
        )
    w = spec.workers
    if w is not None:
        if w > spec.concurrency:
            raise UsageError(
                f"--workers {w} is more than --concurrency {spec.concurrency}: "
                "each worker needs at least one request in flight",
                "raise --concurrency, or lower --workers",
            )
        if spec.connections is not None and w > spec.connections:
            raise UsageError(
                f"--workers {w} is more than --connections {spec.connections}: "
                "each worker dials connections of its own",
                "raise --connections, or lower --workers",
            )


def worker_count(spec: LoadSpec) -> int:
    """--workers, or the cores; never more than the concurrency, the connections or
    the requests to send."""
    w = spec.workers if spec.workers is not None else cpu_cores()
    w = min(w, spec.concurrency)
    if spec.connections is not None:
        w = min(w, spec.connections)
    if spec.total is not None:
        w = min(w, max(1, spec.total))
    return max(1, w)


def _part(n: int, w: int, of: int) -> int:
    return n // of + (1 if w < n % of else 0)


def split(spec: LoadSpec) -> list[Share]:
    check(spec)
    workers = worker_count(spec)
    connections = spec.connections if spec.connections is not None else workers
    return [
        Share(
            worker=w,
            workers=workers,
            total=None if spec.total is None else _part(spec.total, w, workers),
            warmup_requests=_part(spec.warmup.requests, w, workers),
            concurrency=_part(spec.concurrency, w, workers),
            connections=max(1, _part(connections, w, workers)),
        )
        for w in range(workers)
    ]
