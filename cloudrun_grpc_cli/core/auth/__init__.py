"""Google ID tokens: token sources → one TokenProvider, when a token is sent, decode, verify, cache.

Modules: `token` (IdToken, providers, refresh), `sources` (the sources in
the documented order and their conflicts), `minting` (google-auth), `policy`
(plan_auth: when a token is sent), `cache` (the disk cache), `jwt` (decode
without google.auth), `verify` (signature, issuer, audience, expiry).
Importing this package loads no google.auth.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .policy import AuthPlan, plan_auth

if TYPE_CHECKING:
    from .sources import build_provider
    from .token import IdToken, TokenProvider

__all__ = ["AuthPlan", "IdToken", "TokenProvider", "build_provider", "plan_auth"]


def __getattr__(name: str) -> Any:
    """build_provider, IdToken and TokenProvider on first use (a call that sends no
    token never loads the token modules)."""
    if name == "build_provider":
        from .sources import build_provider

        return build_provider
    if name in ("IdToken", "TokenProvider"):
        from . import token

        return getattr(token, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
