"""Google ID tokens: token sources → one TokenProvider, when a token is sent, decode, verify, cache.

Modules: `token` (IdToken, providers, refresh), `sources` (the sources in
the documented order and their conflicts), `minting` (google-auth), `policy`
(plan_auth: when a token is sent), `cache` (the disk cache), `jwt` (decode
without google.auth), `verify` (signature, issuer, audience, expiry).
Importing this package loads no google.auth.
"""

from __future__ import annotations

from .policy import AuthPlan, plan_auth
from .sources import build_provider
from .token import IdToken, TokenProvider

__all__ = ["AuthPlan", "IdToken", "TokenProvider", "build_provider", "plan_auth"]
