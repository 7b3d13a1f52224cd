"""Dynamic shell completion of METHOD, SERVICE and SYMBOL from the server.

Builds the same settings and session as the command being completed (its
-H headers, --serverless-auth, TLS options, named target), with two
differences: the session's token policy is "cached" (only a token already in
the token cache is sent; completion never mints), and the deadlines are
short. The schema cache is read first. Anything that goes wrong offers
nothing, quickly and silently: completion must never print into a prompt.
"""

from __future__ import annotations

from typing import Any

CONNECT_TIMEOUT = 1.0
REFLECTION_TIMEOUT = 1.5


def _names(ctx: Any, what: str) -> list[str]:
    """Services ("service"), methods ("method") or what `describe` takes ("symbol":
    services, methods, messages and enums) of the TARGET already typed."""
    try:
        return _names_or_raise(ctx, what)
    except BaseException:
        return []


def _settings(params: dict[str, Any]) -> tuple[Any, Any]:
    """The Target and Settings the command itself would use, with short deadlines."""
    from .build import build_settings, build_target
    from .config import apply_config
    from .console import current_env
    from .options import DEFAULTS, OPTION_NAMES, CommonOptions

    given = {
        name: _typed(name, params[name])
        for name in OPTION_NAMES
        if name in params and params[name] is not None and params[name] != DEFAULTS[name]
    }
    opts = CommonOptions(**{**DEFAULTS, **given}, origins={n: "flag" if n in given else "default" for n in OPTION_NAMES})
    opts, target_text = apply_config(opts, params["target"])
    settings = build_settings(opts, current_env(), allowed_modes=("pretty", "json", "full", "events"))
    channel = settings.channel._replace(
        connect_timeout=CONNECT_TIMEOUT, reflection_timeout=REFLECTION_TIMEOUT
    )
    return build_target(target_text or params["target"], opts), settings._replace(channel=channel)


def _typed(name: str, value: Any) -> Any:
    """Click hands completion some values unconverted: paths come as text."""
    from pathlib import Path

    from .options import ROWS

    row = ROWS[name]
    if row.is_number and isinstance(value, str):
        return row.parse(value)  # ValueError: offer nothing
    if row.kind is not Path:
        return value
    if isinstance(value, (list, tuple)):
        return [Path(v) for v in value]
    return Path(value)


def _names_or_raise(ctx: Any, what: str) -> list[str]:
    from ..core.schema import (
        describable_names,
        method_name,
        read_cached_methods,
        read_cached_services,
        read_cached_symbols,
    )
    from ..core.session import open_session, schema_cache_key

    params = ctx.params
    if not params.get("target"):
        return []
    target, settings = _settings(params)
    if target.run is not None:
        from ..core.cloudrun.resolve import resolve

        # Only from the resolution cache: completion never mints nor asks the Admin API.
        target, settings, resolution = resolve(target, settings, policy="cached")
        if resolution is None:
            return []
    key = schema_cache_key(target, settings)
    if settings.schema.schema_cache:
        if what == "service":
            cached = read_cached_services(key)
        elif what == "method":
            cached = read_cached_methods(key)
        else:
            cached = read_cached_symbols(key)
        if cached:
            return cached
    with open_session(target, settings, tokens="cached") as sess:
        source = sess.schema()
        services = source.list_services()
        if what == "service":
            return services
        load = getattr(source, "load_services", None)
        if load is not None:
            load(services)
        if what == "symbol":
            return describable_names(source)
        out: list[str] = []
        for name in services:
            out.extend(method_name(m) for m in source.find_service(name).methods)
        return out


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
    """describe's SYMBOL: services, methods (pkg.Service.Method), messages and enums."""
    return _filter(_names(ctx, "symbol"), incomplete)
