"""The one place that touches grpcio's private APIs.

grpcio's public `subscribe()` starts a polling thread that makes `close()`
wait up to 0.2 s; its Cython channel (`Channel._channel`) answers the same
questions for free. grpc.aio's public `write()` on a stream call turns a
write that races the call's end into INTERNAL "Internal error from Core",
overwriting the status the server really sent (`write_raw` sends through
the call's Cython call, which only raises). Everything here falls back to
the public API when the private one is missing, and tests/test_layers.py
fails with a clear message if grpcio changes it.
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


def aio_raw_sender(call: Any) -> Any:
    """The Cython call's `send_serialized_message` under a grpc.aio stream call, or None."""
    cython_call = getattr(call, "_cython_call", None)
    if getattr(call, "_metadata_sent", None) is None:
        return None
    return getattr(cython_call, "send_serialized_message", None)


async def write_raw(call: Any, message: bytes) -> bool:
    """Send message (bytes) on a grpc.aio stream call; False when the call has ended
    (its own status, untouched, says why). The public write() where grpcio changed."""
    send = aio_raw_sender(call)
    if send is None:
        await call.write(message)
        return True
    if call.done():
        return False
    sent = call._metadata_sent
    if not sent.is_set():
        await sent.wait()
        if call.done():
            return False
    try:
        await send(message)
    except Exception:  # cygrpc's InternalError or ExecuteBatchError: the call ended under us
        return False
    return True
