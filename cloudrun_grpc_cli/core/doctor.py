"""`crgrpc doctor`: what a call to TARGET would meet, checked one thing at a time.

The checks, in order (CHECKS): credentials, then the Cloud Run Admin API's
facts about the service (service, token, ingress, invoker, iap, http2,
timeout: a run:// target, or a https://SERVICE-PROJECTNUMBER.REGION.run.app
URL, which names its service; for any other target they are skipped, saying
how to enable them), then the wire: connect (DNS, TCP, TLS with a
certificate valid for the host, ALPN h2; through the proxy when one is in
use), reflection (v1, v1alpha or none) and health (grpc.health.v1.Health/Check
when the server lists it).

Each check is ok, warn, fail or skip, with a detail and a hint (from
core.hints). A failed check carries the exit code the real call would meet:
3 for no credentials, 4 for a service not found or a connection that fails,
80 for a token the service would refuse, 71 for an identity without the
invoker binding, 64+N for another status. Usage errors (a run:// target
without project or region, conflicting flags) are raised, not checked.
Nothing here prints: each check is handed to `emit` as soon as it is known.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import (
    ConnectError,
    CredentialsError,
    CrgrpcError,
    ExitCode,
    RpcStatusError,
    SchemaError,
    UsageError,
)
from ..settings import Settings
from . import hints
from .target import Target

if TYPE_CHECKING:
    from .auth import AuthPlan, IdToken
    from .auth.sources import AccessProvider
    from .channel import Connection
    from .cloudrun.api import AdminApi
    from .cloudrun.location import Location
    from .cloudrun.model import RunService

CHECKS = (
    "credentials",
    "service",
    "token",
    "ingress",
    "invoker",
    "iap",
    "http2",
    "timeout",
    "connect",
    "reflection",
    "health",
)
ADMIN_CHECKS = ("service", "token", "ingress", "invoker", "iap", "http2", "timeout")
HEALTH_SERVICE = "grpc.health.v1.Health"
HEALTH_METHOD = "/grpc.health.v1.Health/Check"
HEALTH_STATUS = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
INVOKER_ROLES = ("roles/run.invoker", "roles/run.servicesInvoker")
PUBLIC = ("allUsers", "allAuthenticatedUsers")
UNAUTHENTICATED = ExitCode.GRPC_BASE + 16  # 80
PERMISSION_DENIED = ExitCode.GRPC_BASE + 7  # 71
UNAVAILABLE = ExitCode.GRPC_BASE + 14  # 78
INGRESS = {
    "INGRESS_TRAFFIC_INTERNAL_ONLY": (
        "internal only: reachable from VPC networks of the project (and Shared VPC), "
        "other Cloud Run services and functions through the VPC, not from the internet"
    ),
    "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER": (
        "internal and Cloud Load Balancing: reachable from VPC networks and through an "
        "Application Load Balancer, not at its run.app URL from the internet"
    ),
}


class Check(NamedTuple):
    check: str  # one of CHECKS
    result: str  # ok | warn | fail | skip
    detail: str
    hint: str = ""
    exit_code: int = 0  # a failed check: the code the real call would meet

    def to_json(self) -> dict[str, str]:
        return {
            "check": self.check,
            "result": self.result,
            "detail": self.detail,
            "hint": self.hint,
        }


def exit_code(checks: list[Check]) -> int:
    """0 when no check failed (warnings allowed), else the first failure's code."""
    return next((c.exit_code or 1 for c in checks if c.result == "fail"), 0)


def run_doctor(target: Target, settings: Settings, emit: Callable[[Check], None]) -> list[Check]:
    """Run every check against target; each goes to emit as soon as it is known."""
    doctor = _Doctor(target, settings, emit)
    try:
        doctor.run()
    finally:
        doctor.close()
    return doctor.checks


def _one_line(text: str, limit: int = 300) -> str:
    from ..errors import one_line
    from .secrets import scrub

    return one_line(scrub(text), limit)


class _Doctor:
    def __init__(self, target: Target, settings: Settings, emit: Callable[[Check], None]) -> None:
        self.given = target
        self.target: Target | None = target if target.run is None else None
        self.settings = settings
        self._emit = emit
        self.checks: list[Check] = []
        self.loc: Location | None = None
        self.cloud_run = False  # run:// or a run.app URL naming its service
        self.access: AccessProvider | None = None
        self.api: AdminApi | None = None
        self.service: RunService | None = None
        self.service_problem: Check | None = None
        self.plan: AuthPlan | None = None
        self.token: IdToken | None = None
        self.cred_problem: Check | None = None
        self.tried: list[str] = []
        self.conn: Connection | None = None
        self.connected = False
        self.services: list[str] | None = None

    # --- output --------------------------------------------------------------------------

    def emit(self, check: str, result: str, detail: str, hint: str = "", code: int = 0) -> None:
        c = Check(check, result, _one_line(detail, 600), hint, code if result == "fail" else 0)
        self.checks.append(c)
        self._emit(c)

    def facts(self, **more: str) -> dict[str, str]:
        loc = self.loc
        out = {"service": loc.service, "region": loc.region, "project": loc.project} if loc else {}
        out.update(more)
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    # --- the order -----------------------------------------------------------------------

    def run(self) -> None:
        self._locate()
        self._lookup()
        self._mint()
        self._credentials()
        self._service()
        for name in ("token", "ingress", "invoker", "iap", "http2", "timeout"):
            if self.service is None:
                self._skip_admin(name)
            else:
                getattr(self, "_" + name)(self.service)
        self._connect()
        self._reflection()
        self._health()

    def _locate(self) -> None:
        from .cloudrun.location import locate
        from .cloudrun.runapp import run_app_service
        from .target import strip_port

        ref = self.given.run
        if ref is None and self.given.tls and not self.given.is_unix:
            authority = self.settings.channel.authority
            host = strip_port(authority).strip("[]") if authority else self.given.host
            ref = run_app_service(host)
        if ref is not None:
            self.cloud_run = True
            self.loc = locate(ref, self.settings.cloudrun)  # exit 2 when incomplete

    def _lookup(self) -> None:
        """Credentials for the Admin API, then the service (fresh: never from the cache)."""
        from .auth.sources import access_provider
        from .cloudrun import cache
        from .cloudrun.api import AdminApi, api_base
        from .cloudrun.errors import RunAccessDenied, RunServiceNotFound
        from .cloudrun.model import RunService

        try:
            self.access, self.tried = access_provider(self.settings.auth)
        except CredentialsError as exc:
            self.cred_problem = Check(
                "credentials",
                "fail",
                exc.message,
                hints.doctor_hint("credentials"),
                ExitCode.CREDENTIALS,
            )
            return
        if self.loc is None or self.access is None:
            return
        base = api_base(self.settings.cloudrun.run_api)
        self.api = AdminApi(base, self.access, proxy=self.settings.auth.proxy)
        run_target = self.given.run is not None
        try:
            data = self.api.get_service(self.loc)
        except RunServiceNotFound as exc:
            self.service_problem = Check(
                "service", "fail", exc.message, _first(exc), ExitCode.CONNECTION
            )
            return
        except RunAccessDenied as exc:
            if run_target:
                self.service_problem = Check(
                    "service", "fail", exc.message, _first(exc), ExitCode.CREDENTIALS
                )
            else:
                self.service_problem = Check(
                    "service",
                    "skip",
                    f"cannot read the service: {exc.message}",
                    hints.doctor_hint("service-denied"),
                )
            return
        except ConnectError as exc:  # the Admin API unreachable, or a proxy refusing
            result = "fail" if run_target else "skip"
            self.service_problem = Check(
                "service", result, exc.message, _first(exc), ExitCode.CONNECTION
            )
            return
        except CredentialsError as exc:  # the access token could not be minted
            self.cred_problem = Check(
                "credentials", "fail", exc.message, _first(exc), ExitCode.CREDENTIALS
            )
            return
        self.service = RunService.from_json(data)
        if run_target:
            from .target import parse_target

            if not self.service.uri:
                self.service_problem = Check(
                    "service", "fail", f"{self.loc.name} has no URL yet", "", UNAVAILABLE
                )
                return
            self.target = parse_target(self.service.uri)._replace(raw=self.given.raw)
            if self.settings.cloudrun.resolve_cache:
                key = cache.cache_key(self.access.identity, base, self.loc.name)
                cache.store(key, self.service.cached(), root=self.settings.cache_dir)
            if not self.settings.auth.audience:
                auth = self.settings.auth._replace(audience=self.service.uri.rstrip("/"))
                self.settings = self.settings._replace(auth=auth)

    def _mint(self) -> None:
        """The call's own auth plan for the (resolved) target, and its token."""
        if self.target is None or self.cred_problem is not None:
            return
        from .auth import plan_auth

        s = self.settings
        try:
            self.plan = plan_auth(
                self.target,
                s.channel,
                s.auth,
                user_headers=[name for name, _ in s.channel.headers],
                cache_dir=s.cache_dir,
            )
            self.plan.metadata()
            self.token = self.plan.current()
        except UsageError:
            raise
        except ConnectError as exc:  # a proxy refusing the token endpoint
            self.cred_problem = Check(
                "credentials", "fail", exc.message, _first(exc), ExitCode.CONNECTION
            )
        except CredentialsError as exc:
            self.cred_problem = Check(
                "credentials", "fail", exc.message, _first(exc), ExitCode.CREDENTIALS
            )

    # --- credentials and the Admin API's facts ------------------------------------------

    def _credentials(self) -> None:
        from .auth.policy import Withheld

        if self.cred_problem is not None:
            c = self.cred_problem
            self.emit(c.check, c.result, c.detail, c.hint, c.exit_code)
            return
        plan, token = self.plan, self.token
        if token is not None:
            email = token.email or (self.access.email if self.access else None)
            who = email or f"sub {token.claims.get('sub')} (no email claim)"
            self.emit("credentials", "ok", f"{token.source}: {who}")
            return
        if (
            plan is not None
            and plan.withheld is not Withheld.NO_CREDENTIALS
            and plan.provider is None
            and self.access is not None
        ):
            self.emit(
                "credentials",
                "ok",
                f"{self.access.source}: {self.access.email or 'identity unknown'} ({plan.withheld_text}: no token is sent)",
            )
            return
        if self.access is not None and plan is None:
            self.emit(
                "credentials",
                "ok",
                f"{self.access.source}: {self.access.email or 'identity unknown'}",
            )
            return
        tried = (
            ", ".join(self.tried)
            or "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server"
        )
        detail = f"none: no Google credentials found (tried: {tried})"
        asked = self.settings.auth.auth is True
        if self.cloud_run or asked:
            self.emit(
                "credentials",
                "fail",
                detail,
                hints.doctor_hint("credentials"),
                ExitCode.CREDENTIALS,
            )
        else:
            self.emit(
                "credentials",
                "warn",
                detail + "; calls go out without a token",
                hints.doctor_hint("credentials"),
            )

    def _skip_admin(self, name: str) -> None:
        if name == "service" and self.service_problem is not None:
            c = self.service_problem
            self.emit(c.check, c.result, c.detail, c.hint, c.exit_code)
            return
        if not self.cloud_run:
            self.emit(
                name,
                "skip",
                "not a Cloud Run target the Admin API can name (neither run:// nor a "
                "run.app URL with its project number and region)",
                hints.doctor_hint("admin-api"),
            )
        elif self.access is None:
            self.emit(name, "skip", "the Admin API needs credentials (see credentials)")
        else:
            self.emit(name, "skip", "the service could not be read (see service)")

    def _service(self) -> None:
        svc = self.service
        if svc is None:
            self._skip_admin("service")
            return
        assert self.loc is not None
        name = svc.name or self.loc.name
        if svc.ready:
            self.emit(
                "service",
                "ok",
                f"{name}: revision {svc.latest_revision} is ready; {svc.uri}",
            )
            return
        message = svc.condition_message or f"state {svc.condition_state or 'unknown'}"
        self.emit(
            "service",
            "fail",
            f"{name}: the latest revision {svc.latest_revision or '(none)'} is not ready: {message}",
            hints.doctor_hint(
                "service-not-ready", **self.facts(revision=svc.latest_revision or "")
            ),
            UNAVAILABLE,
        )

    def _token(self, svc: RunService) -> None:
        plan, token = self.plan, self.token
        accepted = svc.accepted_audiences
        if token is None:
            if plan is None:
                self.emit("token", "skip", "no token was minted (see credentials)")
            elif svc.invoker_iam_disabled:
                self.emit(
                    "token",
                    "ok",
                    f"no token is sent ({plan.withheld_text}); the service checks none",
                )
            else:
                self.emit(
                    "token",
                    "warn",
                    f"no token is sent ({plan.withheld_text}): Cloud Run refuses the call (401)",
                    hints.doctor_hint("token-withheld"),
                )
            return
        aud = token.audience
        auds = aud if isinstance(aud, list) else [aud] if aud else []
        if not token.audience_bound:
            self.emit(
                "token",
                "ok",
                f"a gcloud user's token: aud {', '.join(auds)} is the OAuth client, which Cloud Run accepts for users",
            )
            return
        for a in auds:
            norm = a.rstrip("/")
            if norm == (svc.uri or "").rstrip("/"):
                self.emit("token", "ok", f"aud {a} is the service's URL")
                return
            if norm in (u.rstrip("/") for u in svc.urls):
                self.emit("token", "ok", f"aud {a} is one of the service's URLs")
                return
            if norm in (c.rstrip("/") for c in svc.custom_audiences):
                self.emit("token", "ok", f"aud {a} is one of the service's custom audiences")
                return
        shown = ", ".join(auds) or "(none)"
        if svc.iap_enabled and self.settings.auth.audience:
            self.emit(
                "token",
                "warn",
                f"aud {shown} is not one Cloud Run accepts by itself; with IAP it must be the IAP OAuth client ID",
                hints.doctor_hint("iap"),
            )
            return
        self.emit(
            "token",
            "fail",
            f"aud {shown} is not one the service accepts: {', '.join(accepted) or '(none listed)'}",
            hints.doctor_hint(
                "token",
                **self.facts(
                    audience=auds[0] if auds else "AUD", accepted=(svc.uri or "URL").rstrip("/")
                ),
            ),
            UNAUTHENTICATED,
        )

    def _ingress(self, svc: RunService) -> None:
        from .cloudrun.model import INGRESS_ALL

        kind = svc.ingress or INGRESS_ALL
        if kind == INGRESS_ALL:
            self.emit(
                "ingress",
                "ok",
                f"{INGRESS_ALL}: reachable from the internet"
                + ("" if svc.ingress else " (the default)"),
            )
            return
        where = INGRESS.get(kind, "not all traffic is allowed")
        self.emit(
            "ingress", "warn", f"{kind}: {where}", hints.doctor_hint("ingress", **self.facts())
        )

    def _identity(self) -> str | None:
        if self.token is not None and self.token.email:
            return self.token.email
        if self.token is not None and self.access is not None:
            return self.access.email
        return None

    def _invoker(self, svc: RunService) -> None:
        from .cloudrun.errors import RunAccessDenied

        if svc.invoker_iam_disabled:
            self.emit(
                "invoker", "ok", "invokerIamDisabled: the service takes calls without an IAM check"
            )
            return
        assert self.api is not None and self.loc is not None
        try:
            policy = self.api.get_iam_policy(self.loc)
        except RunAccessDenied as exc:
            self.emit(
                "invoker",
                "skip",
                f"cannot read the IAM policy: {exc.message}",
                hints.doctor_hint("invoker-unreadable"),
            )
            return
        except CrgrpcError as exc:
            self.emit("invoker", "skip", f"cannot read the IAM policy: {exc.message}", _first(exc))
            return
        email = self._identity()
        members: dict[str, list[str]] = {}  # member → its conditions' titles ("" for none)
        for b in policy.get("bindings") or []:
            if not isinstance(b, dict) or b.get("role") not in INVOKER_ROLES:
                continue
            cond = b.get("condition")
            title = (
                str(cond.get("title") or cond.get("expression") or "a condition")
                if isinstance(cond, dict)
                else ""
            )
            for m in b.get("members") or []:
                if isinstance(m, str):
                    members.setdefault(m, []).append(title)
        role = INVOKER_ROLES[0]
        for public in PUBLIC:
            if public in members and "" in members[public]:
                self.emit("invoker", "ok", f"{public} has {role}: the service is public")
                return
        if email is not None:
            mine = [
                m
                for m in (hints.member_of(email), f"user:{email}", f"serviceAccount:{email}")
                if m in members
            ]
            if mine:
                if "" in members[mine[0]]:
                    self.emit("invoker", "ok", f"{mine[0]} has {role}")
                else:
                    self.emit(
                        "invoker",
                        "warn",
                        f"{mine[0]} has {role} only under {members[mine[0]][0]!r}, which cannot be checked from here",
                    )
                return
        groups = sorted(m for m in members if m.startswith(("group:", "domain:")))
        if groups:
            self.emit(
                "invoker",
                "warn",
                f"{role} is bound only to {', '.join(groups)}: whether {email or 'the identity'} is a member cannot be checked from here",
                hints.doctor_hint("invoker-group", email=email or ""),
            )
            return
        if email is None:
            if self.token is None:
                self.emit(
                    "invoker",
                    "warn",
                    f"no token is sent, and {role} is not granted to allUsers",
                    hints.doctor_hint("token-withheld"),
                )
            else:
                self.emit(
                    "invoker",
                    "warn",
                    "the token names no email: its identity cannot be matched with the policy",
                    hints.doctor_hint("invoker-no-email"),
                )
            return
        self.emit(
            "invoker",
            "fail",
            f"{hints.member_of(email)} has no {role} binding on the service (roles granted on the project are not visible here)",
            hints.doctor_hint("invoker", **self.facts(email=email)),
            PERMISSION_DENIED,
        )

    def _iap(self, svc: RunService) -> None:
        if svc.iap_enabled:
            self.emit(
                "iap",
                "warn",
                "IAP is enabled: the token's audience must be the IAP OAuth client ID, not the service's URL",
                hints.doctor_hint("iap"),
            )
        else:
            self.emit("iap", "ok", "IAP is not enabled on the service")

    def _http2(self, svc: RunService) -> None:
        if svc.http2:
            self.emit("http2", "ok", "end-to-end HTTP/2: the container port is named h2c")
            return
        ports = ", ".join(svc.port_names) or "http1 (the default)"
        self.emit(
            "http2",
            "warn",
            f"the container port is {ports}, not h2c: Cloud Run speaks HTTP/1.1 to the container, "
            "so client and bidi streaming and reflection fail (deadlines); unary calls work",
            hints.doctor_hint("http2", **self.facts()),
        )

    def _timeout(self, svc: RunService) -> None:
        limit = svc.request_timeout
        given = self.settings.channel.timeout
        text = f"the revision's request timeout is {limit:g} s" + (
            "" if svc.timeout is not None else " (the default)"
        )
        if given is not None and given > limit:
            self.emit(
                "timeout",
                "warn",
                f"--timeout {given:g} s exceeds it: {text}, so Cloud Run ends longer calls first",
                hints.doctor_hint("timeout", **self.facts(timeout=f"{given:g}")),
            )
            return
        self.emit(
            "timeout",
            "ok",
            text + (f"; --timeout {given:g} s is within it" if given is not None else ""),
        )

    # --- the wire ------------------------------------------------------------------------

    def _connect(self) -> None:
        target = self.target
        if target is None:
            self.emit("connect", "skip", "no address to dial (see service)")
            return
        from .channel import channel_proxy

        s = self.settings.channel
        timeout = s.connect_timeout
        if target.is_unix:
            assert target.unix_path is not None
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect(target.unix_path)
            except OSError as exc:
                self.emit(
                    "connect",
                    "fail",
                    f"cannot connect to {target.address}: {exc.strerror or exc}",
                    "is the server listening on that socket?",
                    ExitCode.CONNECTION,
                )
                return
            self.connected = True
            self.emit(
                "connect", "ok", f"{target.address}: the socket accepts connections (plaintext)"
            )
            return
        assert target.port is not None
        proxy, _ = channel_proxy(target, s)
        steps: list[str] = []
        try:
            if proxy is None:
                infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
                addresses = sorted({str(i[4][0]) for i in infos})
                if addresses != [target.host]:
                    steps.append(f"DNS {target.host} → {', '.join(addresses[:3])}")
            else:
                steps.append(f"through the proxy {proxy.described}")
        except OSError as exc:
            self.emit(
                "connect",
                "fail",
                f"DNS: cannot resolve {target.host}: {exc.strerror or exc}",
                "check the host name",
                ExitCode.CONNECTION,
            )
            return
        try:
            sock = _dial(target.host, target.port, proxy, timeout)
        except ConnectError as exc:
            self.emit("connect", "fail", exc.message, _first(exc), ExitCode.CONNECTION)
            return
        except OSError as exc:
            self.emit(
                "connect",
                "fail",
                f"TCP: cannot connect to {target.address}: {exc.strerror or exc}",
                "is the server running and listening on that port?",
                ExitCode.CONNECTION,
            )
            return
        steps.append("TCP")
        with sock:
            if not target.tls:
                self.connected = True
                self.emit(
                    "connect",
                    "ok",
                    f"{target.address}: {', '.join(steps)}; plaintext (h2c: no TLS, no ALPN)",
                )
                return
            self._tls(target, sock, steps)

    def _tls(self, target: Target, sock: socket.socket, steps: list[str]) -> None:
        from .target import strip_port

        s = self.settings.channel
        name = strip_port(s.authority).strip("[]") if s.authority else target.host
        try:
            ctx = ssl.create_default_context(cafile=str(s.cacert) if s.cacert else None)
            if s.cert and s.key:
                ctx.load_cert_chain(str(s.cert), str(s.key))
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot use the TLS files: {exc}") from None
        if s.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        try:
            tls = ctx.wrap_socket(sock, server_hostname=name)
        except ssl.SSLCertVerificationError as exc:
            why = exc.verify_message or str(exc)
            self.emit(
                "connect",
                "fail",
                f"{target.address}: {', '.join(steps)}; TLS: the certificate is not valid for {name}: {why}",
                hints._TLS_HINTS[0] if "mismatch" in why.lower() else hints._TLS_HINTS[1],
                ExitCode.CONNECTION,
            )
            return
        except (ssl.SSLError, OSError) as exc:
            self.emit(
                "connect",
                "fail",
                f"{target.address}: {', '.join(steps)}; TLS handshake failed: {exc}",
                "the server may speak plaintext: try --plaintext or http://",
                ExitCode.CONNECTION,
            )
            return
        with tls:
            version = tls.version() or "TLS"
            alpn = tls.selected_alpn_protocol()
            cert: Any = tls.getpeercert() or {}
        if s.insecure:
            steps.append(f"{version}, certificate not verified (--insecure)")
        else:
            until = cert.get("notAfter")
            steps.append(
                f"{version}, certificate valid for {name}"
                + (f" until {_cert_date(until)}" if until else "")
            )
        if alpn != "h2":
            self.emit(
                "connect",
                "fail",
                f"{target.address}: {', '.join(steps)}; ALPN: the server did not agree to h2 ({alpn or 'no ALPN'}), so gRPC cannot speak to it",
                "is this a gRPC server? Cloud Run needs no setting for ALPN h2",
                ExitCode.CONNECTION,
            )
            return
        steps.append("ALPN h2")
        self.connected = True
        result = "warn" if s.insecure else "ok"
        self.emit(
            "connect",
            result,
            f"{target.address}: {', '.join(steps)}",
            "drop --insecure and pass --cacert FILE to verify the server" if s.insecure else "",
        )

    def _connection(self) -> Connection:
        from .channel import Connection

        if self.conn is None:
            assert self.target is not None
            metadata = self.plan.metadata if self.plan is not None else None
            self.conn = Connection(self.target, self.settings.channel, metadata)
        return self.conn

    def _session(self) -> Any:
        from .session import Session

        assert self.target is not None and self.plan is not None
        return Session(
            target=self.target, settings=self.settings, plan=self.plan, conn=self._connection()
        )

    def _reflection(self) -> None:
        if not self.connected:
            self.emit("reflection", "skip", "no connection (see connect)")
            return
        from .schema.reflection import ReflectionSource

        conn = self._connection()
        try:
            conn.wait_connected()
            source = ReflectionSource(
                conn.channel,
                metadata=conn.metadata,
                timeout=self.settings.channel.reflection_timeout,
                address=conn.target.address,
            )
            self.services = source.list_services()
        except SchemaError as exc:
            if "does not support reflection" in exc.message:
                given = self.settings.schema.protosets or self.settings.schema.protos
                self.emit(
                    "reflection",
                    "ok" if given else "warn",
                    "none: the server answers neither v1 nor v1alpha"
                    + ("; --protoset/--proto gives the schema" if given else ""),
                    "" if given else hints.doctor_hint("reflection"),
                )
            else:
                self.emit("reflection", "fail", exc.message, "", ExitCode.SCHEMA)
            return
        except RpcStatusError as exc:
            first = next(
                iter(
                    hints.status_hints(
                        exc.code,
                        exc.details,
                        self._session() if self.plan else None,
                        phase="reflection",
                    )
                ),
                "",
            )
            self.emit("reflection", "fail", exc.message, first, exc.exit_code)
            return
        except ConnectError as exc:
            self.connected = False
            self.emit("reflection", "fail", exc.message, _first(exc), ExitCode.CONNECTION)
            return
        names = ", ".join(s for s in self.services if not s.startswith("grpc.reflection."))
        self.emit(
            "reflection",
            "ok",
            f"{source.version}: {len(self.services)} services" + (f" ({names})" if names else ""),
        )

    def _health(self) -> None:
        import grpc

        if not self.connected:
            self.emit("health", "skip", "no connection (see connect)")
            return
        if self.services is not None and HEALTH_SERVICE not in self.services:
            self.emit("health", "skip", f"the server does not list {HEALTH_SERVICE}")
            return
        conn = self._connection()
        check = conn.channel.unary_unary(HEALTH_METHOD, None, None)
        try:
            answer = check(
                b"",
                metadata=tuple(conn.metadata()),
                timeout=self.settings.channel.reflection_timeout,
            )
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else None
            details = _one_line(str(err.details() if hasattr(err, "details") else "") or "")
            if code == grpc.StatusCode.UNIMPLEMENTED:
                self.emit("health", "skip", f"{HEALTH_METHOD} is not served")
            else:
                name = code.name if code is not None else "UNKNOWN"
                self.emit(
                    "health",
                    "warn",
                    f"Check answered {name}: {details}" if details else f"Check answered {name}",
                    hints.doctor_hint("health-failed", method=HEALTH_METHOD.lstrip("/")),
                )
            return
        status = _health_status(answer)
        name = HEALTH_STATUS.get(status, str(status))
        if status == 1:
            self.emit("health", "ok", f"{HEALTH_METHOD}: {name}")
        else:
            self.emit("health", "warn", f"{HEALTH_METHOD}: {name}", hints.doctor_hint("health"))


def _dial(host: str, port: int, proxy: Any, timeout: float) -> socket.socket:
    from . import egress

    sock: socket.socket = egress.connect(host, port, proxy, timeout)
    return sock


def _first(err: CrgrpcError) -> str:
    """The first hint core.hints gives err."""
    hints.explain(err)
    return err.hints[0] if err.hints else ""


def _cert_date(text: str) -> str:
    try:
        return time.strftime("%Y-%m-%d", time.gmtime(ssl.cert_time_to_seconds(text)))
    except ValueError:
        return text


def _health_status(data: bytes) -> int:
    """HealthCheckResponse.status (field 1, a varint) from its wire bytes; 0 when absent."""
    i, status = 0, 0
    while i < len(data):
        key = data[i]
        i += 1
        field, wire = key >> 3, key & 7
        if wire != 0:
            return status  # not a varint: a response crgrpc does not understand
        value, shift = 0, 0
        while i < len(data):
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if field == 1:
            status = value
    return status
