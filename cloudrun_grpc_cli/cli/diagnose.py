"""Explain a failed status from what was sent: Cloud Run's 401/403 and friends.

Cloud Run's front end refuses a call before the app sees it with a raw HTTP
status, which gRPC reports as UNAUTHENTICATED / PERMISSION_DENIED /
UNAVAILABLE "Received http2 header with status: 401|403|503". The hints say
what was sent (audience, the token's aud, exp, email, source, header) and what
to check. The same diagnosis serves the call and the reflection calls
(`diagnose_error`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..core.auth.jwt import humanize_delta
from ..core.events import Status
from ..core.session import Session
from ..errors import RpcStatusError
from ..settings import Settings

DEADLINE_EXCEEDED = 4
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14
UNAUTHENTICATED = 16
SERVERLESS_HEADER = "x-serverless-authorization"
_NO_CREDENTIALS_HINT = (
    "pass --key-file, --impersonate-service-account or --token, or run "
    "`gcloud auth application-default login`"
)


def explain_status(status: Status, sess: Session, settings: Settings) -> Iterator[str]:
    """Hint lines for a failed call's status."""
    yield from explain(status.code, status.message, sess, settings)


def diagnose_error(err: RpcStatusError, sess: Session, settings: Settings) -> RpcStatusError:
    """Add the hints of `explain` to err (a failed call or reflection call), once."""
    hints = list(explain(err.code, err.details, sess, settings))
    if hints and hints[0] not in err.hints:
        err.with_hints(*hints)
    return err


def explain(code: int, message: str, sess: Session, settings: Settings) -> Iterator[str]:
    low = message.lower()
    if code == RESOURCE_EXHAUSTED and "larger than max" in low:
        yield "the response is larger than --max-msg-size allows: raise --max-msg-size (bytes)"
        return
    if code == DEADLINE_EXCEEDED:
        yield "the deadline passed: raise --timeout if the server needs longer"
        return
    front_end = "http2 header with status" in low
    if code == UNAVAILABLE and front_end:
        yield (
            "the front end answered HTTP 503 before the app saw the call: the service is "
            "unavailable (starting, scaled to its limit, or failing its health checks)"
        )
        return
    if code not in (UNAUTHENTICATED, PERMISSION_DENIED):
        return
    who = "Cloud Run's front end" if front_end else "the server"
    answer = (
        f" (HTTP {401 if code == UNAUTHENTICATED else 403})" if front_end else ""
    )
    plan = sess.plan
    token = plan.current()
    if token is None:
        yield from _no_token(who + answer, plan.withheld, plan.header)
        return
    claims = token.claims
    aud, exp, email = claims.get("aud"), claims.get("exp"), claims.get("email")
    expired = isinstance(exp, (int, float)) and exp <= time.time()
    if code == UNAUTHENTICATED:
        yield (
            f"{who}{answer} refused the token sent in {plan.header}: it is invalid, "
            "expired or for another audience"
        )
        yield (
            f"audience sent: {plan.audience}; token aud: {aud}; exp: {exp_text(exp)}; "
            f"email: {email or '(no email claim)'}; source: {token.source}"
        )
        if expired:
            yield "the token has expired: mint a new one (drop --token to let crgrpc mint it)"
        auds = aud if isinstance(aud, list) else [aud]
        if plan.audience not in auds:
            yield (
                f"the token's aud is not {plan.audience}: pass --audience with the service's "
                "run.app URL or the custom audience configured on it"
            )
        else:
            yield (
                "behind a custom domain, Cloud Run expects the service's run.app URL or a "
                "custom audience configured on the service: pass it with --audience"
            )
        if plan.header != SERVERLESS_HEADER:
            yield (
                "if the app itself reads 'authorization', send the token in "
                "x-serverless-authorization with --serverless-auth"
            )
        return
    identity = email if isinstance(email, str) else f"sub {claims.get('sub')} (no email claim)"
    yield f"{who}{answer} refused the identity {identity} (token from {token.source}, aud {aud})"
    member = "serviceAccount" if str(email).endswith(".gserviceaccount.com") else "user"
    yield (
        f"{email or 'the identity'} may lack roles/run.invoker on the service: "
        "gcloud run services add-iam-policy-binding SERVICE --region REGION "
        f"--member={member}:{email or 'EMAIL'} --role=roles/run.invoker"
    )
    if not isinstance(email, str):
        yield "the token carries no email claim: with --impersonate-service-account add --include-email"


def _no_token(who: str, withheld: str | None, header: str) -> Iterator[str]:
    reason = withheld or "no Google credentials were found"
    if reason.startswith("your own -H"):
        yield f"{who} refused the {header} header you passed with -H (crgrpc sent no token of its own)"
        yield "drop -H to let crgrpc mint an ID token for the target's audience"
        return
    yield f"no token was sent ({reason})"
    if reason != "--no-auth" and "--auth" not in reason:  # those say what to do
        yield _NO_CREDENTIALS_HINT


def exp_text(exp: object) -> str:
    """`2026-01-02 03:04:05 UTC (expires in 54m)` / `… (expired 3m ago)` / `none`."""
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        return "none"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(exp))
    left = exp - time.time()
    if left <= 0:
        return f"{stamp} (expired {humanize_delta(left)} ago)"
    return f"{stamp} (expires in {humanize_delta(left)})"
