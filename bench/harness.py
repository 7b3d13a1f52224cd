"""Timing whole processes: one run, paired rounds, medians and ratios.

Each command is a real child process; its wall time is taken around spawn and
reap, and its peak RSS comes from os.wait4's rusage of that child alone.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Target:
    """One target of an issue: a measured value against its limit (lower is better)."""

    key: str
    text: str
    value: float | None  # None: not measured here (SKIP)
    limit: float
    note: str = ""
    unit: str = ""  # how proxy.py prints it: "ms" or "x" (run.py's are all ratios)

    @property
    def verdict(self) -> str:
        if self.value is None:
            return "SKIP"
        return "PASS" if self.value <= self.limit else "FAIL"


class BenchError(RuntimeError):
    """A command failed or produced the wrong output: the numbers would mean nothing."""


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds of the child (its own waited-for children included)
    maxrss_kb: int
    returncode: int


def run_once(
    cmd: Sequence[str],
    env: Mapping[str, str],
    *,
    stdout: Path | None = None,
    timeout: float = 120.0,
    own_rss: bool = False,
) -> Sample:
    """Run cmd to completion; stdout to a file (or /dev/null); BenchError on failure.

    own_rss: measure the command's own peak RSS through bench/rsswrap.py (a child
    forked from this large process would report this process's RSS as its floor).
    """
    out_path = str(stdout) if stdout is not None else os.devnull
    rss_file = None
    if own_rss:
        fd, rss_file = tempfile.mkstemp(prefix="crgrpc-rss-")
        os.close(fd)
        cmd = [sys.executable, "-S", str(Path(__file__).with_name("rsswrap.py")), rss_file, *cmd]
    with open(out_path, "wb") as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd), env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise BenchError(
                f"exit {proc.returncode} after {wall:.2f}s: {' '.join(cmd)[:300]}\n{tail}"
            )
    maxrss = int(usage.ru_maxrss)
    if rss_file is not None:
        with open(rss_file) as f:
            maxrss = int(f.read() or 0)
        os.unlink(rss_file)
    return Sample(wall=wall, cpu=usage.ru_utime + usage.ru_stime, maxrss_kb=maxrss, returncode=proc.returncode)


@dataclass
class Variant:
    """One command measured in a group; `check` validates its output once, after warm-up."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    stdout: Path | None = None
    check: Callable[[Path | None], None] | None = None
    timeout: float = 120.0
    own_rss: bool = False
    samples: list[Sample] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [s.wall for s in self.samples]

    @property
    def cpus(self) -> list[float]:
        return [s.cpu for s in self.samples]

    @property
    def rss(self) -> list[int]:
        return [s.maxrss_kb for s in self.samples]


def run_paired(
    variants: Sequence[Variant],
    *,
    runs: int,
    warmup: int,
    log: Callable[[str], None] = lambda _m: None,
) -> None:
    """Warm-up rounds, then `runs` rounds in which every variant runs once, side by side.

    The order rotates every round so that no variant always runs first (or
    right after the same neighbour). Outputs are checked after the warm-up.
    """
    for rnd in range(warmup + runs):
        shift = rnd % len(variants)
        order = list(variants[shift:]) + list(variants[:shift])
        for v in order:
            sample = run_once(v.cmd, v.env, stdout=v.stdout, timeout=v.timeout, own_rss=v.own_rss)
            if rnd < warmup:
                if rnd == warmup - 1 and v.check is not None:
                    v.check(v.stdout)
                continue
            v.samples.append(sample)
        if warmup == 0 and rnd == 0:
            for v in variants:
                if v.check is not None:
                    v.check(v.stdout)
        log(f"  round {rnd + 1}/{warmup + runs}" + (" (warm-up)" if rnd < warmup else ""))


@dataclass(frozen=True)
class Stats:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples")
        return cls(statistics.median(values), min(values), max(values), len(values))


def ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """The ratio of the medians."""
    return statistics.median(num) / statistics.median(den)
