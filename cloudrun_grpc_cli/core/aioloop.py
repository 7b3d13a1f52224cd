"""The event loop of crgrpc's asyncio commands (`proxy`, `bench` workers).

uvloop where it is installed (a dependency on Linux and macOS): grpc.aio's
per-call and per-message cost is mostly event-loop work, and uvloop cut the
latency the proxy adds to a unary call by about a third (bench/PROXY_RESULTS.md).
Elsewhere, asyncio's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    """uvloop or asyncio: the loop `run` uses."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on uvloop's loop when it is there."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
