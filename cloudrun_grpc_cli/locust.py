"""Locust users for gRPC services behind Cloud Run's authentication.

`pip install 'crgrpc[locust]'`, then in a locustfile:

    from locust import task
    from cloudrun_grpc_cli.locust import GrpcUser

    class Echo(GrpcUser):
        host = "https://echo-abc-uc.a.run.app"   # or: locust --host
        options = {"key_file": "sa.json"}        # crgrpc's options, named as in its config file

        @task
        def hello(self) -> None:
            self.call("echo.EchoServer/SayHello", {"name": "x"})

A GrpcUser works through crgrpc's session: the TARGET forms and named
targets of the config file, the token rules and sources (minted once per
Locust process and refreshed in the background, never per request), the
schema (reflection through the cache, or `proto` / `protoset`), and JSON
request data checked as `crgrpc call -d` checks it. Every call fires Locust's
request event with request_type "grpc", the method's full name, its latency
and its failure (a `RpcStatusError` "NAME: message"), so Locust's statistics,
its CSV and JSON output and its distributed mode (`--master`, `--worker`)
work as for HTTP.

Importing this module imports Locust (which patches the standard library for
gevent) and turns on grpcio's gevent support before any channel exists.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import grpc
from locust import User  # Locust patches the standard library for gevent
from locust.exception import StopUser

from .errors import CrgrpcError, RpcStatusError


def _grpc_on_gevent() -> None:
    """grpcio's gevent support, before any channel exists (greenlets, not threads, wait)."""
    from grpc.experimental import gevent as grpc_gevent  # type: ignore[attr-defined]

    grpc_gevent.init_gevent()


_grpc_on_gevent()

__all__ = ["GrpcUser"]

REQUEST_TYPE = "grpc"
SESSION_NAME = "crgrpc session"  # the request name a failure to open the session is reported as


class _Method:
    """One resolved method: its path, kind, message classes and multicallable."""

    def __init__(self, channel: grpc.Channel, descriptor: Any) -> None:
        from google.protobuf.message_factory import GetMessageClass

        from .core.schema import method_kind, method_name

        self.name: str = method_name(descriptor)
        self.kind: str = method_kind(descriptor)
        self.request_cls: Any = GetMessageClass(descriptor.input_type)
        self.response_cls: Any = GetMessageClass(descriptor.output_type)
        path = "/" + self.name
        make = {
            "unary": channel.unary_unary,
            "server": channel.unary_stream,
            "client": channel.stream_unary,
            "bidi": channel.stream_stream,
        }[self.kind]
        self.multicallable: Any = make(path, request_serializer=None, response_deserializer=None)


class _Shared:
    """The session of one (host, options) in this process, shared by its users."""

    def __init__(self, host: str, options: Mapping[str, Any]) -> None:
        from .cli.options import default_options
        from .cli.runner import prepare
        from .core.load.tokens import TokenFeed
        from .core.session import open_session

        opts = default_options()._replace(**_checked(options), output="json")
        target, settings, _ = prepare(host, opts, allowed_modes=("json",))
        self.session = open_session(target, settings)
        self.session.conn.wait_connected()  # exit-4 failures now, at the users' start
        for line in self.session.plan.notices:
            logging.getLogger("crgrpc").warning("%s", line)
        self.timeout = settings.channel.timeout
        self.allow_unknown = False
        self.feed = TokenFeed(self.session.plan, settings.channel.headers).start()
        self.methods: dict[str, _Method] = {}
        self._lock = threading.Lock()

    def method(self, text: str) -> _Method:
        found = self.methods.get(text)
        if found is None:
            with self._lock:
                found = self.methods.get(text)
                if found is None:
                    found = _Method(self.session.conn.channel, self.session.resolve(text))
                    self.methods[text] = found
        return found


_SHARED: dict[tuple[str, tuple[tuple[str, str], ...]], _Shared] = {}
_SHARED_LOCK = threading.Lock()


def _checked(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options by their config-file names, with the CLI's types and ranges."""
    from .cli.options import OPTION_NAMES, ROWS

    out: dict[str, Any] = {}
    for name, value in options.items():
        if name not in OPTION_NAMES or name == "config":
            known = ", ".join(sorted(n for n in OPTION_NAMES if n != "config"))
            raise ValueError(f"GrpcUser.options: unknown option {name!r}; options: {known}")
        row = ROWS[name]
        if row.is_list:
            items = [value] if isinstance(value, (str, Path)) else list(value)
            out[name] = [Path(v) if row.kind is Path else str(v) for v in items]
        elif row.is_number and value is not None:
            out[name] = row.parse(value)
        elif row.kind is Path and value is not None:
            out[name] = Path(value)
        else:
            out[name] = value
    return out


def _shared(host: str, options: Mapping[str, Any]) -> _Shared:
    key = (host, tuple(sorted((k, repr(v)) for k, v in options.items())))
    with _SHARED_LOCK:
        found = _SHARED.get(key)
        if found is None:
            found = _Shared(host, options)
            _SHARED[key] = found
        return found


class GrpcUser(User):
    """A Locust user that calls gRPC methods through a crgrpc session.

    `host` is a crgrpc TARGET (https://SERVICE.run.app, host:port, a named
    target of the config file…); `options` are crgrpc's options by their
    config-file names (key_file, cacert, audience, timeout, header, retries,
    plaintext, no_token_cache…).
    """

    abstract = True
    options: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._crgrpc: _Shared | None = None

    def on_start(self) -> None:
        self._open()

    def _open(self) -> _Shared:
        if self._crgrpc is None:
            if not self.host:
                raise ValueError("GrpcUser: set host (a crgrpc TARGET) or pass --host")
            start = time.perf_counter()
            try:
                self._crgrpc = _shared(self.host, self.options)
            except CrgrpcError as e:
                self._fire(SESSION_NAME, start, 0, e)
                raise StopUser() from e
        return self._crgrpc

    def _fire(self, name: str, start: float, length: int, exc: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=name,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=length,
            exception=exc,
            context={},
        )

    def call(
        self,
        method: str,
        data: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        name: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call method with JSON data (one object; a list of them for a client or bidi
        stream). Returns the answer as JSON (a list of objects for server and bidi
        streams), or None when the call failed; either way the call is reported to
        Locust under `name` (default: the method's full name)."""
        from .core.codec import to_json, to_message

        shared = self._open()
        m = shared.method(method)
        given = [] if data is None else [data] if isinstance(data, Mapping) else list(data)
        if m.kind in ("unary", "server") and len(given) > 1:
            raise ValueError(f"{m.name} is a {m.kind} method: it takes one message")
        if m.kind in ("unary", "server") and not given:
            given = [{}]
        requests = [
            to_message(dict(d), m.request_cls, index=i + 1).SerializeToString()
            for i, d in enumerate(given)
        ]
        md = shared.feed.metadata
        deadline = timeout if timeout is not None else shared.timeout
        label = name or m.name
        start = time.perf_counter()
        length = 0
        try:
            if m.kind == "unary":
                answers = [m.multicallable(requests[0], metadata=md, timeout=deadline)]
            elif m.kind == "server":
                answers = list(m.multicallable(requests[0], metadata=md, timeout=deadline))
            elif m.kind == "client":
                answers = [m.multicallable(iter(requests), metadata=md, timeout=deadline)]
            else:
                answers = list(m.multicallable(iter(requests), metadata=md, timeout=deadline))
        except grpc.RpcError as e:
            self._fire(label, start, 0, _status_error(e))
            return None
        length = sum(len(a) for a in answers)
        self._fire(label, start, length, None)
        decoded = [to_json(m.response_cls.FromString(a)) for a in answers]
        return decoded if m.kind in ("server", "bidi") else decoded[0]


def _status_error(e: grpc.RpcError) -> RpcStatusError:
    from .core.rpcerrors import classify
    from .core.secrets import SECRETS

    code = e.code() if hasattr(e, "code") else None
    details = SECRETS.scrub(str(e.details() if hasattr(e, "details") else "") or "")
    num, name = classify(code, details)
    return RpcStatusError(num, name, details)
