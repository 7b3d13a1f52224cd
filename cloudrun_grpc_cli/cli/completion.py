"""Dynamic shell completion of METHOD, SERVICE and SYMBOL from the server.

Reads the schema cache first; on a miss, asks the server by reflection with
a short deadline, sending only a token already in the token cache (never
minting). Anything that goes wrong offers nothing, quickly and silently:
completion must never print an error into someone's prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONNECT_TIMEOUT = 1.0
REFLECTION_TIMEOUT = 1.5


def _names(ctx: Any, what: str) -> list[str]:
    """Services ("service") or methods ("method") of the TARGET already typed."""
    try:
        return _names_or_raise(ctx, what)
    except BaseException:
        return []


def _names_or_raise(ctx: Any, what: str) -> list[str]:
    from ..core.schema import read_cached_methods, read_cached_services
    from ..core.session import schema_cache_key
    from ..settings import ChannelSettings, Settings

    params = ctx.params
    target_text = params.get("target")
    if not target_text:
        return []
    target_text, table = _named_target(target_text, params)
    plaintext = bool(params.get("plaintext") or table.get("plaintext"))
    authority = params.get("authority") or table.get("authority")
    from ..core.target import parse_target

    target = parse_target(target_text, plaintext=plaintext)
    cacert = params.get("cacert") or table.get("cacert")
    settings = Settings(
        channel=ChannelSettings(
            plaintext=plaintext,
            authority=authority,
            cacert=Path(cacert) if cacert else None,
            insecure=bool(params.get("insecure") or table.get("insecure")),
        )
    )
    key = schema_cache_key(target, settings)
    cached = read_cached_services(key) if what == "service" else read_cached_methods(key)
    if cached:
        return cached
    return _ask_server(target, settings, key, what, params, table)


def _named_target(text: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Resolve a named target from the config file (any problem: offer nothing)."""
    from .config import load_config, named_target

    data, _ = load_config(params.get("config"))
    return named_target(data, text)


def _ask_server(
    target: Any, settings: Any, key: str, what: str, params: dict[str, Any], table: dict[str, Any]
) -> list[str]:
    from ..core.channel import Connection
    from ..core.schema import cached_reflection_source

    channel_settings = settings.channel._replace(connect_timeout=CONNECT_TIMEOUT)
    audience = params.get("audience") or table.get("audience") or target.default_audience(
        channel_settings.authority
    )
    from ..core.auth.cache import TokenCache

    token = TokenCache().find(audience) if audience and target.tls else None
    auth_md = [("authorization", f"Bearer {token}")] if token else []
    conn = Connection(target, channel_settings, lambda: auth_md)
    try:
        conn.wait_connected()
        source = cached_reflection_source(
            conn.channel,
            metadata=conn.metadata,
            timeout=REFLECTION_TIMEOUT,
            address=target.address,
            cache_key=key,
        )
        services = source.list_services()
        if what == "service":
            return services
        load = getattr(source, "load_services", None)
        if load is not None:
            load(services)
        out: list[str] = []
        for name in services:
            svc = source.find_service(name)
            out.extend(f"{svc.full_name}/{m.name}" for m in svc.methods)
        return out
    finally:
        conn.close()


def _filter(names: list[str], incomplete: str) -> list[str]:
    full = sorted(n for n in names if n.startswith(incomplete))
    if full:
        return full
    # A bare Method (or Service/Method) is accepted when unique: offer those too.
    short = sorted({n.rsplit("/", 1)[-1] if "/" in n else n.rsplit(".", 1)[-1] for n in names})
    return [n for n in short if n.startswith(incomplete)]


def complete_method(ctx: Any, incomplete: str) -> list[str]:
    return _filter(_names(ctx, "method"), incomplete)


def complete_service(ctx: Any, incomplete: str) -> list[str]:
    return _filter(_names(ctx, "service"), incomplete)


def complete_symbol(ctx: Any, incomplete: str) -> list[str]:
    services = _names(ctx, "service")
    methods = [m.replace("/", ".") for m in _names(ctx, "method")]
    return _filter(sorted(set(services) | set(methods)), incomplete)
