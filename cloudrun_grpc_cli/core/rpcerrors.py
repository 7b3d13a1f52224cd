"""Turn a grpc.RpcError into the crgrpc error that names its exit code.

Owns the line between "no HTTP/2 answer at all" (exit 4) and "the server or
a front end answered status N" (64+N), parsed from gRPC's details text. It
only classifies: core/hints.py says what to do about it.
"""

from __future__ import annotations

import grpc

from ..errors import ConnectError, CrgrpcError, RpcStatusError
from .secrets import scrub

# Fragments of gRPC's UNAVAILABLE details that mean no HTTP/2 answer at all.
_CONNECT_MARKERS: tuple[tuple[str, str], ...] = (
    ("connection refused", "connection refused"),
    ("dns resolution failed", "DNS resolution failed"),
    ("errors resolving", "DNS resolution failed"),
    ("domain name not found", "DNS resolution failed"),
    ("address lookup failed", "DNS resolution failed"),
    ("name resolution", "DNS resolution failed"),
    ("could not resolve", "DNS resolution failed"),
    ("certificate has expired", "TLS certificate has expired"),
    ("certificate is not yet valid", "TLS certificate is not yet valid"),
    ("certificate_verify_failed", "TLS certificate verification failed"),
    ("certificate verify failed", "TLS certificate verification failed"),
    ("peer name", "TLS certificate is for another name"),
    ("hostname verification", "TLS certificate is for another name"),
    ("hostname mismatch", "TLS certificate is for another name"),
    ("ssl handshake failed", "TLS handshake failed"),
    ("handshake", "TLS handshake failed"),
    ("tls", "TLS handshake failed"),
    ("ssl", "TLS handshake failed"),
    ("connect timeout", "connect timeout"),
    ("failed to connect to all addresses", "could not connect"),
    ("no such file or directory", "no such socket"),
    ("network is unreachable", "network unreachable"),
    ("connection reset", "connection reset during connect"),
    ("socket closed", "connection closed during connect"),
    ("connection attempt timed out", "connect timeout"),
    ("timed out", "connect timeout"),
)

def connect_reason(details: str) -> str | None:
    """The short reason a connection failed, or None if details say otherwise."""
    low = details.lower()
    if "received http2 header" in low or "http2 header with status" in low:
        return None  # an HTTP answer came back: not a connection failure
    for marker, reason in _CONNECT_MARKERS:
        if marker in low:
            return reason
    return None


def connect_error(address: str, details: str, reason: str | None = None) -> ConnectError:
    reason = reason or connect_reason(details) or "could not connect"
    return ConnectError(f"cannot connect to {address}: {reason}", reason=reason, details=scrub(details))


def from_rpc_error(
    err: grpc.RpcError, *, address: str, connected: bool = True, what: str = ""
) -> CrgrpcError:
    """Map a failed call. `connected` says whether the channel had reached READY."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = scrub((err.details() if hasattr(err, "details") else "") or "")
    if code == grpc.StatusCode.UNAVAILABLE and not connected:
        reason = connect_reason(details)
        if reason is not None:
            return connect_error(address, details, reason)
    num, name = classify(code, details)
    prefix = f"{what}: " if what else ""
    return RpcStatusError(num, name, f"{prefix}{details}".strip().rstrip(":"), phase=what or "call")


# What gRPC says when an answer ended without grpc-status: an HTTP error page from a
# front end (Cloud Run sends one while a service starts), read before its :status was.
_NOT_GRPC = "data frame with end_stream flag received"
UNAVAILABLE = (14, "UNAVAILABLE")


def is_front_end_answer(details: str) -> bool:
    """An HTTP answer without a gRPC status: gRPC's retry policy never retries it
    (response headers arrived), so crgrpc does."""
    low = details.lower()
    return "http2 header with status" in low or _NOT_GRPC in low


def retry_backoff(retry: int) -> float:
    """Seconds to wait before retry number `retry` (1-based) after a front end's answer."""
    return min(0.5 * 2.0 ** (retry - 1), 4.0)


def classify(code: grpc.StatusCode | None, details: str) -> tuple[int, str]:
    """(number, NAME) of a failed call. Every form of a front end's HTTP answer
    without a gRPC status (503 while starting) is UNAVAILABLE, whatever the race
    inside gRPC made of it (UNKNOWN or INTERNAL "Stream removed")."""
    num, name = status_of(code)
    if num in (2, 13) and _NOT_GRPC in details.lower():
        return UNAVAILABLE
    return num, name


def status_of(code: grpc.StatusCode | None) -> tuple[int, str]:
    """(number, NAME) of a grpc.StatusCode."""
    if code is None:
        return 2, "UNKNOWN"
    value = code.value
    num = value[0] if isinstance(value, tuple) else int(value)
    return int(num), code.name
