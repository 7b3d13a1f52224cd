"""What the user named for a token: the header it goes in, and the explicit sources.

Split from `sources` so that deciding whether a token is sent at all (policy:
a plaintext or --no-auth call sends none) loads none of the token machinery:
a plaintext call's start-up skips jwt, token, minting and the cache
(bench/RESULTS.md, start-up).
"""

from __future__ import annotations

from ...errors import UsageError
from ...settings import AuthSettings

AUTHORIZATION = "authorization"
SERVERLESS_AUTHORIZATION = "x-serverless-authorization"
PROXY_AUTHORIZATION = "proxy-authorization"
# The headers that may carry the token (--auth-header): Cloud Run reads the first two
# (x-serverless-authorization first); IAP reads proxy-authorization before authorization.
AUTH_HEADERS = (AUTHORIZATION, SERVERLESS_AUTHORIZATION, PROXY_AUTHORIZATION)


def header_for(auth: AuthSettings) -> str:
    """The header that carries the token: --auth-header, else x-serverless-authorization
    with --serverless-auth (its short form), else authorization."""
    chosen = (auth.auth_header or "").strip().lower()
    if not chosen:
        return SERVERLESS_AUTHORIZATION if auth.serverless_auth else AUTHORIZATION
    if chosen not in AUTH_HEADERS:
        raise UsageError(
            f"unknown --auth-header {auth.auth_header!r}",
            "use " + ", ".join(AUTH_HEADERS[:-1]) + f" or {AUTH_HEADERS[-1]}",
        )
    if auth.serverless_auth and chosen != SERVERLESS_AUTHORIZATION:
        raise UsageError(
            f"--serverless-auth conflicts with --auth-header {chosen}",
            "--serverless-auth is --auth-header x-serverless-authorization: give one of them",
        )
    return chosen


def explicit_sources(auth: AuthSettings) -> list[str]:
    """The explicit sources given, by flag name; UsageError for two at once (except
    --key-file with --impersonate-service-account, the key being the source)."""
    names: list[str] = []
    if auth.token is not None:
        names.append(auth.token_label)
    if auth.token_file is not None:
        names.append("--token-file")
    if auth.key_file is not None:
        names.append("--key-file")
    if auth.impersonate_service_account:
        names.append("--impersonate-service-account")
    if len(names) > 1 and set(names) != {"--key-file", "--impersonate-service-account"}:
        listed = " and ".join(names) if len(names) == 2 else ", ".join(names)
        raise UsageError(
            f"{listed} are {len(names)} token sources at once; give one",
            "--key-file with --impersonate-service-account is the one pair allowed "
            "(the key is then the impersonation's source)",
        )
    return names
