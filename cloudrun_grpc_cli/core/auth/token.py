"""ID tokens and the providers that hand them out: static, or minted with refresh and cache.

Owns when a token is reused, taken from the disk cache or minted again. The
minting itself is a callable supplied by `sources` (it is the only part that
touches google-auth), so this module imports no google.auth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ...errors import CredentialsError
from .cache import CACHE_MARGIN, TokenCache
from .jwt import decode_jwt

# google-auth refreshes credentials this long before they expire
# (google.auth._helpers.REFRESH_THRESHOLD, 3 min 45 s); kept here so that a
# cache hit needs no google.auth import. A test keeps the two equal.
REFRESH_MARGIN = 225
# A short-lived token (local issuers, tests: 15 s) is refreshed when a quarter of
# its life is left, not REFRESH_MARGIN before exp (which would mint it on every use).
REFRESH_FRACTION = 0.25


def refresh_margin(token: IdToken) -> float:
    """Seconds before exp at which token is refreshed: REFRESH_MARGIN, or a quarter
    of its lifetime when that is shorter."""
    exp, iat = token.expiry, token.issued_at
    if exp is None or iat is None or exp <= iat:
        return REFRESH_MARGIN
    return min(REFRESH_MARGIN, (exp - iat) * REFRESH_FRACTION)


@dataclass(frozen=True)
class IdToken:
    value: str  # the raw JWT
    header: dict[str, Any]
    claims: dict[str, Any]
    source: str  # a human description of where it came from
    audience_bound: bool = True  # False for a gcloud user's token: aud is the OAuth client

    @classmethod
    def parse(cls, value: str, source: str, *, audience_bound: bool = True) -> IdToken:
        """Decode (no verification) a raw JWT; CredentialsError when it is not one."""
        d = decode_jwt(value)
        return cls(d.raw, d.header, d.claims, source, audience_bound)

    @property
    def expiry(self) -> int | None:
        exp = self.claims.get("exp")
        return int(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None

    @property
    def issued_at(self) -> int | None:
        iat = self.claims.get("iat")
        return int(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else None

    @property
    def email(self) -> str | None:
        email = self.claims.get("email")
        return email if isinstance(email, str) else None

    @property
    def audience(self) -> str | list[str] | None:
        aud = self.claims.get("aud")
        if isinstance(aud, str):
            return aud
        if isinstance(aud, list):
            return [str(a) for a in aud]
        return None

    @property
    def issuer(self) -> str | None:
        iss = self.claims.get("iss")
        return iss if isinstance(iss, str) else None

    def seconds_left(self, now: float | None = None) -> float | None:
        exp = self.expiry
        if exp is None:
            return None
        return exp - (time.time() if now is None else now)

    def __repr__(self) -> str:  # never the token itself
        return f"IdToken(source={self.source!r}, claims={self.claims!r})"


class TokenProvider(Protocol):
    source: str
    audience_bound: bool

    def get(self) -> IdToken:
        """Mint, or return the in-memory or disk-cached token; refresh near expiry."""
        ...

    def cached(self) -> IdToken | None:
        """The in-memory or disk-cached token, never minting."""
        ...


class StaticProvider:
    """A token the user already has (--token or its variable, --token-file); never refreshed."""

    def __init__(self, token: IdToken) -> None:
        self.token = token
        self.source = token.source
        self.audience_bound = True

    def get(self) -> IdToken:
        return self.token

    def cached(self) -> IdToken | None:
        return self.token


Mint = Callable[[], str]


class MintingProvider:
    """Mints with `mint` when needed: reuses a token until its refresh margin before `exp`,
    and shares it through the disk cache (reused there until CACHE_MARGIN before `exp`)."""

    def __init__(
        self,
        *,
        source: str,
        mint: Mint,
        identity: str,
        audience: str,
        header: str,
        cache: TokenCache | None,
        audience_bound: bool = True,
    ) -> None:
        self.source = source
        self.audience_bound = audience_bound
        self.identity = identity
        self.audience = audience
        self.header = header
        self.mints = 0  # how many times `mint` ran (for tests and -v)
        self._mint = mint
        self._cache = cache
        self._token: IdToken | None = None
        self._lock = threading.Lock()

    def _fresh(self, token: IdToken | None, margin: float | None = None) -> bool:
        """Usable for margin seconds more (default: the token's refresh margin)."""
        if token is None:
            return False
        left = token.seconds_left()
        return left is None or left > (refresh_margin(token) if margin is None else margin)

    def cached(self) -> IdToken | None:
        """A token held in memory or in the disk cache, never a new one."""
        with self._lock:
            if self._fresh(self._token):
                return self._token
            return self._from_cache()

    def _from_cache(self) -> IdToken | None:
        if self._cache is None:
            return None
        value = self._cache.load(self.identity, self.audience, self.header)
        if value is None:
            return None
        try:
            cached = IdToken.parse(value, self.source, audience_bound=self.audience_bound)
        except Exception:
            return None
        if not self._fresh(cached, CACHE_MARGIN):
            return None
        self._token = cached
        return cached

    def get(self) -> IdToken:
        with self._lock:
            if self._fresh(self._token):
                assert self._token is not None
                return self._token
            cached = self._from_cache()
            if cached is not None:
                return cached
            value = self._mint()
            self.mints += 1
            try:
                token = IdToken.parse(value, self.source, audience_bound=self.audience_bound)
            except CredentialsError as exc:  # the message shows 8 characters of it at most
                raise CredentialsError(
                    f"{self.source}: the token minted is {exc.message}",
                    "the endpoint that minted it answered something other than an ID token",
                ) from None
            self._token = token
            exp = token.expiry
            if self._cache is not None and exp is not None and self._fresh(token, CACHE_MARGIN):
                self._cache.store(self.identity, self.audience, self.header, value, exp)
            return token
