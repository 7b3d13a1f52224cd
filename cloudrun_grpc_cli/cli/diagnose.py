"""Explain a failed status from what was sent: Cloud Run's 401/403 and friends."""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..core.events import Status
from ..core.session import Session
from ..settings import Settings

UNAUTHENTICATED = 16
PERMISSION_DENIED = 7


def explain_status(status: Status, sess: Session, settings: Settings) -> Iterator[str]:
    if status.code == 8 and "larger than max" in status.message.lower():
        yield "the response is larger than --max-msg-size allows: raise --max-msg-size (bytes)"
        return
    if status.code == 4:
        yield "the deadline passed: raise --timeout if the server needs longer"
        return
    if status.code not in (UNAUTHENTICATED, PERMISSION_DENIED):
        return
    plan = sess.plan
    token = plan.current()
    front_end = "http2 header with status" in status.message.lower()
    who = "Cloud Run's front end" if front_end else "the server"
    if token is None:
        reason = plan.withheld or "no credentials were found"
        yield f"no token was sent ({reason})"
        if status.code == PERMISSION_DENIED or front_end:
            yield "pass --key-file, --impersonate-service-account, or set up Application Default Credentials"
        return
    aud = token.claims.get("aud")
    exp = token.claims.get("exp")
    email = token.claims.get("email")
    yield f"{who} refused the token sent in {plan.header} (audience sent: {plan.audience})"
    if status.code == UNAUTHENTICATED:
        yield f"token aud: {aud}; exp: {_exp_text(exp)}; source: {token.source}"
        if aud != plan.audience:
            yield "the token's audience differs from the target's: pass --audience with the service's URL"
        yield (
            "a custom domain needs --audience set to the service's run.app URL or a custom "
            "audience configured on the service"
        )
        yield "if the app itself reads 'authorization', send the token with --serverless-auth"
    else:
        yield (
            f"the identity {email or '(no email claim)'} may lack roles/run.invoker on the service: "
            "gcloud run services add-iam-policy-binding SERVICE "
            f"--member=serviceAccount:{email or 'EMAIL'} --role=roles/run.invoker"
        )


def _exp_text(exp: object) -> str:
    if not isinstance(exp, (int, float)):
        return "unknown"
    left = exp - time.time()
    if left <= 0:
        return f"expired {int(-left)}s ago"
    return f"in {int(left // 60)}m"
