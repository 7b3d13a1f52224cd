"""`crgrpc proxy`: a local plaintext (h2c) gRPC server that forwards every call,
as raw bytes, to one target with crgrpc's token.

One asyncio event loop (grpc.aio, server and channels) holds every call: no
thread per stream, so hundreds of streams cost memory, not threads. Each call
is one generic stream-stream handler whatever its kind (the wire is the same):
no schema is needed and reflection passes through like any other method.

Per call: the client's metadata goes upstream (its `user-agent` excepted: gRPC
sets that per connection), with the token header replaced and the -H headers
added; its deadline (capped by --timeout) becomes the upstream deadline; one
message at a time is read from one side and written to the other, and a write
waits for HTTP/2 flow control, so a slow reader slows the writer at the far
end and nothing is buffered without bound. Response headers, trailers (with
`grpc-status-details-bin`), status code and message come back unchanged.
A cancelled client cancels the upstream call; a cancelled upstream call is
answered CANCELLED.

Tokens (`TokenKeeper`): the plan's first token is minted before the server
starts (exit 3 on failure); a background task refreshes it at its refresh
margin before `exp` (auth/token.refresh_margin), so calls never wait for a
mint while a token is valid, and all calls share one token. When minting
fails the old token serves until it expires; after that, calls are answered
UNAUTHENTICATED with the reason, and the log says it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import grpc
from grpc import aio

from ..errors import CrgrpcError, UsageError
from ..settings import ProxySettings, Settings
from . import aioloop, grpcadapter
from .auth.policy import AuthPlan
from .auth.token import IdToken, StaticProvider, refresh_margin
from .channel import dial_parts, wrong_protocol
from .rpcerrors import connect_error, status_of
from .secrets import SECRETS, Secrets, bearer, is_secret_header, redact_header_value
from .target import Target, is_loopback_host

Metadata = tuple[tuple[str, "str | bytes"], ...]

# Google's front ends allow 100 concurrent streams on one HTTP/2 connection: the
# proxy opens one more upstream connection for every 100 calls in flight.
STREAMS_PER_CONNECTION = 100
RETRY_MIN, RETRY_MAX = 1.0, 30.0  # seconds between minting attempts after a failure
_SLICE = 30.0  # the refresher re-reads the wall clock at least this often (suspend, resume)
_LONGEST_DEADLINE = 99_999_999.0  # seconds: what --timeout allows, far inside grpcio's range
_MAX_HANDLERS = 1000  # method handlers kept (a client may name any method)

# Headers gRPC owns on each hop: never copied from one side to the other.
_HOP_HEADERS = frozenset(
    {"content-type", "te", "user-agent", "grpc-encoding", "grpc-accept-encoding",
     "grpc-timeout", "grpc-status", "grpc-message"}
)
STATUS_DETAILS_KEY = "grpc-status-details-bin"
EOF: Any = aio.EOF  # type: ignore[attr-defined]  # (grpc-stubs predates it)

if TYPE_CHECKING:  # generic in grpc-stubs only
    _GenericHandler = grpc.GenericRpcHandler[Any, Any]
else:
    _GenericHandler = grpc.GenericRpcHandler


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


def _bind_failure(host: str, port: int) -> str:
    """Why host:port cannot be bound, in the system's words (asked after gRPC failed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, addr in infos:
            with socket.socket(family, kind, proto) as s:
                s.bind(addr)
    except OSError as e:
        return (e.strerror or str(e)).lower()
    return "gRPC could not bind it"


# --- tokens ----------------------------------------------------------------------------------


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

    async def value(self) -> str | None:
        """The auth header's value for a call (None: no token is sent). Never waits
        while the token is valid; without one, waits for one shared attempt, at
        most one a second, then raises NoToken."""
        if self.provider is None:
            return None
        token = self._token
        if token is not None and self.usable(token):
            return self._value
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


# --- upstream connections --------------------------------------------------------------------


class ChannelPool:
    """grpc.aio channels to the target, each its own connection; a call takes the
    least busy one, and a new one opens when every one carries STREAMS_PER_CONNECTION."""

    def __init__(self, make: Callable[[], aio.Channel], per_channel: int = STREAMS_PER_CONNECTION) -> None:
        self._make = make
        self.per_channel = per_channel
        self.channels: list[aio.Channel] = [make()]
        self.busy: list[int] = [0]
        self._callables: list[dict[str, Any]] = [{}]  # per channel: method -> stream-stream callable

    def acquire(self) -> int:
        i = min(range(len(self.busy)), key=self.busy.__getitem__)
        if self.busy[i] >= self.per_channel:
            self.channels.append(self._make())
            self.busy.append(0)
            self._callables.append({})
            i = len(self.channels) - 1
        self.busy[i] += 1
        return i

    def callable(self, i: int, method: str) -> Any:
        """Channel i's raw-bytes stream-stream callable for method (kept: a client
        may name any method, so at most _MAX_HANDLERS are)."""
        known = self._callables[i]
        c = known.get(method)
        if c is None:
            c = self.channels[i].stream_stream(method, None, None)
            if len(known) < _MAX_HANDLERS:
                known[method] = c
        return c

    def release(self, i: int) -> None:
        self.busy[i] -= 1

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close(None)


def upstream_channel_parts(target: Target, settings: Settings) -> tuple[list[tuple[str, Any]], grpc.ChannelCredentials | None]:
    """dial_parts for the proxy: messages of any size unless --max-msg-size, each
    channel its own connection."""
    creds, opts = dial_parts(target, settings.channel)
    size = settings.channel.max_msg_size or -1
    sized = ("grpc.max_receive_message_length", "grpc.max_send_message_length")
    opts = [(k, v) for k, v in opts if k not in sized]
    opts += [(sized[0], size), (sized[1], size), ("grpc.use_local_subchannel_pool", 1)]
    return opts, creds


# --- the proxy ----------------------------------------------------------------------------------


def _response_metadata(md: Sequence[tuple[str, str | bytes]] | None, *, trailers: bool) -> Metadata:
    return tuple(
        (k, v)
        for k, v in md or ()
        if not k.startswith(":")
        and k not in _HOP_HEADERS
        and (trailers or k != STATUS_DETAILS_KEY)
    )


class Proxy:
    """The server and its upstream channels; `start`, then `stop` (tests drive it too)."""

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
        self._server: aio.Server | None = None
        self._pool: ChannelPool | None = None
        self._handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        user = tuple(settings.channel.headers)
        self._user_headers = user
        names = {name for name, _ in user} | {"user-agent"}
        self._drop = frozenset(names)
        self._drop_with_token = frozenset(names | {plan.header})

    # --- lifecycle ---

    async def start(self) -> str:
        """Bind (UsageError), connect upstream (ConnectError), serve; host:port."""
        opts, creds = upstream_channel_parts(self.target, self.settings)
        upstream = self.target.address

        def make() -> aio.Channel:
            if creds is None:
                return aio.insecure_channel(upstream, options=opts)
            return aio.secure_channel(upstream, creds, options=opts)

        size = self.settings.channel.max_msg_size or -1
        server = aio.server(
            options=[
                ("grpc.so_reuseport", 0),  # a second proxy on the port fails, never shares it
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
            ]
        )
        server.add_generic_rpc_handlers((_Forward(self),))
        host, port = self.proxy.bind, self.proxy.port
        try:
            bound = server.add_insecure_port(listen_address(host, port))
        except RuntimeError:
            bound = 0
        if not bound:
            reason = _bind_failure(host, port)
            hint = "--port 0 picks a free port" if "in use" in reason else ""
            raise UsageError(f"cannot listen on {listen_address(host, port)}: {reason}", hint)
        self.port = bound
        self._pool = ChannelPool(make)
        await self._connect(self._pool.channels[0])
        self._server = server
        await server.start()
        address = listen_address(host, bound)
        plan = self.plan
        self.log(Listening(
            address, self.target.address, self.target.tls,
            plan.header if plan.provider is not None else None, plan.withheld_text,
        ))
        self.keeper.start()
        return address

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
        if self._server is None:
            return
        if not self._stopping:
            self._stopping = True
            self.log(Stopping(signal, self.in_flight, grace))
        await self._server.stop(grace)

    async def close(self) -> None:
        """After stop: the token task and the upstream channels."""
        await self.keeper.close()
        if self._pool is not None:
            await self._pool.close()
        if self._server is not None:
            self.log(Stopped(self.cancelled_at_stop))

    # --- one call ---

    def handler(self, method: str) -> grpc.RpcMethodHandler[Any, Any]:
        h = self._handlers.get(method)
        if h is None:
            h = grpc.stream_stream_rpc_method_handler(functools.partial(self._forward, method))
            if len(self._handlers) < _MAX_HANDLERS:
                self._handlers[method] = h
        return h

    def _metadata(self, received: Sequence[tuple[str, str | bytes]], auth: str | None) -> list[tuple[str, str | bytes]]:
        drop = self._drop if auth is None else self._drop_with_token
        md: list[tuple[str, str | bytes]] = [(k, v) for k, v in received if k not in drop]
        md.extend(self._user_headers)
        if auth is not None:
            md.append((self.keeper.header, auth))
        return md

    def _timeout(self, remaining: float | None) -> float | None:
        """The upstream deadline: the client's, capped by --timeout. A client's deadline
        beyond what grpcio can carry (years; its absolute deadline would overflow into
        an immediate DEADLINE_EXCEEDED) counts as none."""
        cap = self.settings.channel.timeout
        if remaining is not None and remaining > _LONGEST_DEADLINE:
            remaining = None
        if remaining is None:
            return cap
        return remaining if cap is None else min(remaining, cap)

    async def _forward(self, method: str, _requests: Any, context: aio.ServicerContext[Any, Any]) -> None:
        at, start = time.time(), time.monotonic()
        counts = [0, 0]  # requests, responses
        code, name, message = 0, "OK", ""
        sent: list[tuple[str, str | bytes]] | None = None
        call: Any = None
        pump: asyncio.Future[None] | None = None
        slot = -1
        given = context.time_remaining()  # the client's deadline as it arrived (None: none)
        pool = self._pool
        assert pool is not None
        self.in_flight += 1
        try:
            try:
                auth = await self.keeper.value()
            except NoToken as e:
                code, name, message = 16, "UNAUTHENTICATED", f"crgrpc proxy: {e}"
                context.set_code(grpc.StatusCode.UNAUTHENTICATED)
                context.set_details(message)
                return
            received: Any = context.invocation_metadata() or ()
            sent = self._metadata(received, auth)
            slot = pool.acquire()
            call = pool.callable(slot, method)(
                None, metadata=sent, timeout=self._timeout(given)
            )
            pump = asyncio.ensure_future(self._pump(context, call, counts))
            headers = _response_metadata(await call.initial_metadata(), trailers=False)
            if headers:
                await context.send_initial_metadata(headers)
            try:
                while (msg := await call.read()) is not EOF:
                    counts[1] += 1  # handed on (a cancel may land while the write completes)
                    await context.write(msg)
            except aio.AioRpcError:
                pass  # the status below says why
            status = await call.code()
            code, name = status_of(status)
            message = await call.details() or ""
            context.set_trailing_metadata(_response_metadata(await call.trailing_metadata(), trailers=True))
            context.set_code(status)
            context.set_details(message)
        except asyncio.CancelledError:
            if call is not None:
                call.cancel()
            code, name, message = self._cancelled(context, given)
            raise
        except Exception as e:  # never a dropped connection: the client gets INTERNAL
            if call is not None:
                call.cancel()
            code, name = 13, "INTERNAL"
            message = f"crgrpc proxy: {type(e).__name__}: {e}"
            context.set_code(grpc.StatusCode.INTERNAL)
            context.set_details(message)
        finally:
            if pump is not None and not pump.done():
                pump.cancel()
            if slot >= 0:
                pool.release(slot)
            self.in_flight -= 1
            self.log(
                CallDone(
                    at=at,
                    method=method.lstrip("/"),
                    code=code,
                    status=name,
                    message=self.secrets.scrub(message),
                    duration_ms=(time.monotonic() - start) * 1000,
                    requests=counts[0],
                    responses=counts[1],
                    peer=context.peer() or "",
                    metadata=_redacted(sent) if self.verbose and sent is not None else None,
                )
            )

    async def _pump(self, context: aio.ServicerContext[Any, Any], call: Any, counts: list[int]) -> None:
        """Client → upstream, one message at a time (each write waits for flow control)."""
        try:
            while (msg := await context.read()) is not EOF:
                counts[0] += 1
                if not await grpcadapter.write_raw(call, msg):
                    return  # the call ended: its status goes to the client
            await call.done_writing()
        except asyncio.CancelledError:
            raise
        except Exception:
            pass  # the call ended (its status tells the client) or the client went away

    def _cancelled(self, context: aio.ServicerContext[Any, Any], given: float | None) -> tuple[int, str, str]:
        """What ended a call the proxy saw cancelled. A client cancels at its own deadline,
        which the proxy's copy of it (counted from when the call arrived) trails by the
        request's way here: a cancel within a tenth of the deadline (at most 0.25 s) of
        its end is the deadline's."""
        if self._stopping:
            self.cancelled_at_stop += 1
            return 1, "CANCELLED", f"the proxy stopped: --grace {self.proxy.grace:g}s ran out"
        left = context.time_remaining()
        slack = 0.001 if given is None else max(0.001, min(0.25, given / 10))
        if left is not None and left <= slack:
            return 4, "DEADLINE_EXCEEDED", "the client's deadline passed"
        return 1, "CANCELLED", "cancelled by the client"


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


class _Forward(_GenericHandler):
    """Every method, whatever its service: one stream-stream handler of raw bytes."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method
        if isinstance(method, bytes):
            method = method.decode("utf-8", "replace")
        return self._proxy.handler(method)


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
