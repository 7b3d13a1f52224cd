"""`crgrpc proxy`: a local plaintext (h2c) gRPC endpoint that relays every call
to one target with crgrpc's token.

The data path is core/relay.py: each client stream is paired with one
upstream stream and its frames cross as they came, so every method of every
kind passes with no schema (reflection too), compressed messages stay
compressed, and flow control is end to end. One event loop holds every call:
no thread and no task per call. `Proxy` is the relay's router: it listens,
keeps the upstream connections, and per call builds the upstream headers
(the client's metadata with the token header replaced and the -H headers
added, `user-agent` prefixed with crgrpc's, the deadline capped by
--timeout), decides a retry (--retries; once for a refused stream) and logs
one line when the call ends.

Tokens (`TokenKeeper`): the plan's first token is minted before the server
starts (exit 3 on failure); a background task refreshes it at its refresh
margin before `exp` (auth/token.refresh_margin), so calls never wait for a
mint while a token is valid, and all calls share one token. When minting
fails the old token serves until it expires; after that, calls are answered
UNAUTHENTICATED with the reason, and the log says it too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import ipaddress
import random
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from grpc import aio

from ..errors import ConnectError, CrgrpcError, UsageError
from ..settings import ProxySettings, Settings
from . import aioloop, egress
from .auth.policy import AuthPlan
from .auth.token import IdToken, StaticProvider, refresh_margin
from .channel import (
    MAX_RETRIES,
    RETRYABLE_DEFAULT,
    certificate_name,
    channel_proxy,
    dial_parts,
    fetch_server_certificate,
    host_of,
    wrong_protocol,
)
from .channel import crgrpc_version as _version
from .h2conn import NO_ERROR, Headers
from .relay import Downstream, Link, Upstream, flush_all
from .rpcerrors import connect_error
from .secrets import SECRETS, Secrets, bearer, is_secret_header, redact_header_value
from .target import Target, is_loopback_host

Metadata = tuple[tuple[str, "str | bytes"], ...]

RETRY_MIN, RETRY_MAX = 1.0, 30.0  # seconds between minting attempts after a failure
_SLICE = 30.0  # the refresher re-reads the wall clock at least this often (suspend, resume)
_LONGEST_DEADLINE = 99_999_999.0  # seconds: a longer deadline (years) counts as none
RETRY_BACKOFF, RETRY_BACKOFF_MAX = 0.5, 4.0  # seconds: gRPC's policy as `call` sets it (core/channel.py)


# --- what the proxy tells its log ----------------------------------------------------------


@dataclass(frozen=True)
class Listening:
    address: str  # host:port the proxy listens on
    target: str  # the upstream address
    tls: bool
    header: str | None  # the header the token goes in; None when no token is sent
    withheld: str  # why no token is sent ("" when one is)


@dataclass(frozen=True)
class TokenReady:
    source: str
    audience: str | None
    email: str | None
    expires: int | None  # exp, seconds since the epoch
    refreshed: bool  # False for the first token


@dataclass(frozen=True)
class TokenFailed:
    message: str
    expired: bool  # no valid token any more: calls are answered UNAUTHENTICATED
    retry_in: float | None  # seconds until the next attempt; None: no more attempts


@dataclass(frozen=True)
class CallDone:
    at: float  # wall time the call arrived
    method: str  # pkg.Service/Method
    code: int
    status: str  # OK, UNAVAILABLE…
    message: str  # the status message (credentials scrubbed)
    duration_ms: float
    requests: int  # messages forwarded client → upstream
    responses: int  # messages forwarded upstream → client
    peer: str
    metadata: Metadata | None  # what went upstream, secret values redacted (-v only)


@dataclass(frozen=True)
class Notice:
    level: Literal["warning", "note"]
    message: str


@dataclass(frozen=True)
class Stopping:
    signal: str  # SIGINT, SIGTERM, or "" when stopped by the program
    in_flight: int
    grace: float


@dataclass(frozen=True)
class Stopped:
    cancelled: int  # calls still running when the grace period ran out


ProxyEvent = Listening | TokenReady | TokenFailed | CallDone | Notice | Stopping | Stopped
Log = Callable[[ProxyEvent], None]


# --- where it listens ----------------------------------------------------------------------


def parse_bind(text: str) -> str:
    """The host of --bind (brackets dropped); UsageError for host:port and junk."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise UsageError("--bind needs an address", "e.g. --bind 127.0.0.1, --bind ::1")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if ":" in host or "/" in host or any(c.isspace() for c in host):
        raise UsageError(
            f"invalid --bind {text!r}: give an address or host name without a port",
            "the port is --port: --bind 0.0.0.0 --port 8080",
        )
    return host


def is_loopback_bind(host: str) -> bool:
    """True when every address host stands for is a loopback address."""
    if is_loopback_host(host):
        return True
    try:
        ipaddress.ip_address(host)
        return False  # an address, and not a loopback one (0.0.0.0 and :: are every interface)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as e:
        raise UsageError(f"cannot resolve --bind {host}: {e.strerror or e}") from None
    return all(ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]).is_loopback for i in infos)


def exposure_warning(host: str, port: int, target: str, email: str | None, *, token: bool) -> str:
    """What --bind on a non-loopback address lets others do, said before listening."""
    who = f" as {email}" if email else ""
    sent = f"with your token{who}" if token else "through this proxy"
    return (
        f"--bind {host} is not a loopback address: anyone who can reach port {port} here "
        f"calls {target} {sent}"
    )


def listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --- tokens ----------------------------------------------------------------------------------


WAIT: Any = object()  # TokenKeeper.now(): no token to hand out without waiting


class NoToken(Exception):
    """No valid token to send: the call is answered UNAUTHENTICATED with this message."""


Attempt = Literal["new", "same", "failed"]


class TokenKeeper:
    """The one token every call shares, refreshed in the background before it expires."""

    def __init__(self, plan: AuthPlan, log: Log, secrets: Secrets = SECRETS) -> None:
        self.provider = plan.provider
        self.header = plan.header
        self.audience = plan.audience
        self._log = log
        self._secrets = secrets
        self._token: IdToken | None = plan.current() if plan.provider is not None else None
        self._value: str | None = bearer(self._token.value) if self._token else None
        self._error: str | None = None
        self._attempt: asyncio.Task[Attempt] | None = None
        self._last_attempt = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0

    @property
    def token(self) -> IdToken | None:
        return self._token

    def start(self) -> None:
        if self.provider is None or self._token is None:
            return
        self._secrets.add(self._token.value)
        self._log(self._ready(self._token, refreshed=False))
        self._task = asyncio.ensure_future(self._refresh_forever())

    async def close(self) -> None:
        for task in (self._task, self._attempt):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @staticmethod
    def usable(token: IdToken, now: float | None = None) -> bool:
        """Still worth sending: more than a moment (1 s, or half its margin) left."""
        left = token.seconds_left(now)
        return left is None or left > min(1.0, refresh_margin(token) / 2)

    def now(self) -> Any:
        """The auth header's value when it can be had at once (None: no token is sent),
        else WAIT (then `value`)."""
        if self.provider is None:
            return None
        token = self._token
        if token is not None and self.usable(token):
            return self._value
        return WAIT

    async def value(self) -> str | None:
        """The auth header's value for a call (None: no token is sent). Never waits
        while the token is valid; without one, waits for one shared attempt, at
        most one a second, then raises NoToken."""
        at_once = self.now()
        if at_once is not WAIT:
            return at_once  # type: ignore[no-any-return]
        if self._attempt is None and time.monotonic() - self._last_attempt >= RETRY_MIN:
            self._begin_attempt()
        if self._attempt is not None:
            await asyncio.shield(self._attempt)
        token = self._token
        if token is not None and self.usable(token):
            return self._value
        raise NoToken(self._error or self._expired_text(token))

    def _begin_attempt(self) -> asyncio.Task[Attempt]:
        self._last_attempt = time.monotonic()
        self._attempt = asyncio.ensure_future(self._get())
        return self._attempt

    async def _get(self) -> Attempt:
        """provider.get() in a worker thread (it may mint: HTTP, signing)."""
        assert self.provider is not None
        loop = asyncio.get_running_loop()
        old = self._token
        try:
            token = await loop.run_in_executor(None, self.provider.get)
        except CrgrpcError as e:
            self._error = f"cannot get a token for {self.audience}: {self._secrets.scrub(e.message)}"
            return "failed"
        except Exception as e:  # a bug or an unexpected library error: said, not raised
            text = self._secrets.scrub(f"{type(e).__name__}: {e}")
            self._error = f"cannot get a token for {self.audience}: {text}"
            return "failed"
        finally:
            self._attempt = None
        if old is not None and token.value == old.value:
            if not self.usable(token):
                self._error = self._expired_text(token)
                return "failed"
            return "same"
        self._secrets.add(token.value)
        self._token, self._value, self._error = token, bearer(token.value), None
        self.refreshes += 1
        self._log(self._ready(token, refreshed=True))
        return "new"

    def _expired_text(self, token: IdToken | None) -> str:
        if token is None:
            return "no token"
        from .auth.jwt import humanize_delta

        left = token.seconds_left() or 0.0
        when = f"expired {humanize_delta(left)} ago" if left <= 0 else "is about to expire"
        if isinstance(self.provider, StaticProvider):
            return (
                f"the token of {token.source} {when}; a token you give is never refreshed "
                "(give credentials to mint from instead, e.g. --key-file)"
            )
        return f"the token for {self.audience} {when}"

    def _refresh_in(self, token: IdToken) -> float | None:
        """Seconds until token should be refreshed (None: it never expires)."""
        left = token.seconds_left()
        if left is None:
            return None
        return left - refresh_margin(token) + 0.05

    async def _refresh_forever(self) -> None:
        assert self.provider is not None
        backoff = RETRY_MIN
        while True:
            token = self._token
            assert token is not None
            wait = self._refresh_in(token)
            if wait is None:
                return
            if isinstance(self.provider, StaticProvider):
                left = token.seconds_left() or 0.0
                if left > 0:
                    await asyncio.sleep(min(left + 0.05, _SLICE))
                    continue
                self._error = self._expired_text(token)
                self._log(TokenFailed(self._error, expired=True, retry_in=None))
                return
            if wait > 0:
                await asyncio.sleep(min(wait, _SLICE))
                continue
            attempt = self._attempt or self._begin_attempt()
            result = await asyncio.shield(attempt)
            if result == "new":
                backoff = RETRY_MIN
                continue
            if result == "same":  # woke a moment early: the provider still holds it fresh
                await asyncio.sleep(0.25)
                continue
            current = self._token
            expired = current is None or not self.usable(current)
            self._log(TokenFailed(self._error or "cannot get a token", expired, backoff))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_MAX)

    def _ready(self, token: IdToken, *, refreshed: bool) -> TokenReady:
        return TokenReady(
            source=token.source,
            audience=self.audience,
            email=token.email or (str(token.claims.get("sub")) if token.claims.get("sub") else None),
            expires=token.expiry,
            refreshed=refreshed,
        )


# --- the proxy ----------------------------------------------------------------------------------

_NAMES = {sc.value[0]: sc.name for sc in grpc.StatusCode}
# grpc-timeout units: seconds = value * multiplier / divisor
_TIMEOUT_UNITS = {b"H": (3600, 1.0), b"M": (60, 1.0), b"S": (1, 1.0), b"m": (1, 1e3), b"u": (1, 1e6), b"n": (1, 1e9)}
_PSEUDO = (b":method", b":scheme", b":path", b":authority")
# gRPC's own request headers: the -v log shows the call's metadata, not these.
_GRPC_HEADERS = frozenset(
    {b"content-type", b"te", b"user-agent", b"grpc-encoding", b"grpc-accept-encoding", b"grpc-timeout"}
)


def parse_grpc_timeout(value: bytes) -> float | None:
    """Seconds of a grpc-timeout header (None: not one)."""
    unit = _TIMEOUT_UNITS.get(value[-1:])
    digits = value[:-1]
    if unit is None or not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * unit[0] / unit[1]


def grpc_timeout(seconds: float) -> bytes:
    """A grpc-timeout header for seconds (at most 8 digits, as the spec says)."""
    ms = max(1, int(seconds * 1000))
    if ms < 100_000_000:
        return b"%dm" % ms
    return b"%dS" % min(99_999_999, int(seconds))


class Proxy:
    """The listening sockets, the client connections, the upstream connections and the
    calls between them; `start`, then `stop`, then `close` (tests drive it too)."""

    def __init__(
        self,
        target: Target,
        settings: Settings,
        proxy: ProxySettings,
        plan: AuthPlan,
        log: Log,
        *,
        secrets: Secrets = SECRETS,
    ) -> None:
        self.target = target
        self.settings = settings
        self.proxy = proxy
        self.secrets = secrets
        self.plan = plan
        self.log = _quiet(log)
        self.keeper = TokenKeeper(plan, self.log, secrets)
        self.verbose = settings.output.verbose
        self.in_flight = 0
        self.cancelled_at_stop = 0
        self.port = 0
        self._stopping = False
        self._servers: list[asyncio.AbstractServer] = []
        self._downs: set[Downstream] = set()
        self._ups: list[Upstream] = []
        self._links: set[Link] = set()
        self._dialing: asyncio.Future[Upstream] | None = None
        self._waiting: set[asyncio.Future[None]] = set()  # calls waiting for a token or a connection
        self._idle: asyncio.Event | None = None
        self._hurry: asyncio.Event | None = None
        self._tls: ssl.SSLContext | None = None
        self._server_name: str | None = None
        self._egress: egress.Proxy | None = None
        ch = settings.channel
        self._scheme = b"https" if target.tls else b"http"
        self._authority = (ch.authority or (target.address if not target.is_unix else "localhost")).encode()
        self._user_agent = f"crgrpc/{_version()} proxy".encode()
        self._user_headers = [(k.encode(), _wire_value(k, v)) for k, v in ch.headers]
        names = {k for k, _ in self._user_headers} | set(_PSEUDO)
        self._drop = frozenset(names)
        self._drop_with_token = frozenset(names | {plan.header.encode()})
        self._token_header = plan.header.encode()
        self._limit = ch.max_msg_size or 0
        self._retries = min(ch.retries, MAX_RETRIES)
        self._retry_codes = frozenset(
            sc.value[0] for sc in grpc.StatusCode if sc.name in {*RETRYABLE_DEFAULT, *(c.upper() for c in ch.retry_on)}
        )

    # --- lifecycle ---

    async def start(self) -> str:
        """Bind (UsageError), connect upstream (ConnectError), serve; host:port."""
        loop = asyncio.get_running_loop()
        host, port = self.proxy.bind, self.proxy.port
        socks = _bind(host, port)
        self.port = socks[0].getsockname()[1]
        try:
            await self._check()
            self._ups.append(await self._dial())
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        for sock in socks:
            self._servers.append(await loop.create_server(self._accept, sock=sock))
        address = listen_address(host, self.port)
        plan = self.plan
        self.log(Listening(
            address, self.target.address, self.target.tls,
            plan.header if plan.provider is not None else None, plan.withheld_text,
        ))
        self.keeper.start()
        return address

    def _accept(self) -> Downstream:
        down = Downstream(self, self._downs.discard)
        down.on_error = self._relay_error  # type: ignore[method-assign]
        self._downs.add(down)
        return down

    def _relay_error(self, exc: Exception) -> None:
        text = self.secrets.scrub(f"{type(exc).__name__}: {exc}")
        self.log(Notice("warning", f"a connection was closed on an internal error of the proxy: {text}"))

    async def _check(self) -> None:
        """The first connection as `call` makes it, with gRPC's words for a failure
        (exit 4 on the first failure unless --retries, or after --connect-timeout);
        the relay's TLS settings are made from the same options. With --insecure the
        server's certificate is fetched once, through the egress proxy if any, for both."""
        s = self.settings.channel
        self._egress, _ = channel_proxy(self.target, s)
        pinned = None
        if self.target.tls and s.insecure:
            pinned = fetch_server_certificate(self.target, s.connect_timeout, self._egress)
        creds, opts = dial_parts(self.target, s, self._egress, pinned)
        channel = (
            aio.insecure_channel(self.target.address, options=opts)
            if creds is None
            else aio.secure_channel(self.target.address, creds, options=opts)
        )
        try:
            await self._connect(channel)
        finally:
            await channel.close(None)
        if self.target.tls:
            self._tls, self._server_name = self._tls_context(pinned)

    def _tls_context(self, pinned: bytes | None) -> tuple[ssl.SSLContext, str | None]:
        s = self.settings.channel
        name: str | None = self.target.host or None
        if pinned is not None:  # --insecure: exactly the certificate the server showed
            ctx = ssl.create_default_context(cadata=pinned.decode())
            name = certificate_name(pinned) or name
        else:
            ctx = ssl.create_default_context(cafile=str(s.cacert) if s.cacert else None)
        if s.authority:
            name = host_of(s.authority)
        if s.cert and s.key:
            ctx.load_cert_chain(str(s.cert), str(s.key))
        ctx.set_alpn_protocols(["h2"])
        return ctx, name

    async def _dial(self) -> Upstream:
        """One more connection to the target, its SETTINGS received (ConnectError)."""
        loop = asyncio.get_running_loop()
        target, s = self.target, self.settings.channel
        up = Upstream(self._upstream_closed)
        up.on_error = self._relay_error  # type: ignore[method-assign]
        tls: dict[str, Any] = {}
        if self._tls is not None:
            tls = {"ssl": self._tls, "server_hostname": self._server_name or ""}

        async def connect() -> None:
            if target.unix_path is not None:
                await loop.create_unix_connection(lambda: up, target.unix_path, **tls)
            elif target.port is None:
                raise ConnectError(f"cannot connect to {target.address}: no port")
            elif self._egress is not None:
                sock = await loop.run_in_executor(
                    None, egress.connect, target.host, target.port, self._egress, s.connect_timeout
                )
                sock.settimeout(None)
                await loop.create_connection(lambda: up, sock=sock, **tls)
            else:
                await loop.create_connection(lambda: up, target.host, target.port, **tls)
            if self._tls is not None and up.transport is not None:
                obj = up.transport.get_extra_info("ssl_object")
                if obj is None or obj.selected_alpn_protocol() != "h2":
                    raise ConnectError(
                        f"cannot connect to {target.address}: it does not speak HTTP/2 over TLS (ALPN h2)"
                    )
            await up.settled  # the server's SETTINGS: how many streams it takes

        try:
            await asyncio.wait_for(connect(), s.connect_timeout)
            return up
        except (TimeoutError, asyncio.TimeoutError):
            error = connect_error(target.address, f"connect timeout after {s.connect_timeout:g}s", "connect timeout")
        except (OSError, ssl.SSLError) as e:
            error = connect_error(target.address, self.secrets.scrub(str(e) or type(e).__name__))
        except ConnectError as e:
            error = e
        if up.transport is not None:
            up.transport.close()
        raise error

    def _upstream_closed(self, up: Upstream) -> None:
        with contextlib.suppress(ValueError):
            self._ups.remove(up)

    def _pick(self) -> Upstream | None:
        for up in self._ups:
            if up.room > 0:
                return up
        return None

    async def _more(self) -> Upstream:
        """A connection with room for one more stream, dialed when none has (shared)."""
        while True:
            up = self._pick()
            if up is not None:
                return up
            if self._dialing is None:
                self._dialing = asyncio.ensure_future(self._dial())
                dialing = self._dialing

                def added(f: asyncio.Future[Upstream]) -> None:
                    self._dialing = None
                    if not f.cancelled() and f.exception() is None:
                        self._ups.append(f.result())

                dialing.add_done_callback(added)
            await asyncio.shield(self._dialing)
            await asyncio.sleep(0)  # let the callback add it

    async def _connect(self, channel: aio.Channel) -> None:
        """Wait for the first connection as `call` does: exit 4 on the first failure
        (unless --retries), or after --connect-timeout."""
        s = self.settings.channel
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.connect_timeout
        ready, failing = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
        state = channel.get_state(try_to_connect=True)
        while state != ready:
            if state == failing and s.retries <= 0:
                details = await self._probe(channel)
                why = await loop.run_in_executor(None, wrong_protocol, self.target, details)
                raise connect_error(self.target.address, details, why)
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(channel.wait_for_state_change(state), left)
            except asyncio.TimeoutError:
                raise connect_error(
                    self.target.address,
                    f"connect timeout after {s.connect_timeout:g}s",
                    "connect timeout",
                ) from None
            state = channel.get_state(try_to_connect=True)

    async def _probe(self, channel: aio.Channel) -> str:
        """gRPC's own words for why the channel is failing (a fail-fast call)."""
        try:
            await channel.unary_unary("/crgrpc.Probe/Probe", None, None)(b"", timeout=5, wait_for_ready=False)
        except aio.AioRpcError as e:
            return self.secrets.scrub(e.details() or "")
        return "could not connect"

    async def stop(self, grace: float, signal: str = "") -> None:
        """Stop accepting; calls in flight get `grace` seconds, then are cancelled."""
        if not self._servers:
            return
        if self._hurry is None:
            self._hurry = asyncio.Event()
        if self._stopping:
            if grace <= 0:
                self._hurry.set()
            return
        self._stopping = True
        self.log(Stopping(signal, self.in_flight, grace))
        for server in self._servers:
            server.close()
        for down in list(self._downs):
            down.goaway(NO_ERROR)
        if self._links:
            self._idle = asyncio.Event()
            waits = {asyncio.ensure_future(self._idle.wait()), asyncio.ensure_future(self._hurry.wait())}
            await asyncio.wait(waits, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
        message = f"the proxy stopped: --grace {self.proxy.grace:g}s ran out"
        for link in list(self._links):
            self.cancelled_at_stop += 1
            link.respond(14, message)  # as gRPC's own servers stop: the client may retry
        flush_all()
        for down in list(self._downs):  # each had its GOAWAY above
            if down.transport is not None:
                down.transport.close()
        for server in self._servers:
            await server.wait_closed()

    async def close(self) -> None:
        """After stop: the token task and the upstream connections."""
        await self.keeper.close()
        for up in list(self._ups):
            if up.transport is not None:
                up.transport.close()
        if self._servers:
            self.log(Stopped(self.cancelled_at_stop))

    # --- one call (the relay's Router) ---

    def open(self, link: Link, headers: Headers) -> None:
        self.in_flight += 1
        self._links.add(link)
        link.down.limit = self._limit
        link.replay = []  # the request, kept for a retry while it is small
        self._when_ready(link, functools.partial(self._send, link, headers))

    def _when_ready(self, link: Link, go: Callable[[str | None, Upstream], None]) -> None:
        """go(auth, upstream) now when a token and a connection are at hand (the usual
        case: no task), else once they are (a task), or the call is answered why not."""
        auth = self.keeper.now()
        up = self._pick()
        if auth is not WAIT and up is not None:
            go(auth, up)
            return
        task = asyncio.ensure_future(self._ready_later(link, go))
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    async def _ready_later(self, link: Link, go: Callable[[str | None, Upstream], None]) -> None:
        try:
            try:
                auth = await self.keeper.value()
            except NoToken as e:
                link.respond(16, f"crgrpc proxy: {e}")
                return
            try:
                up = await self._more()
            except CrgrpcError as e:
                link.respond(14, f"crgrpc proxy: {self.secrets.scrub(e.message)}")
                return
            go(auth, up)
        except Exception as e:  # a bug: the client gets INTERNAL, never a dropped connection
            link.respond(13, f"crgrpc proxy: {type(e).__name__}: {self.secrets.scrub(str(e))}")
        finally:
            flush_all()

    def _send(self, link: Link, headers: Headers, auth: str | None, up: Upstream) -> None:
        """The call's first attempt: its headers and what the client sent meanwhile."""
        if link.finished:
            return
        out, deadline, capped = self._request(link, headers, auth)
        link.request = headers  # kept for a retry
        link.connect(up, out)
        if capped and deadline is not None:
            loop = asyncio.get_running_loop()
            link.timer = loop.call_later(deadline, self._expire, link)

    def _request(self, link: Link, headers: Headers, auth: str | None) -> tuple[Headers, float | None, bool]:
        """The headers that go upstream for the client's, the deadline they carry
        (seconds left, None: none), and whether that is --timeout's, not the client's."""
        drop = self._drop if auth is None else self._drop_with_token
        path = b"/"
        sent: Headers = []
        timeout: float | None = None
        agent = self._user_agent
        for k, v in headers:
            if k in drop:
                if k == b":path":
                    path = v
                continue
            if k == b"grpc-timeout":
                timeout = parse_grpc_timeout(v)
                continue
            if k == b"user-agent":
                agent = self._user_agent + b" " + v
                continue
            sent.append((k, v))
        link.timeout = timeout
        out: Headers = [(b":method", b"POST"), (b":scheme", self._scheme), (b":path", path),
                        (b":authority", self._authority)]
        deadline, capped = self._deadline(link)
        if deadline is not None:  # what is left of it (a retry comes later)
            out.append((b"grpc-timeout", grpc_timeout(max(deadline, 0.001))))
        out.extend(sent)
        out.extend(self._user_headers)
        out.append((b"user-agent", agent))
        if auth is not None:
            out.append((self._token_header, auth.encode()))
        return out, deadline, capped

    def retry(self, link: Link, code: int, *, transparent: bool = False) -> bool:
        """Whether the call is tried again (its answer, code, is then not forwarded):
        --retries for the codes of --retry-on (UNAVAILABLE by default), with gRPC's
        policy's backoff, and once without --retries for a stream the upstream never
        saw (REFUSED_STREAM, GOAWAY), as gRPC's transparent retry. Only a call whose
        whole request is known (at most REPLAY_LIMIT bytes) and whose deadline is not
        past; never once the upstream answered."""
        if link.finished or link.answered or link.replay is None or link.down.recv_open or self._stopping:
            return False
        if transparent:
            if link.transparent:
                return False
            link.transparent = True
            delay = 0.0
        else:
            if link.attempts >= self._retries or code not in self._retry_codes:
                return False
            link.attempts += 1
            delay = random.uniform(0, min(RETRY_BACKOFF * 2 ** (link.attempts - 1), RETRY_BACKOFF_MAX))
        left, _ = self._deadline(link)
        if left is not None and left <= delay:
            return False
        link.up = None
        handle = asyncio.get_running_loop().call_later(delay, self._again, link)
        link.retrying = handle
        return True

    def _deadline(self, link: Link) -> tuple[float | None, bool]:
        """Seconds left of the call's deadline (None: none): the client's, capped by
        --timeout; and whether --timeout's is the one that holds. A client's deadline
        of years counts as none."""
        cap = self.settings.channel.timeout
        given = link.timeout if link.timeout is not None and link.timeout <= _LONGEST_DEADLINE else None
        capped = cap is not None and (given is None or cap < given)
        limit = cap if capped else given
        return (None if limit is None else limit - (time.monotonic() - link.start)), capped

    def _again(self, link: Link) -> None:
        link.retrying = None
        if not link.finished:
            self._when_ready(link, functools.partial(self._resend, link))
            flush_all()

    def _resend(self, link: Link, auth: str | None, up: Upstream) -> None:
        """A retry: the request again, as it was sent, on a new stream."""
        if link.finished or link.request is None:
            return
        out, _, _ = self._request(link, link.request, auth)
        link.replay_on(up, out)

    def _expire(self, link: Link) -> None:
        link.expire()
        flush_all()

    def finished(self, link: Link) -> None:
        self.in_flight -= 1
        self._links.discard(link)
        if self._idle is not None and not self._links:
            self._idle.set()
        code, message = link.code, link.message
        if code is None:
            code, message = self._cancelled(link)
        self.log(
            CallDone(
                at=link.at,
                method=link.method,
                code=code,
                status=_NAMES.get(code, "UNKNOWN"),
                message=self.secrets.scrub(message),
                duration_ms=(time.monotonic() - link.start) * 1000,
                requests=link.requests,
                responses=link.responses,
                peer=link.peer,
                metadata=_shown(link.sent) if self.verbose and link.sent is not None else None,
            )
        )

    def _cancelled(self, link: Link) -> tuple[int, str]:
        """What ended a call its client cancelled. A client cancels at its own deadline,
        which the proxy's copy of it (counted from when the call arrived) trails by the
        request's way here: a cancel within a tenth of the deadline (at most 0.25 s) of
        its end is the deadline's."""
        given = link.timeout
        if given is not None:
            left = given - (time.monotonic() - link.start)
            if left <= max(0.001, min(0.25, given / 10)):
                return 4, "the client's deadline passed"
        return 1, link.cancel_reason or "cancelled by the client"


def _bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of host, all on one port (UsageError)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as e:
        raise UsageError(f"cannot listen on {listen_address(host, port)}: {(e.strerror or str(e)).lower()}") from None
    socks: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            chosen = socks[0].getsockname()[1] if len(socks) > 1 else port
            sock.bind((addr[0], chosen, *addr[2:]))
            sock.listen(1024)
            sock.setblocking(False)
    except OSError as e:
        for sock in socks:
            sock.close()
        reason = (e.strerror or str(e)).lower()
        hint = "--port 0 picks a free port" if "in use" in reason else ""
        raise UsageError(f"cannot listen on {listen_address(host, port)}: {reason}", hint) from None
    return socks


def _wire_value(name: str, value: str | bytes) -> bytes:
    """A metadata value as HTTP/2 carries it: base64 (unpadded) for a -bin key."""
    if isinstance(value, bytes):
        return base64.b64encode(value).rstrip(b"=") if name.endswith("-bin") else value
    return value.encode()


def _unbase64(value: bytes) -> bytes:
    try:
        return base64.b64decode(value + b"=" * (-len(value) % 4))
    except ValueError:
        return value


def _shown(headers: Headers) -> Metadata:
    """The request headers that went upstream, as metadata, secret values redacted."""
    md: list[tuple[str, str | bytes]] = []
    for k, v in headers:
        if k.startswith(b":") or k in _GRPC_HEADERS:
            continue
        name = k.decode("latin-1")
        md.append((name, _unbase64(v) if name.endswith("-bin") else v.decode("latin-1")))
    return _redacted(md)


def _quiet(log: Log) -> Log:
    """log, where a closed or broken stderr never fails a call: the line is dropped."""

    def write(ev: ProxyEvent) -> None:
        with contextlib.suppress(OSError, ValueError):
            log(ev)

    return write


def _redacted(md: Sequence[tuple[str, str | bytes]]) -> Metadata:
    return tuple(
        (k, redact_header_value(v) if isinstance(v, str) and is_secret_header(k) else v) for k, v in md
    )


# --- the command's loop ---------------------------------------------------------------------


def serve(
    target: Target,
    settings: Settings,
    proxy: ProxySettings,
    plan: AuthPlan,
    log: Log,
    on_listening: Callable[[str], None],
) -> None:
    """Run the proxy until SIGINT or SIGTERM, then stop within the grace period.
    A second signal cancels the calls still running at once."""
    aioloop.run(_serve(target, settings, proxy, plan, log, on_listening))


async def _serve(
    target: Target,
    settings: Settings,
    proxy_settings: ProxySettings,
    plan: AuthPlan,
    log: Log,
    on_listening: Callable[[str], None],
) -> None:
    import signal as signals

    proxy = Proxy(target, settings, proxy_settings, plan, log)
    loop = asyncio.get_running_loop()
    received: list[str] = []
    stop = asyncio.Event()
    hurry: list[asyncio.Task[None]] = []

    def on_signal(sig: signals.Signals) -> None:
        received.append(sig.name)
        if len(received) == 1:
            stop.set()
        else:
            hurry.append(asyncio.ensure_future(proxy.stop(0, sig.name)))

    try:
        address = await proxy.start()
        for sig in (signals.SIGINT, signals.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig)
        on_listening(address)
        await stop.wait()
        await proxy.stop(proxy_settings.grace, received[0])
        for task in hurry:
            await task
    finally:
        for sig in (signals.SIGINT, signals.SIGTERM):
            loop.remove_signal_handler(sig)
        await proxy.close()
