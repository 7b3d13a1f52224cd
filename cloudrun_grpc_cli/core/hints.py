"""The one source of hints for a failure: what to check, from what was sent.

`explain(err)` is called once, at the error boundary (cli.main), for every
CrgrpcError. It reads the failure's class, code and details, and, when the
failure happened inside a session, the auth plan (the token and header
actually sent, or why none was). rpcerrors only classifies; nothing else adds
hints about statuses or connections. Every hint names a flag that really
controls what it speaks of.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

from ..errors import ConnectError, CrgrpcError, RpcStatusError, SchemaError
from .auth.jwt import expiry_text
from .auth.policy import Withheld
from .auth.texts import CREDENTIALS_HINT
from .channel import SPEAKS_PLAINTEXT, SPEAKS_TLS

if TYPE_CHECKING:
    from .auth import AuthPlan, IdToken
    from .session import Session

DEADLINE_EXCEEDED = 4
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14
UNAUTHENTICATED = 16
SERVERLESS_HEADER = "x-serverless-authorization"
_TLS_HINTS = (
    "check the host name, or pass --authority NAME to verify another name",
    "for a private CA pass --cacert FILE; for a self-signed server --insecure",
)


def explain(err: CrgrpcError) -> CrgrpcError:
    """Add the hints for err, once (a second call changes nothing)."""
    if err.explained:
        return err
    err.explained = True
    sess = cast("Session", err.session) if _is_session(err.session) else None
    from .cloudrun.errors import RunProblem

    if isinstance(err, RunProblem):
        err.with_hints(*cloudrun_hints(err))
    elif isinstance(err, ConnectError) and err.reason.startswith("proxy: "):
        err.with_hints(*proxy_hints(err.reason.removeprefix("proxy: ")))
    elif isinstance(err, ConnectError):
        err.with_hints(*_connect_hints(err))
        if sess is not None and err.reason == "DNS resolution failed":
            err.with_hints(*_named_target_hints(sess))
    elif isinstance(err, RpcStatusError):
        err.with_hints(*status_hints(err.code, err.details, sess, phase=err.phase))
        err.with_hints(*_detail_hints(err.status_details))
    elif isinstance(err, SchemaError) and not err.hints and sess is not None:
        err.with_hints(_list_hint(sess))
    return err


def _is_session(obj: object) -> bool:
    return obj is not None and hasattr(obj, "plan") and hasattr(obj, "target")


def _connect_hints(err: ConnectError) -> Iterator[str]:
    reason, details = err.reason, err.details
    if reason == SPEAKS_PLAINTEXT:
        yield "use --plaintext or http://"
        return
    if reason == SPEAKS_TLS:
        yield "drop --plaintext (and http://): the server wants TLS (https://, or no scheme)"
        return
    if reason in ("TLS certificate has expired", "TLS certificate is not yet valid"):
        yield (
            "the server's certificate is outside its validity period: renew it, "
            "or check this machine's clock"
        )
    elif reason.startswith("TLS"):
        yield from _TLS_HINTS
        low = details.lower()
        if "wrong version number" in low or "packet length too long" in low:
            yield "the server may speak plaintext: try --plaintext or http://"
    elif reason == "connection refused":
        yield "is the server running and listening on that port?"
    elif reason == "connect timeout":
        yield "raise --connect-timeout, or check the address and any firewall"
    elif reason == "DNS resolution failed":
        yield "check the host name"
    from ..errors import one_line

    detail = one_line(details)
    if detail and detail.lower() != reason.lower() and not detail.lower().startswith("connect timeout"):
        yield f"gRPC said: {detail}"


def _detail_hints(details: list[dict[str, object]]) -> Iterator[str]:
    """The server's google.rpc.Status details, one line each (ErrorInfo, BadRequest…)."""
    import json

    for d in details:
        kind = str(d.get("@type", "")).rsplit("/", 1)[-1] or "unknown type"
        rest = {k: v for k, v in d.items() if k != "@type"}
        yield f"status detail {kind}: {json.dumps(rest, ensure_ascii=False, separators=(', ', ': '))}"


def _named_target_hints(sess: Session) -> Iterator[str]:
    """A bare name that is no named target and no host: say which names there are."""
    raw = sess.target.raw
    if "." in raw or ":" in raw or "/" in raw:
        return
    names = sess.settings.named_targets
    if names:
        yield f"{raw!r} is not a named target either; the config file has: {', '.join(names)}"
    else:
        yield (
            f"{raw!r} is not a named target either: the config file has none "
            "([targets.NAME] in $XDG_CONFIG_HOME/crgrpc/config.toml, see crgrpc config show)"
        )


def _list_hint(sess: Session) -> str:
    tgt = sess.target
    flag = "" if tgt.tls or "://" in tgt.raw or tgt.is_unix else " --plaintext"
    return f"crgrpc list {tgt.raw}{flag} shows the services; add a SERVICE for its methods"


def status_hints(
    code: int, message: str, sess: Session | None, *, phase: str = "call"
) -> Iterator[str]:
    """Hint lines for a failed status of the call or of a reflection request."""
    low = message.lower()
    if code == RESOURCE_EXHAUSTED and "larger than max" in low:
        yield "the response is larger than --max-msg-size allows: raise --max-msg-size (bytes)"
        return
    if code == DEADLINE_EXCEEDED:
        if phase == "reflection":
            yield (
                "the server did not answer reflection in time: raise --timeout (it sets each "
                "reflection request's deadline, 10 s by default), or give the schema with "
                "--protoset or --proto"
            )
        else:
            yield "the deadline passed: raise --timeout if the server needs longer"
        return
    front_end = "http2 header with status" in low
    if code == UNAVAILABLE and front_end:
        retries = sess.settings.channel.retries if sess is not None else 0
        yield (
            "the front end answered HTTP 503 before the app saw the call: the service is "
            "unavailable (starting, scaled to its limit, or failing its health checks)"
            + ("; --retries N waits for a cold start" if retries == 0 else f" after {retries} retries")
        )
        return
    if code not in (UNAUTHENTICATED, PERMISSION_DENIED) or sess is None:
        return
    who = "Cloud Run's front end" if front_end else "the server"
    answer = f" (HTTP {401 if code == UNAUTHENTICATED else 403})" if front_end else ""
    plan = sess.plan
    token = plan.current()
    if token is None:
        yield from _no_token(who + answer, plan)
        own = _users_own_token(sess) if code == UNAUTHENTICATED else None
        if own is not None:
            yield from _token_facts(own, plan.audience, fixed=True, header=plan.header)
        return
    fixed = _is_fixed(plan)
    claims = token.claims
    aud, email = claims.get("aud"), claims.get("email")
    if code == UNAUTHENTICATED:
        yield (
            f"{who}{answer} refused the token sent in {plan.header}: it is invalid, "
            "expired or for another audience"
        )
        yield from _token_facts(token, plan.audience, fixed=fixed, header=plan.header)
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


def _is_fixed(plan: AuthPlan) -> bool:
    """A token the user gave (--token, --token-file, or its variable): crgrpc cannot re-mint it."""
    from .auth.token import StaticProvider

    return isinstance(plan.provider, StaticProvider)


def _users_own_token(sess: Session) -> IdToken | None:
    """The JWT in the user's own -H authorization header, decoded (None if it is none)."""
    from .auth.token import IdToken
    from .secrets import strip_bearer

    header = sess.plan.header
    for name, value in sess.settings.channel.headers:
        if name.lower() == header and isinstance(value, str):
            try:
                return IdToken.parse(strip_bearer(value), f"your -H {header} header")
            except Exception:
                return None
    return None


def _token_facts(token: IdToken, audience: str | None, *, fixed: bool, header: str) -> Iterator[str]:
    """What the token sent says of itself, and what that means for a 401."""
    claims = token.claims
    aud, exp, email = claims.get("aud"), claims.get("exp"), claims.get("email")
    expired = isinstance(exp, (int, float)) and exp <= time.time()
    auds = aud if isinstance(aud, list) else [aud]
    if fixed:
        # The token's own aud is what was sent: no derived audience went anywhere.
        yield (
            f"audience sent: {aud} (the token's own); exp: {expiry_text(exp)}; "
            f"email: {email or '(no email claim)'}; source: {token.source}"
        )
        if expired:
            yield "the token has expired: mint a new one (or drop it and let crgrpc mint one)"
        if audience is not None and audience not in auds:
            yield (
                f"its aud is not {audience}, the target's audience: --audience cannot change a "
                "fixed token; mint one for the service's run.app URL or custom audience, or let "
                "crgrpc mint it (drop the token)"
            )
        elif not expired:
            yield (
                "behind a custom domain, Cloud Run expects the service's run.app URL or a "
                "custom audience configured on the service as the token's aud"
            )
    else:
        yield (
            f"audience sent: {audience}; token aud: {aud}; exp: {expiry_text(exp)}; "
            f"email: {email or '(no email claim)'}; source: {token.source}"
        )
        if expired:
            yield "the token has expired: mint a new one (drop --token to let crgrpc mint it)"
        if audience not in auds:
            yield (
                f"the token's aud is not {audience}: pass --audience with the service's "
                "run.app URL or the custom audience configured on it"
            )
        else:
            yield (
                "behind a custom domain, Cloud Run expects the service's run.app URL or a "
                "custom audience configured on the service: pass it with --audience"
            )
    if header != SERVERLESS_HEADER:
        yield (
            "if the app itself reads 'authorization', send the token in "
            "x-serverless-authorization with --serverless-auth"
        )


def _no_token(who: str, plan: AuthPlan) -> Iterator[str]:
    withheld, header = plan.withheld, plan.header
    if withheld is Withheld.USER_HEADER:
        yield f"{who} refused the {header} header you passed with -H (crgrpc sent no token of its own)"
        yield "drop -H to let crgrpc mint an ID token for the target's audience"
        return
    why = plan.withheld_text or Withheld.NO_CREDENTIALS.value
    # A hint never repeats a note already printed.
    said = any(why in note for note in plan.notices)
    yield "no token was sent (see the note above)" if said else f"no token was sent ({why})"
    if withheld in (None, Withheld.NO_CREDENTIALS, Withheld.NOT_CACHED):
        yield CREDENTIALS_HINT


# --- Cloud Run targets, proxies and doctor --------------------------------------------------

RUN_VIEWER = "roles/run.viewer"
INVOKER = "roles/run.invoker"


def gcloud_where(region: str | None, project: str | None) -> str:
    """` --region R --project P` for a gcloud command (the parts known)."""
    return (f" --region {region}" if region else " --region REGION") + (
        f" --project {project}" if project else ""
    )


def member_of(email: str) -> str:
    """The IAM member of an identity: serviceAccount:… or user:…"""
    kind = "serviceAccount" if email.endswith(".gserviceaccount.com") else "user"
    return f"{kind}:{email}"


def cloudrun_hints(err: object) -> Iterator[str]:
    """Hints of a run:// lookup that failed (core.cloudrun.errors)."""
    from .cloudrun.errors import RunProblem

    assert isinstance(err, RunProblem)
    service, project, region = err.service, err.project, err.region
    if err.problem == "location":
        if "project" in err.missing:
            yield (
                "give the project in the target (run://PROJECT/REGION/SERVICE) or with "
                "--project, or set gcloud's: gcloud config set project PROJECT"
            )
        if "region" in err.missing:
            yield (
                "give the region in the target (run://REGION/SERVICE) or with --region, "
                "or set gcloud's: gcloud config set run/region REGION"
            )
    elif err.problem == "not-found":
        yield f"list the services: gcloud run services list{gcloud_where(region, project)}"
        yield "check the project and region (run://PROJECT/REGION/SERVICE, --project, --region)"
    elif err.problem == "denied":
        who = member_of(err.identity) if err.identity else "MEMBER"
        yield (
            f"reading the service needs {RUN_VIEWER} (run.services.get): gcloud run services "
            f"add-iam-policy-binding {service}{gcloud_where(region, project)} "
            f"--member={who} --role={RUN_VIEWER}"
        )
        yield "or pass the service's URL (https://…run.app) as TARGET: that needs no Admin API"
    elif err.problem == "credentials":
        yield CREDENTIALS_HINT
        yield "or pass the service's URL (https://…run.app) as TARGET: that needs no Admin API"
    elif err.problem == "no-url":
        yield "the service is still being created: try again when it is ready"
    else:
        yield (
            "check the network and any proxy (--proxy, https_proxy), or point --run-api at "
            "a reachable Admin API endpoint"
        )
        yield "or pass the service's URL (https://…run.app) as TARGET: that needs no Admin API"


def proxy_hints(reason: str) -> Iterator[str]:
    """Hints of a proxy that refused or could not be reached."""
    if reason.startswith("HTTP 407"):
        yield (
            "the proxy wants credentials: --proxy http://USER:PASSWORD@HOST:PORT "
            "(or the same in https_proxy)"
        )
    elif reason.startswith("HTTP 403"):
        yield "the proxy does not allow this destination: ask its administrators, or list it in no_proxy"
    elif reason in ("connection refused", "connect timeout", "DNS resolution failed"):
        yield "check the proxy's host and port (--proxy, https_proxy, grpc_proxy)"
    else:
        yield "check the proxy (--proxy, https_proxy, grpc_proxy) and that it may reach this host"
    yield "no_proxy lists the hosts reached directly (no_proxy='*': every host)"


def doctor_hint(check: str, **facts: str) -> str:
    """The hint of a doctor check's warn, fail or skip (facts: service, region, project…)."""
    service = facts.get("service") or "SERVICE"
    where = gcloud_where(facts.get("region"), facts.get("project"))
    if check == "admin-api":
        return (
            "the Admin API checks need a run:// target (run://[[PROJECT/]REGION/]SERVICE) "
            "or a https://SERVICE-PROJECTNUMBER.REGION.run.app URL"
        )
    if check == "credentials":
        return CREDENTIALS_HINT
    if check == "service-denied":
        return f"reading the service needs {RUN_VIEWER} on it or its project"
    if check == "service-not-ready":
        return f"see the revision's logs: gcloud run revisions describe {facts.get('revision') or 'REVISION'}{where}"
    if check == "token":
        aud = facts.get("audience") or "AUD"
        return (
            f"pass --audience {facts.get('accepted') or 'URL'}, or make the service accept "
            f"{aud}: gcloud run services update {service}{where} --add-custom-audiences {aud}"
        )
    if check == "token-withheld":
        return "send a token: drop --no-auth (or -H), or give a credentials source"
    if check == "ingress":
        return f"call from where it is reachable, or: gcloud run services update {service}{where} --ingress all"
    if check == "invoker":
        email = facts.get("email")
        member = member_of(email) if email else "MEMBER"
        return (
            f"gcloud run services add-iam-policy-binding {service}{where} "
            f"--member={member} --role={INVOKER}"
        )
    if check == "invoker-group":
        return f"make sure {facts.get('email') or 'the identity'} is in one of them"
    if check == "invoker-unreadable":
        return f"reading the policy needs run.services.getIamPolicy ({RUN_VIEWER})"
    if check == "invoker-no-email":
        return "with --impersonate-service-account add --include-email to see the identity"
    if check == "iap":
        return (
            "pass --audience IAP_CLIENT_ID.apps.googleusercontent.com (the IAP OAuth client), "
            "and --auth-header proxy-authorization to keep authorization for the app"
        )
    if check == "http2":
        return f"gcloud run services update {service}{where} --use-http2"
    if check == "timeout":
        return (
            f"lower --timeout, or raise the service's: gcloud run services update {service}{where} "
            f"--timeout {facts.get('timeout') or 'SECONDS'}"
        )
    if check == "connect":
        return facts.get("first") or "check the host, the port and any proxy"
    if check == "reflection":
        return "give the schema with --protoset FILE (or --proto FILE)"
    if check == "reflection-failed":
        return facts.get("first") or "see crgrpc list TARGET for the whole error"
    if check == "health":
        return "the server's health check says it is not serving: see its logs"
    if check == "health-failed":
        return (
            "the health check itself failed (calls may still work): "
            f"crgrpc call TARGET {facts.get('method', 'grpc.health.v1.Health/Check')} -d '{{}}' "
            "shows the whole error"
        )
    return ""
