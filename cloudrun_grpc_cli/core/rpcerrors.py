"""Turn a grpc.RpcError into the crgrpc error that names its exit code.

Owns the line between "no HTTP/2 answer at all" (exit 4) and "the server or
a front end answered status N" (64+N), parsed from gRPC's details text.
"""

from __future__ import annotations

import re

import grpc

from ..errors import ConnectError, CrgrpcError, RpcStatusError

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

_TLS_HINTS = (
    "check the host name, or pass --authority NAME to verify another name",
    "for a private CA pass --cacert FILE; for a self-signed server --insecure",
)


# Credentials this process sent (bearer tokens, authorization header values). A
# careless server may quote them back in a status message or a header; nothing
# crgrpc prints from the server should show them (DESIGN.md: never printed in full).
_SECRETS: set[str] = set()
_SECRET_HEADERS = ("authorization", "x-serverless-authorization", "proxy-authorization")
REDACTED = "<redacted>"


def remember_secrets(metadata: list[tuple[str, str | bytes]]) -> None:
    """Note the credentials in metadata about to be sent, for scrub()."""
    for name, value in metadata:
        if name.lower() not in _SECRET_HEADERS or not isinstance(value, str):
            continue
        token = value.split(None, 1)[1] if " " in value.strip() else value
        token = token.strip()
        if len(token) >= 12:
            _SECRETS.add(token)


def scrub(text: str) -> str:
    """text without any credential this process sent."""
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


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
    err = ConnectError(f"cannot connect to {address}: {reason}")
    if reason in ("TLS certificate has expired", "TLS certificate is not yet valid"):
        err.with_hints(
            "the server's certificate is outside its validity period: renew it, "
            "or check this machine's clock"
        )
    elif reason.startswith("TLS"):
        err.with_hints(*_TLS_HINTS)
        if "wrong version number" in details.lower() or "packet length too long" in details.lower():
            err.with_hints("the server may speak plaintext: try --plaintext or http://")
    elif reason == "connection refused":
        err.with_hints("is the server running and listening on that port?")
    elif reason == "connect timeout":
        err.with_hints("raise --connect-timeout, or check the address and any firewall")
    elif reason == "DNS resolution failed":
        err.with_hints("check the host name")
    detail = scrub(_first_line(details))
    if detail and detail.lower() != reason.lower():
        err.with_hints(f"gRPC said: {detail}")
    return err


def _first_line(details: str) -> str:
    text = re.sub(r"\s+", " ", details).strip()
    return text[:300]


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
    num, name = status_of(code)
    prefix = f"{what}: " if what else ""
    result = RpcStatusError(num, name, f"{prefix}{details}".strip().rstrip(":"))
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        result.with_hints("raise --timeout if the server needs longer")
    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details.lower():
        result.with_hints("raise --max-msg-size (bytes) to accept larger messages")
    return result


def status_of(code: grpc.StatusCode | None) -> tuple[int, str]:
    """(number, NAME) of a grpc.StatusCode."""
    if code is None:
        return 2, "UNKNOWN"
    value = code.value
    num = value[0] if isinstance(value, tuple) else int(value)
    return int(num), code.name
