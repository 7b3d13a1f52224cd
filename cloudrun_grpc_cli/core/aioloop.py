"""The event loop of crgrpc's asyncio commands (`proxy`, `bench` workers).

uvloop where it is installed (a dependency on Linux and macOS): much of
grpc.aio's cost per call is event-loop work, and on uvloop the load tester
made 35% more requests per second (bench/LOADTEST.md; the proxy gained
1-9%, bench/PROXY_RESULTS.md). Elsewhere, asyncio's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main) on uvloop's loop when it is there."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    result: T = uvloop.run(main)
    return result
