"""When a token is sent (README: Authenticating), decided before any connection.

Owns plan_auth: the audience, the header, the rules for plaintext and
--insecure targets, a gcloud user's unbound token, the user's own -H header,
--no-auth and --auth, and the notices and the reason a token is withheld.
It never mints: the caller calls AuthPlan.metadata() once before dialing.
With the "cached" policy (completion) it never mints at all: only a token
already in the cache is sent.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ...errors import CredentialsError
from ...settings import AuthSettings, ChannelSettings
from ..secrets import bearer
from ..target import Target, strip_port
from .named import explicit_sources, header_for
from .texts import CREDENTIALS_HINT

if TYPE_CHECKING:
    from .token import IdToken, TokenProvider

TokenPolicy = Literal["mint", "cached"]


class Withheld(enum.Enum):
    """Why no token is sent."""

    NO_AUTH = "--no-auth"
    USER_HEADER = "your own -H header is sent"
    PLAINTEXT = "a plaintext target gets a token only when asked (--auth or a token source)"
    INSECURE = "a --insecure target gets a token only when asked (--auth or a token source)"
    NO_CREDENTIALS = "no Google credentials were found"
    UNBOUND_USER_TOKEN = "a gcloud user's ID token is not sent to a host outside run.app"
    NOT_CACHED = "no token for this audience is cached (completion never mints)"


def choose_audience(audience: str | None, target: Target | None, authority: str | None) -> str | None:
    """The audience rule: --audience, else https://HOST of --authority, else of the target."""
    if audience:
        return audience
    if target is None:
        return "https://" + strip_port(authority) if authority else None
    return target.default_audience(authority)


class AuthPlan:
    """Which token goes in which header, or why none is sent; not changed once made.

    (A plain class: this module loads on every call, and a frozen dataclass
    costs a start about a millisecond to define.)
    """

    __slots__ = (
        "_last", "audience", "detail", "header", "notices", "policy", "provider",
        "quiet_notices", "tried", "warnings", "withheld",
    )

    def __init__(
        self,
        provider: TokenProvider | None,
        header: str,  # "authorization" or "x-serverless-authorization"
        audience: str | None,
        notices: tuple[str, ...] = (),  # one-line stderr notices, without "error:"
        withheld: Withheld | None = None,  # why no token is sent; None when one is
        tried: tuple[str, ...] = (),  # the credential sources looked at
        policy: TokenPolicy = "mint",
        detail: str = "",  # the withholding said in full, where the enum's words are not enough
        quiet_notices: tuple[str, ...] = (),  # notices shown only with -v
        warnings: tuple[str, ...] = (),  # said before dialing (a fixed token for another audience)
    ) -> None:
        self.provider = provider
        self.header = header
        self.audience = audience
        self.notices = notices
        self.withheld = withheld
        self.tried = tried
        self.policy = policy
        self.detail = detail
        self.quiet_notices = quiet_notices
        self.warnings = warnings
        self._last: list[IdToken] = []

    def __repr__(self) -> str:  # never the token: the provider's own repr hides it
        return (
            f"AuthPlan(header={self.header!r}, audience={self.audience!r}, "
            f"withheld={self.withheld!r}, policy={self.policy!r})"
        )

    def metadata(self) -> list[tuple[str, str]]:
        """[(header, "Bearer <token>")] or []; asks the provider every time (refresh)."""
        if self.provider is None:
            return []
        if self.policy == "cached":
            cached = getattr(self.provider, "cached", None)
            token = cached() if cached is not None else None
            if token is None:
                return []
        else:
            token = self.provider.get()
        self._last[:] = [token]
        return [(self.header, bearer(token.value))]

    @property
    def withheld_text(self) -> str:
        """Why no token is sent, in words ("" when one is)."""
        if self.withheld is None:
            return ""
        if self.detail:
            return self.detail
        if self.withheld is Withheld.NO_CREDENTIALS and self.tried:
            return f"no Google credentials found (tried: {', '.join(self.tried)})"
        if self.withheld is Withheld.USER_HEADER:
            return f"your own -H {self.header} header is sent"
        return str(self.withheld.value)

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
    policy: TokenPolicy = "mint",
    cache_dir: Path | None = None,
) -> AuthPlan:
    """Decide whether a token is sent, from which source, in which header, for which audience.

    cache_dir: the crgrpc cache directory for the token cache (default cache_root()).
    """
    header = header_for(auth)
    explicit = explicit_sources(auth)  # UsageError on a conflict, whatever else applies
    audience = choose_audience(auth.audience, target, channel.authority)
    if auth.auth is False:
        return AuthPlan(None, header, audience, (), Withheld.NO_AUTH, policy=policy)
    if header in {h.strip().lower() for h in user_headers}:
        notices: tuple[str, ...] = ()
        if explicit:
            notices = (f"{explicit[0]} not used: your -H {header} header is sent instead",)
        return AuthPlan(None, header, audience, notices, Withheld.USER_HEADER, policy=policy)

    asked = auth.auth is True or bool(explicit)
    if not target.tls or channel.insecure:
        if not asked:
            reason = Withheld.INSECURE if target.tls else Withheld.PLAINTEXT
            return AuthPlan(None, header, audience, (), reason, policy=policy)
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

    from .sources import resolve  # only now: a call that sends no token never loads it

    provider, tried = resolve(auth, audience, cache_dir=cache_dir)
    if provider is None:
        tried_text = ", ".join(tried)
        if asked and policy == "mint":
            raise CredentialsError(
                f"--auth: no Google credentials found (tried: {tried_text})", CREDENTIALS_HINT
            )
        # Said where a token is likely expected (a run.app host); elsewhere only with -v.
        note = (
            f"no Google credentials found (tried: {tried_text}); calling without a token "
            "(--no-auth silences this note)"
        )
        host = strip_port(channel.authority) if channel.authority else target.host
        loud = is_run_app(host)
        return AuthPlan(
            None,
            header,
            audience,
            (note,) if loud else (),
            Withheld.NO_CREDENTIALS,
            tuple(tried),
            policy=policy,
            quiet_notices=() if loud else (note,),
        )
    if not provider.audience_bound and auth.auth is not True:
        host = strip_port(channel.authority) if channel.authority else target.host
        if not is_run_app(host):
            why = (
                f"not sending the gcloud user's ID token to {host}: its audience is the OAuth "
                "client, not this service, so whoever receives it can replay it against every "
                "service that user may invoke; --auth sends it anyway"
            )
            return AuthPlan(
                None, header, audience, (why,), Withheld.UNBOUND_USER_TOKEN, tuple(tried),
                policy=policy, detail=why,
            )
    return AuthPlan(
        provider, header, audience, (), None, tuple(tried), policy=policy,
        warnings=_fixed_token_warnings(provider, audience),
    )


def _fixed_token_warnings(provider: TokenProvider, audience: str | None) -> tuple[str, ...]:
    """A token the user gave whose aud is not the target's audience: say so before dialing."""
    from .token import StaticProvider

    if not isinstance(provider, StaticProvider) or audience is None:
        return ()
    aud = provider.token.audience
    auds = aud if isinstance(aud, list) else [aud]
    if audience in auds:
        return ()
    return (
        f"{provider.source}: the token's aud is {aud}, not {audience} (the target's "
        "audience): the service may refuse it, and --audience cannot change a fixed token",
    )
