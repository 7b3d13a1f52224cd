"""Reading `python -X importtime` output: which modules a process imported, and their cost."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


@dataclass(frozen=True)
class Imported:
    module: str
    self_us: int
    cumulative_us: int
    depth: int  # 0 for a module imported directly by the program (not by another import)


def parse(stderr: str) -> list[Imported]:
    """Every module of an -X importtime log, in the order the log lists them."""
    found: list[Imported] = []
    for line in stderr.splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        indent = len(m.group(3)) - 1
        found.append(
            Imported(m.group(4), int(m.group(1)), int(m.group(2)), max(indent, 0) // 2)
        )
    return found


def modules(stderr: str) -> set[str]:
    return {i.module for i in parse(stderr)}


def top_level(entries: list[Imported], limit: int = 15) -> list[Imported]:
    """The costliest imports made directly by the program (depth 0), by cumulative time."""
    roots = [e for e in entries if e.depth == 0]
    return sorted(roots, key=lambda e: e.cumulative_us, reverse=True)[:limit]


def by_package(entries: list[Imported], limit: int = 15) -> list[tuple[str, int]]:
    """Self time summed per top-level package (grpc, google.protobuf, rich, …), in µs."""
    totals: dict[str, int] = {}
    for e in entries:
        parts = e.module.split(".")
        key = ".".join(parts[:2]) if parts[0] == "google" and len(parts) > 1 else parts[0]
        totals[key] = totals.get(key, 0) + e.self_us
    return sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:limit]


def total_us(entries: list[Imported]) -> int:
    return sum(e.self_us for e in entries)
