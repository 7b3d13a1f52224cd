"""Decode JWTs without verifying them, tell ID tokens from access tokens, humanise times.

Owns the JWT wire format (three base64url parts) and the redaction of tokens
in messages. Imports nothing from google.auth: `token decode` without
`--verify` and a token-cache hit must not load it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ...errors import CredentialsError

OPAQUE_HINT = "-H 'authorization: Bearer …' sends an opaque token as is"
_JWT_HINT = "an ID token is a JWT: three base64url parts separated by dots, starting with eyJ"


@dataclass(frozen=True)
class DecodedJwt:
    header: dict[str, Any]
    claims: dict[str, Any]
    signature: bytes
    signing_input: bytes  # b"<header>.<claims>", what the signature covers
    raw: str


def redact(token: str) -> str:
    """The first 8 characters of a token and an ellipsis: safe in messages."""
    token = token.strip()
    return token[:8] + "…" if len(token) > 8 else "…"


def looks_like_access_token(text: str) -> bool:
    """True for Google OAuth access tokens (`ya29.…`), which are opaque, not JWTs."""
    t = text.strip()
    if t.lower().startswith("bearer "):
        t = t[7:].strip()
    return t.startswith("ya29.")


def _b64decode(part: str) -> bytes:
    padded = part + "=" * (-len(part) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _json_part(part: str, what: str, shown: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64decode(part))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CredentialsError(
            f"not a JWT: the {what} of {shown} is not base64url-encoded JSON", _JWT_HINT
        ) from None
    if not isinstance(value, dict):
        raise CredentialsError(f"not a JWT: the {what} of {shown} is not a JSON object", _JWT_HINT)
    return value


def decode_jwt(text: str) -> DecodedJwt:
    """Split and decode a JWT; no signature check. Raises CredentialsError when it is not one."""
    raw = text.strip()
    if raw.lower().startswith("bearer "):
        raw = raw[7:].strip()
    if not raw:
        raise CredentialsError("not a JWT: the token is empty", _JWT_HINT)
    shown = repr(redact(raw))
    if looks_like_access_token(raw):
        raise CredentialsError(
            f"{shown} is an OAuth access token (ya29.…), not an ID token",
            "Cloud Run needs an ID token for the service's audience; drop the access token "
            "and let crgrpc mint one",
            OPAQUE_HINT,
        )
    parts = raw.split(".")
    if len(parts) != 3:
        raise CredentialsError(
            f"not a JWT: {shown} has {len(parts)} dot-separated part"
            f"{'' if len(parts) == 1 else 's'}, not 3",
            _JWT_HINT,
            OPAQUE_HINT,
        )
    if not all(p.isascii() for p in parts):
        raise CredentialsError(f"not a JWT: {shown} is not ASCII", _JWT_HINT)
    header = _json_part(parts[0], "header", shown)
    claims = _json_part(parts[1], "claims", shown)
    try:
        signature = _b64decode(parts[2])
    except (ValueError, binascii.Error):
        raise CredentialsError(
            f"not a JWT: the signature of {shown} is not base64url", _JWT_HINT
        ) from None
    return DecodedJwt(
        header=header,
        claims=claims,
        signature=signature,
        signing_input=f"{parts[0]}.{parts[1]}".encode("ascii"),
        raw=raw,
    )


def humanize_delta(seconds: float) -> str:
    """A duration in its two largest units: "12s", "54m", "2h 3m", "3d 4h" (sign dropped)."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"


def expiry_phrase(left: float, *, shout: bool = False) -> str:
    """`expires in 54m`, or `expired 3m ago` (`EXPIRED 3m ago` with shout)."""
    if left > 0:
        return f"expires in {humanize_delta(left)}"
    return f"{'EXPIRED' if shout else 'expired'} {humanize_delta(left)} ago"


def expiry_text(exp: object, now: float | None = None) -> str:
    """`2026-01-02 03:04:05 UTC (expires in 54m)` / `… (expired 3m ago)` / `none`."""
    import time

    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return "none"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(exp))
    left = exp - (time.time() if now is None else now)
    return f"{stamp} ({expiry_phrase(left)})"
