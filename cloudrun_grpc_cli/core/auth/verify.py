"""Verifying an ID token: RS256 signature against a certs source, issuer, audience, expiry.

Owns loading certs (a URL or a file, Google's PEM map {kid: cert} or a JWKS)
and the individual checks `token decode --verify` reports and the demo
server's token check (demo/tokencheck.py) enforces. Signatures are checked
with google-auth's RSA verifier, imported when needed.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import CredentialsError
from .jwt import DecodedJwt, decode_jwt, expiry_phrase, humanize_delta
from .minting import google_reason

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
_FETCH_TIMEOUT = 10.0


@dataclass(frozen=True)
class Verification:
    ok: bool
    checks: list[tuple[str, bool | None, str]]  # (name, passed, detail); passed None: skipped


def certs_source(certs: str | None = None) -> str:
    """The certs to use: the argument (the CLI's --certs), or Google's."""
    return (certs or "").strip() or GOOGLE_CERTS_URL


def _b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def _jwk_to_pem(jwk: Mapping[str, Any]) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    numbers = rsa.RSAPublicNumbers(_b64url_int(str(jwk["e"])), _b64url_int(str(jwk["n"])))
    return (
        numbers.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def parse_certs(data: Any, where: str) -> dict[str, str]:
    """{kid: PEM} from a PEM map or a JWKS (RSA keys only)."""
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        out: dict[str, str] = {}
        for i, jwk in enumerate(data["keys"]):
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA":
                continue
            try:
                out[str(jwk.get("kid", f"#{i}"))] = _jwk_to_pem(jwk)
            except (KeyError, ValueError, TypeError):
                continue
        if not out:
            raise CredentialsError(f"the JWKS at {where} has no usable RSA key")
        return out
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(v, str) and "-----BEGIN" in v for v in data.values())
    ):
        return {str(k): v for k, v in data.items()}
    raise CredentialsError(
        f'{where} holds neither a PEM map {{kid: certificate}} nor a JWKS {{"keys": […]}}'
    )


def load_certs(certs: str | None = None, *, proxy: str | None = None) -> dict[str, str]:
    """Fetch (URL, through core.egress: --proxy or the proxy variables) or read (file) the
    certs: {kid: PEM}. CredentialsError when it cannot; a proxy's refusal is exit 4."""
    where = certs_source(certs)
    if where.startswith(("https://", "http://")):
        import requests

        from .. import egress

        try:
            resp = egress.session(proxy).get(where, timeout=_FETCH_TIMEOUT)
        except requests.RequestException as exc:
            raise CredentialsError(
                f"could not fetch certs from {where}: {_fetch_reason(exc)}",
                "give --certs FILE (a PEM map or a JWKS), or another --certs URL",
            ) from None
        if resp.status_code != 200:
            raise CredentialsError(
                f"could not fetch certs from {where}: HTTP {resp.status_code}",
                "give --certs FILE (a PEM map or a JWKS), or another --certs URL",
            )
        text = resp.text
    else:
        try:
            text = Path(where).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CredentialsError(f"cannot read certs file {where}: {reason}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise CredentialsError(f"the certs at {where} are not JSON") from None
    return parse_certs(data, where)


def _fetch_reason(exc: Exception) -> str:
    """A short reason for a failed certs fetch (requests' own text runs to 300 characters)."""
    import requests

    text = str(exc).lower()
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if "refused" in text:
        return "connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "DNS resolution failed"
    return google_reason(exc)


def check_signature(jwt: DecodedJwt, certs: Mapping[str, str]) -> tuple[bool, str]:
    from google.auth import crypt

    alg = jwt.header.get("alg")
    if alg != "RS256":
        return False, f"unsupported algorithm {alg!r} (RS256 expected)"
    kid = jwt.header.get("kid")
    if kid is not None:
        if str(kid) not in certs:
            return False, f"no certificate with kid {kid}"
        candidates = [(str(kid), certs[str(kid)])]
    else:
        candidates = list(certs.items())
    for key_id, pem in candidates:
        try:
            verifier = crypt.RSAVerifier.from_string(pem)
        except (ValueError, TypeError):
            continue
        if verifier.verify(jwt.signing_input, jwt.signature):
            return True, f"RS256, kid {key_id}"
    return False, "signature does not match" + (f" the key with kid {kid}" if kid else " any key")


def check_claims(
    jwt: DecodedJwt,
    *,
    audience: str | None,
    issuers: Sequence[str] = GOOGLE_ISSUERS,
    clock_skew: int = 10,
    now: float | None = None,
) -> list[tuple[str, bool | None, str]]:
    """The issuer, audience and expiry checks, in that order."""
    now = time.time() if now is None else now
    claims = jwt.claims
    checks: list[tuple[str, bool | None, str]] = []

    iss = claims.get("iss")
    if iss in issuers:
        checks.append(("issuer", True, str(iss)))
    else:
        checks.append(("issuer", False, f"{iss!r} is not {' or '.join(issuers)}"))

    aud = claims.get("aud")
    if audience is None:
        checks.append(("audience", None, "not checked: no --audience"))  # skipped: no ✓
    else:
        auds = aud if isinstance(aud, list) else [aud]
        if audience in auds:
            checks.append(("audience", True, audience))
        else:
            checks.append(("audience", False, f"aud is {aud!r}, not {audience!r}"))

    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        checks.append(("expiry", False, "no exp claim"))
    elif now > exp + clock_skew:
        checks.append(("expiry", False, expiry_phrase(exp - now)))
    elif isinstance(iat, (int, float)) and not isinstance(iat, bool) and iat > now + clock_skew:
        checks.append(("expiry", False, f"issued {humanize_delta(iat - now)} in the future"))
    else:
        left = exp - now
        text = expiry_phrase(left) if left > 0 else "within the clock skew"
        checks.append(("expiry", True, text))
    return checks


def verify_decoded(
    jwt: DecodedJwt,
    certs: Mapping[str, str],
    *,
    audience: str | None = None,
    issuers: Sequence[str] = GOOGLE_ISSUERS,
    clock_skew: int = 10,
    now: float | None = None,
) -> Verification:
    passed, detail = check_signature(jwt, certs)
    checks: list[tuple[str, bool | None, str]] = [("signature", passed, detail)]
    checks += check_claims(jwt, audience=audience, issuers=issuers, clock_skew=clock_skew, now=now)
    return Verification(ok=all(c[1] is not False for c in checks), checks=checks)


def verify_jwt(
    token: str,
    *,
    certs: str | None = None,
    audience: str | None = None,
    clock_skew: int = 10,
    issuers: Sequence[str] = GOOGLE_ISSUERS,
    proxy: str | None = None,
) -> Verification:
    """Decode, load the certs and run every check. CredentialsError for a non-JWT or certs
    that cannot be loaded; a failed check is ok=False, not an exception."""
    jwt = decode_jwt(token)
    return verify_decoded(
        jwt, load_certs(certs, proxy=proxy), audience=audience, issuers=issuers,
        clock_skew=clock_skew,
    )
