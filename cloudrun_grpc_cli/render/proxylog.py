"""The log of `crgrpc proxy` on stderr: one line per call, and the proxy's own events.

Pretty (a terminal): a time, the status, the method, the duration and the
messages each way (↑ client → service, ↓ service → client), coloured when
colour is on; -v adds the metadata sent upstream, redacted, on indented lines.
JSON Lines (-o json): one object per line with an `event` field. Plain writes,
no Rich: a line costs microseconds in the proxy's event loop. Text from
clients and servers goes through `visible` on a terminal; tokens never reach
either form (the core redacts the metadata and scrubs status messages).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import IO, Any

from ..core.codec import dumps
from ..core.proxy import (
    CallDone,
    Listening,
    Notice,
    ProxyEvent,
    Stopped,
    Stopping,
    TokenFailed,
    TokenReady,
)
from .env import Environment
from .redact import redact_metadata
from .safetext import visible

ProxyLog = Callable[[ProxyEvent], None]


def make_proxy_log(mode: str, env: Environment, *, verbose: bool) -> ProxyLog:
    """The log writer of -o pretty or -o json, on env.stderr."""
    if mode == "json":
        return JsonProxyLog(env.stderr, verbose=verbose)
    return PrettyProxyLog(env.stderr, color=env.use_color(env.stderr_isatty), verbose=verbose)


def _iso(ts: float) -> str:
    """2026-01-02T03:04:05.678Z"""
    t = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _ms(value: float) -> float:
    return round(value, 3)


def event_json(ev: ProxyEvent, *, now: float | None = None) -> dict[str, Any]:
    """The JSON object of one log event."""
    at = ev.at if isinstance(ev, CallDone) else (time.time() if now is None else now)
    out: dict[str, Any] = {"time": _iso(at)}
    if isinstance(ev, CallDone):
        out.update(
            event="call",
            method=ev.method,
            code=ev.code,
            status=ev.status,
            message=ev.message,
            duration_ms=_ms(ev.duration_ms),
            requests=ev.requests,
            responses=ev.responses,
            peer=ev.peer,
        )
        if ev.metadata is not None:
            out["metadata"] = redact_metadata(ev.metadata)
    elif isinstance(ev, Listening):
        out.update(
            event="listening",
            address=ev.address,
            target=ev.target,
            tls=ev.tls,
            token_header=ev.header,
        )
        if ev.withheld:
            out["no_token"] = ev.withheld
    elif isinstance(ev, TokenReady):
        out.update(
            event="token",
            refreshed=ev.refreshed,
            source=ev.source,
            audience=ev.audience,
            email=ev.email,
            expires=_iso(ev.expires) if ev.expires is not None else None,
        )
    elif isinstance(ev, TokenFailed):
        out.update(event="token_error", message=ev.message, expired=ev.expired, retry_in_s=ev.retry_in)
    elif isinstance(ev, Notice):
        out.update(event=ev.level, message=ev.message)
    elif isinstance(ev, Stopping):
        out.update(event="stopping", signal=ev.signal or None, in_flight=ev.in_flight, grace_s=ev.grace)
    elif isinstance(ev, Stopped):
        out.update(event="stopped", cancelled=ev.cancelled)
    return out


class JsonProxyLog:
    def __init__(self, out: IO[str], *, verbose: bool) -> None:
        self.out = out
        self.verbose = verbose

    def __call__(self, ev: ProxyEvent) -> None:
        self.out.write(dumps(event_json(ev)) + "\n")
        self.out.flush()


_GREEN, _RED, _YELLOW, _CYAN, _DIM, _BOLD = "32", "31", "33", "36", "2", "1"
# Statuses a client asked for or caused: yellow, not red.
_CLIENT_SIDE = frozenset({"CANCELLED", "DEADLINE_EXCEEDED"})


def duration(ms: float) -> str:
    if ms < 1000:
        return f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(int(ms / 1000), 60)
    return f"{minutes}m {seconds:02d}s"


def _clock(ts: float) -> str:
    t = dt.datetime.fromtimestamp(ts)
    return t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"


def _until(exp: int) -> str:
    from ..core.auth.jwt import humanize_delta

    left = exp - time.time()
    when = dt.datetime.fromtimestamp(exp).strftime("%H:%M:%S")
    return f"valid until {when} ({'for ' + humanize_delta(left) if left > 0 else 'expired'})"


class PrettyProxyLog:
    def __init__(self, out: IO[str], *, color: bool, verbose: bool) -> None:
        self.out = out
        self.color = color
        self.verbose = verbose

    def _c(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _line(self, at: float, tag: str, code: str, text: str) -> str:
        return f"{self._c(_clock(at), _DIM)}  {self._c(f'{tag:<17}', code)} {text}"

    def __call__(self, ev: ProxyEvent) -> None:
        self.out.write(self.render(ev) + "\n")
        self.out.flush()

    def render(self, ev: ProxyEvent, *, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if isinstance(ev, CallDone):
            return self._call(ev)
        if isinstance(ev, Listening):
            tls = "TLS" if ev.tls else "plaintext"
            token = f"token in {ev.header}" if ev.header else f"no token: {ev.withheld}"
            text = (
                f"{ev.address} → {visible(ev.target)} ({tls}), {visible(token)}\n"
                f"{' ' * 14}point a tool at it: grpcurl -plaintext {ev.address} list"
            )
            return self._line(now, "proxy", _BOLD, text)
        if isinstance(ev, TokenReady):
            who = f" as {visible(ev.email)}" if ev.email else ""
            what = "refreshed" if ev.refreshed else f"from {visible(ev.source)}"
            until = f", {_until(ev.expires)}" if ev.expires is not None else ""
            return self._line(now, "token", _CYAN, f"for {visible(ev.audience or '')}{who} {what}{until}")
        if isinstance(ev, TokenFailed):
            if ev.retry_in is not None:
                tail = f"; trying again in {ev.retry_in:g}s"
            else:
                tail = ""
            state = "calls are answered UNAUTHENTICATED: " if ev.expired else ""
            return self._line(now, "token", _RED, f"{state}{visible(ev.message)}{tail}")
        if isinstance(ev, Notice):
            return self._line(now, ev.level, _YELLOW if ev.level == "warning" else _CYAN, visible(ev.message))
        if isinstance(ev, Stopping):
            calls = f"{ev.in_flight} call{'s' if ev.in_flight != 1 else ''} in flight"
            why = f"{ev.signal}: " if ev.signal else ""
            wait = f", waiting up to {ev.grace:g}s" if ev.in_flight else ""
            return self._line(now, "stopping", _BOLD, f"{why}{calls}{wait}")
        if isinstance(ev, Stopped):
            cut = f" ({ev.cancelled} call{'s' if ev.cancelled != 1 else ''} cancelled)" if ev.cancelled else ""
            return self._line(now, "stopped", _BOLD, f"no longer listening{cut}")
        return self._line(now, "?", _DIM, repr(ev))

    def _call(self, ev: CallDone) -> str:
        code = _GREEN if ev.code == 0 else _YELLOW if ev.status in _CLIENT_SIDE else _RED
        text = f"{visible(ev.method)}  {duration(ev.duration_ms)}  ↑{ev.requests} ↓{ev.responses}"
        if ev.message:
            text += f"  {visible(ev.message)}"
        line = self._line(ev.at, ev.status, code, text)
        if ev.metadata:
            shown = redact_metadata(ev.metadata)
            for key in sorted(shown):
                value = shown[key]
                for v in value if isinstance(value, list) else [value]:
                    line += "\n" + " " * 14 + self._c(visible(f"{key}: {v}"), _DIM)
        return line


__all__ = ["JsonProxyLog", "PrettyProxyLog", "event_json", "make_proxy_log"]
