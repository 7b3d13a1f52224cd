"""When a token is sent (DESIGN.md, Authentication), decided before any connection.

Owns plan_auth: the audience, the header, the rules for plaintext and
--insecure targets, a gcloud user's unbound token, the user's own -H header,
--no-auth and --auth, and the notices and the reason a token is withheld.
It never mints: the caller calls AuthPlan.metadata() once before dialing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ...errors import CredentialsError
from ...settings import AuthSettings, ChannelSettings
from ..target import Target, strip_port
from .sources import explicit_sources, header_for, resolve
from .token import IdToken, TokenProvider


@dataclass(frozen=True)
class AuthPlan:
    provider: TokenProvider | None
    header: str  # "authorization" or "x-serverless-authorization"
    audience: str | None
    notices: tuple[str, ...] = ()  # one-line stderr notices, without "error:"
    withheld: str | None = None  # why no token is sent; None when one is
    _last: list[IdToken] = field(default_factory=list, repr=False, compare=False)

    def metadata(self) -> list[tuple[str, str]]:
        """[(header, "Bearer <token>")] or []; asks the provider every time (refresh)."""
        if self.provider is None:
            return []
        token = self.provider.get()
        self._last[:] = [token]
        return [(self.header, f"Bearer {token.value}")]

    def current(self) -> IdToken | None:
        """The token the last metadata() call returned."""
        return self._last[0] if self._last else None


def is_run_app(host: str) -> bool:
    h = host.lower().rstrip(".")
    return h.endswith(".run.app")


def plan_auth(
    target: Target,
    channel: ChannelSettings,
    auth: AuthSettings,
    *,
    user_headers: Sequence[str] = (),
) -> AuthPlan:
    """Decide whether a token is sent, from which source, in which header, for which audience."""
    header = header_for(auth)
    explicit = explicit_sources(auth)  # UsageError on a conflict, whatever else applies
    audience = auth.audience or target.default_audience(channel.authority)
    if auth.auth is False:
        return AuthPlan(None, header, audience, (), "--no-auth")
    if header in {h.strip().lower() for h in user_headers}:
        notices: tuple[str, ...] = ()
        if explicit:
            notices = (f"{explicit[0]} not used: your -H {header} header is sent instead",)
        return AuthPlan(None, header, audience, notices, f"your own -H {header} header is sent")

    asked = auth.auth is True or bool(explicit)
    if not target.tls or channel.insecure:
        kind = "--insecure" if target.tls else "plaintext"
        if not asked:
            return AuthPlan(
                None,
                header,
                audience,
                (),
                f"a {kind} target gets a token only when asked (--auth or a token source)",
            )
        if not target.is_loopback and not auth.allow_plaintext_token:
            how = (
                "over a connection whose certificate is not verified (--insecure)"
                if target.tls
                else "over plaintext"
            )
            raise CredentialsError(
                f"refusing to send a token {how} to {target.host}: "
                "anyone on the path could replay it",
                "use TLS, or --allow-plaintext-token if the network is trusted",
            )

    provider, tried = resolve(auth, audience)
    if provider is None:
        tried_text = ", ".join(tried)
        if asked:
            raise CredentialsError(
                f"--auth: no Google credentials found (tried: {tried_text})",
                "use --key-file, --impersonate-service-account or --token, or run "
                "`gcloud auth application-default login`",
            )
        return AuthPlan(
            None,
            header,
            audience,
            (f"no Google credentials found (tried: {tried_text}); calling without a token",),
            f"no Google credentials found (tried: {tried_text})",
        )
    if not provider.audience_bound and auth.auth is not True:
        host = strip_port(channel.authority) if channel.authority else target.host
        if not is_run_app(host):
            why = (
                f"not sending the gcloud user's ID token to {host}: its audience is the OAuth "
                "client, not this service, so whoever receives it can replay it against every "
                "service that user may invoke; --auth sends it anyway"
            )
            return AuthPlan(None, header, audience, (why,), why)
    return AuthPlan(provider, header, audience, (), None)
