"""One connection to a target, as every command uses it: auth plan, channel, schema.

`open_session` is the core's entry point for list, describe, call, completion
and the demo. Order matters and is the contract: parse, resolve a run://
target through the Cloud Run Admin API (or its cache; exit 2, 3 or 4), plan
auth and mint the token (exit 3 before any connection), dial and wait for
the connection (exit 4), then ask for the schema (exit 5 / 64+N). A failure inside
`with open_session(...)` carries the session (`err.session`), so core.hints
can explain it from what was really sent.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import CrgrpcError
from ..settings import Settings
from .channel import Connection
from .secrets import SECRETS, Secrets
from .target import Target

if TYPE_CHECKING:
    from google.protobuf.descriptor import MethodDescriptor

    from .auth import AuthPlan, IdToken
    from .auth.policy import TokenPolicy
    from .cloudrun.resolve import Resolution
    from .schema import SchemaSource

# How long closing waits for reflection streams that served to be ended by the
# server (one round trip; after a call they have long ended).
SETTLE_SECONDS = 1.0


class Session:
    """One target's connection, token plan and schema, shared by a command's RPCs.

    (A plain class: this module loads on every call, and a dataclass costs a
    start about a millisecond to define.)"""

    __slots__ = ("_schema", "conn", "plan", "resolution", "secrets", "settings", "target")

    def __init__(
        self,
        target: Target,
        settings: Settings,
        plan: AuthPlan,
        conn: Connection,
        secrets: Secrets = SECRETS,
        resolution: Resolution | None = None,  # how a run:// target was resolved
    ) -> None:
        self.target = target
        self.settings = settings
        self.plan = plan
        self.conn = conn
        self.secrets = secrets
        self.resolution = resolution
        self._schema: SchemaSource | None = None

    @property
    def token(self) -> IdToken | None:
        """The token the last RPC carried (None when none was sent)."""
        return self.plan.current()

    @property
    def sent_metadata(self) -> list[tuple[str, str | bytes]]:
        """The metadata the last RPC (reflection's or the call's) was sent with."""
        return self.conn.last_metadata

    def schema(self, *, fresh: bool = False) -> SchemaSource:
        """The schema source; `fresh` asks the server even when the schema cache has
        an answer (list and describe show the server's present answer, and store it)."""
        if self._schema is None:
            source = open_schema(self, fresh=fresh)
            retries = self.settings.channel.retries
            self._schema = _Retrying(source, retries) if retries > 0 else source
        return self._schema

    def resolve(self, method_text: str) -> MethodDescriptor:
        """The method named by text (pkg.Service/Method, Service/Method, Method…)."""
        from .schema import resolve_method

        self.conn.wait_connected()
        return resolve_method(self.schema(), method_text)

    def close(self) -> None:
        if self._schema is not None:
            self._schema.settle(SETTLE_SECONDS)
        self.conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                out = self.settings.schema.protoset_out
                if out is not None and self._schema is not None:
                    from .schema import write_protoset

                    write_protoset(self._schema, out)
            elif isinstance(exc, CrgrpcError) and exc.session is None:
                exc.session = self
        finally:
            self.close()


class _Retrying:
    """A schema source whose requests are sent again after a front end's HTTP
    answer (503 while a service starts), which gRPC's retry policy cannot retry.
    Every other attribute is the source's own."""

    def __init__(self, source: SchemaSource, retries: int) -> None:
        self._source = source
        self._retries = retries

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._source, name)
        if name not in _RETRIED or not callable(value):
            return value

        def retrying(*args: Any, **kwargs: Any) -> Any:
            from ..errors import RpcStatusError
            from .rpcerrors import is_front_end_answer, retry_backoff

            for attempt in range(self._retries + 1):
                try:
                    return value(*args, **kwargs)
                except RpcStatusError as err:
                    if attempt == self._retries or not (
                        err.name == "UNAVAILABLE" and is_front_end_answer(err.details)
                    ):
                        raise
                    time.sleep(retry_backoff(attempt + 1))
            raise AssertionError("unreachable")

        return retrying


_RETRIED = frozenset(
    {"list_services", "find_service", "find_symbol", "load_services", "file_descriptor_set"}
)


def schema_cache_key(target: Target, settings: Settings) -> str:
    parts = [target.address, "tls" if target.tls else "plain", settings.channel.authority or ""]
    return "|".join(parts)


def open_schema(session: Session, *, fresh: bool = False) -> SchemaSource:
    s = session.settings.schema
    if s.protos:
        from .schema import proto_source

        return proto_source(list(s.protos), list(s.import_paths))
    if s.protosets:
        from .schema import protoset_source

        return protoset_source(list(s.protosets))
    from .schema import CachedReflectionSource  # protoc's and protosets' modules stay unloaded

    session.conn.wait_connected()
    return CachedReflectionSource(
        session.conn.channel,
        metadata=session.conn.metadata,
        timeout=session.settings.channel.reflection_timeout,
        address=session.target.address,
        cache_key=schema_cache_key(session.target, session.settings),
        enabled=s.schema_cache,
        **({"ttl": -1.0} if fresh else {}),  # no entry is that fresh: ask the server
        cache_dir=session.settings.cache_dir,
    )


def open_session(
    target: Target, settings: Settings, *, tokens: TokenPolicy = "mint"
) -> Session:
    """Resolve a run:// target, plan auth and mint (before dialing), then build the channel.

    tokens="cached" sends only a token already cached and never mints
    (completion); a credentials problem then sends no token instead of failing,
    and a run:// target is resolved only from the resolution cache.
    """
    target, settings, resolution, plan = plan_tokens(target, settings, tokens=tokens)
    conn = Connection(target, settings.channel, plan.metadata)
    return Session(
        target=target, settings=settings, plan=plan, conn=conn, resolution=resolution
    )


def plan_tokens(
    target: Target, settings: Settings, *, tokens: TokenPolicy = "mint"
) -> tuple[Target, Settings, Any, AuthPlan]:
    """A run:// target resolved, and the auth plan for it with its first token minted
    (a credentials failure is exit 3, before any connection): the target and
    settings to dial, the resolution (None unless run://) and the plan. Shared by
    sessions and the proxy."""
    from .auth import plan_auth

    resolution = None
    if target.run is not None:
        from .cloudrun.resolve import resolve

        target, settings, resolution = resolve(target, settings, policy=tokens)

    user_headers = [name for name, _ in settings.channel.headers]
    plan = plan_auth(
        target,
        settings.channel,
        settings.auth,
        user_headers=user_headers,
        policy=tokens,
        cache_dir=settings.cache_dir,
    )
    plan.metadata()  # mint now: a credentials failure is exit 3, before any connection
    return target, settings, resolution, plan
