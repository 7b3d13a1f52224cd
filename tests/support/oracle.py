"""Token verification independent of crgrpc: google-auth's own verifier.

Tests that check "the server accepted the token" or "the token is valid"
confirm it here rather than with cloudrun_grpc_cli.core.auth.verify (which
the demo's TokenCheck uses), so a bug in crgrpc's verifier cannot make them
pass. google.oauth2.id_token.verify_token checks the RS256 signature against
the keys of certs_url, the audience, iat and exp; the issuer is checked here
as google-auth's verify_oauth2_token does for Google's own certs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The issuers google.oauth2.id_token.verify_oauth2_token accepts.
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")


def google_verified(
    token: str, *, audience: str, certs_url: str, clock_skew: int = 0
) -> Mapping[str, Any]:
    """The claims of token, if google-auth verifies it; ValueError if it does not.

    clock_skew: seconds of leeway on iat and exp (to verify, later, a short-lived
    token that was checked against the clock when it was used)."""
    import google.auth.transport.requests
    from google.oauth2 import id_token

    claims = id_token.verify_token(
        token,
        google.auth.transport.requests.Request(),
        audience=audience,
        certs_url=certs_url,
        clock_skew_in_seconds=clock_skew,
    )
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise ValueError(f"wrong issuer {claims.get('iss')!r}")
    return claims


def bearer(value: str | bytes | None) -> str:
    """The token of an `authorization: Bearer TOKEN` header value (AssertionError otherwise)."""
    assert isinstance(value, str), value
    scheme, _, token = value.partition(" ")
    assert scheme == "Bearer" and token, value
    return token
