"""Latencies in an HDR histogram (the `hdrhistogram` package): recorded in
microseconds from 1 µs to one hour at three significant digits, encoded to
travel between processes, and merged by adding counts, so that the
percentiles of several workers are those of all their requests together,
never an average of percentiles.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour
DIGITS = 3  # values are kept within 0.1 %

# Bucket bounds of the drawn histogram: the finest series (per decade) that
# covers the recorded range in at most MAX_BUCKETS rows.
_SERIES = (
    (1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0),
    (1.0, 1.6, 2.5, 4.0, 6.3),
    (1.0, 2.0, 5.0),
    (1.0,),
)
MAX_BUCKETS = 24


class Latencies:
    def __init__(self) -> None:
        self._h: Any = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)

    def record(self, seconds: float) -> None:
        us = round(seconds * 1_000_000)
        self._h.record_value(min(max(us, LOWEST_US), HIGHEST_US))

    def add(self, other: Latencies) -> None:
        if other.count:
            self._h.add(other._h)

    def encode(self) -> str:
        return str(self._h.encode().decode("ascii"))

    def add_encoded(self, text: str) -> None:
        self._h.decode_and_add(text)

    @classmethod
    def decode(cls, text: str) -> Latencies:
        out = cls()
        out.add_encoded(text)
        return out

    def reset(self) -> None:
        self._h.reset()

    @property
    def count(self) -> int:
        return int(self._h.get_total_count())

    def percentile_ms(self, p: float) -> float:
        return self.percentiles_ms([p])[p]

    def percentiles_ms(self, ps: list[float]) -> dict[float, float]:
        """Each percentile as hdrh's get_value_at_percentile gives it (the highest value
        equivalent to the one at that count), from one pass over the recorded values."""
        h = self._h
        out: dict[float, float] = {}
        values = self._recorded()
        for p in sorted(ps):
            target = h.get_target_count_at_percentile(p)
            seen = 0
            for low, n in values:
                seen += n
                if seen >= target:
                    out[p] = _ms(h.get_highest_equivalent_value(low))
                    break
            else:
                out[p] = 0.0
        return out

    @property
    def min_ms(self) -> float:
        return _ms(self._h.get_min_value())

    @property
    def max_ms(self) -> float:
        return _ms(self._h.get_max_value())

    @property
    def mean_ms(self) -> float:
        """The mean of the values' midpoints, as hdrh's get_mean_value computes it."""
        h = self._h
        total = h.get_total_count()
        if not total:
            return 0.0
        acc = 0
        for low, n in self._recorded():
            high = h.get_highest_equivalent_value(low)
            acc += n * (low + ((high - low + 1) >> 1))
        return round(float(acc) / float(total) / 1000, 3)

    def _recorded(self) -> list[tuple[int, int]]:
        """(lowest equivalent value in µs, count) of every non-empty slot, ascending.

        Read from the counts array at C speed: hdrh's own iterators step through
        every slot in Python, which costs seconds on a large histogram."""
        h = self._h
        counts = h.counts[: h.counts_len]
        return [(h.get_value_from_index(i), n) for i, n in enumerate(counts) if n]

    def values(self) -> list[tuple[int, int]]:
        """(value in µs, count) of every recorded value, ascending (each value the
        highest of the ones it stands for: within 0.1 % of what was recorded)."""
        h = self._h
        return [(int(h.get_highest_equivalent_value(low)), int(n)) for low, n in self._recorded()]

    def buckets(self) -> list[tuple[float, int]]:
        """(upper bound in ms, count) from the bucket of the fastest request to the
        slowest's, empty ones between included; the counts add up to `count`."""
        values = self.values()
        if not values:
            return []
        bounds = bucket_bounds(values[0][0], values[-1][0])
        out = [[b, 0] for b in bounds]
        i = 0
        for us, n in values:
            while i < len(bounds) - 1 and us > bounds[i] * 1000:
                i += 1
            out[i][1] += n
        return [(float(b), int(n)) for b, n in out]


def _ms(us: Any) -> float:
    return round(int(us) / 1000, 3)


def bucket_bounds(lo_us: int, hi_us: int) -> list[float]:
    """Upper bounds (ms) of a 1-1.25-1.6-2… series (or a coarser one) from the
    first that holds lo_us to the first that holds hi_us."""
    lo, hi = lo_us / 1000, hi_us / 1000
    for series in _SERIES:
        bounds = _series_bounds(series, lo, hi)
        if len(bounds) <= MAX_BUCKETS:
            return bounds
    return bounds


def _series_bounds(series: tuple[float, ...], lo: float, hi: float) -> list[float]:
    out: list[float] = []
    exponent = -3  # 0.001 ms: the histogram's lowest value
    while True:
        for m in series:
            b = round(m * 10.0**exponent, 6)
            if b < lo and not out:
                continue
            out.append(b)
            if b >= hi:
                return out
        exponent += 1
