"""One CLI invocation's connection to a target: auth plan, channel, schema.

Order matters and is the contract: parse, plan auth and mint the token
(exit 3 before any connection), dial and wait for the connection (exit 4),
then ask for the schema (exit 5 / 64+N).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..settings import Settings
from .channel import Connection
from .target import Target

if TYPE_CHECKING:
    from .auth import AuthPlan, IdToken
    from .schema import SchemaSource


@dataclass
class Session:
    target: Target
    settings: Settings
    plan: AuthPlan
    conn: Connection
    _schema: SchemaSource | None = None

    @property
    def token(self) -> IdToken | None:
        return self.plan.current()

    def schema(self) -> SchemaSource:
        if self._schema is None:
            self._schema = open_schema(self)
        return self._schema

    def close(self) -> None:
        self.conn.close()


def schema_cache_key(target: Target, settings: Settings) -> str:
    parts = [target.address, "tls" if target.tls else "plain", settings.channel.authority or ""]
    return "|".join(parts)


def open_schema(session: Session) -> SchemaSource:
    from .schema import cached_reflection_source, proto_source, protoset_source

    s = session.settings.schema
    if s.protos:
        return proto_source(list(s.protos), list(s.import_paths))
    if s.protosets:
        return protoset_source(list(s.protosets))
    session.conn.wait_connected()
    return cached_reflection_source(
        session.conn.channel,
        metadata=session.conn.metadata,
        timeout=session.settings.channel.reflection_timeout,
        address=session.target.address,
        cache_key=schema_cache_key(session.target, session.settings),
        enabled=s.schema_cache,
    )


def open_session(target: Target, settings: Settings) -> Session:
    """Plan auth and mint (before dialing), then build the channel."""
    from .auth import plan_auth

    user_headers = [name for name, _ in settings.channel.headers]
    plan = plan_auth(target, settings.channel, settings.auth, user_headers=user_headers)
    plan.metadata()  # mint now: a credentials failure is exit 3, before any connection
    conn = Connection(target, settings.channel, plan.metadata)
    return Session(target=target, settings=settings, plan=plan, conn=conn)
