"""The one place that touches grpcio's private APIs.

grpcio's public `subscribe()` starts a polling thread that makes `close()`
wait up to 0.2 s; its Cython channel (`Channel._channel`) answers the same
questions for free. Everything here falls back to the public API when the
private one is missing, and tests/test_layers.py fails with a clear message
if grpcio changes it.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import grpc

READY = 2
TRANSIENT_FAILURE = 3


class CoreChannel(Protocol):
    def check_connectivity_state(self, try_to_connect: bool) -> int: ...
    def watch_connectivity_state(self, last_observed_state: int, deadline: float) -> Any: ...


def core_channel(channel: grpc.Channel) -> CoreChannel | None:
    """grpcio's Cython channel behind a grpc.Channel, or None if grpcio changed."""
    core = getattr(channel, "_channel", None)
    if core is None:
        return None
    if not (hasattr(core, "check_connectivity_state") and hasattr(core, "watch_connectivity_state")):
        return None
    return core  # type: ignore[no-any-return]


def state(channel: grpc.Channel) -> int | None:
    """The channel's connectivity state as a number (2 READY), or None if unknown."""
    core = core_channel(channel)
    return None if core is None else int(core.check_connectivity_state(True))


def watch(channel: grpc.Channel, last: int, seconds: float) -> int:
    """Wait up to seconds for the state to leave `last`; the new state."""
    core = core_channel(channel)
    assert core is not None
    core.watch_connectivity_state(last, time.time() + seconds)
    return int(core.check_connectivity_state(True))
