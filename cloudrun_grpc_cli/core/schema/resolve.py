"""Resolve what a user typed to a method, and name the kinds of methods and symbols.

Owns the METHOD forms (README: METHOD): pkg.Service/Method, pkg.Service.Method,
and a bare Method or Service/Method (Service without its package) when unique;
ambiguity lists the candidates, an unknown name suggests the closest ones.
"""

from __future__ import annotations

from typing import Literal

from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    EnumValueDescriptor,
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

from ...errors import SchemaError
from .source import SchemaNotFound, SchemaSource, Symbol, did_you_mean, suggestions

MethodKind = Literal["unary", "server", "client", "bidi"]
SymbolKind = Literal["service", "method", "message", "enum", "field", "enum value"]


def method_kind(m: MethodDescriptor) -> MethodKind:
    if m.client_streaming and m.server_streaming:
        return "bidi"
    if m.client_streaming:
        return "client"
    if m.server_streaming:
        return "server"
    return "unary"


def symbol_kind(s: Symbol) -> SymbolKind:
    if isinstance(s, ServiceDescriptor):
        return "service"
    if isinstance(s, MethodDescriptor):
        return "method"
    if isinstance(s, Descriptor):
        return "message"
    if isinstance(s, EnumDescriptor):
        return "enum"
    if isinstance(s, FieldDescriptor):
        return "field"
    if isinstance(s, EnumValueDescriptor):
        return "enum value"
    raise TypeError(f"not a schema symbol: {s!r}")


def method_name(m: MethodDescriptor) -> str:
    """The canonical pkg.Service/Method form."""
    return f"{m.containing_service.full_name}/{m.name}"


def resolve_method(source: SchemaSource, text: str) -> MethodDescriptor:
    """The method text names; SchemaError when unknown or ambiguous.

    A source with a refetch() method (the schema cache) is asked to refetch
    once before an unknown name is reported.
    """
    was_cached = bool(getattr(source, "from_cache", False))
    try:
        return _resolve(source, text)
    except SchemaNotFound:
        refetch = getattr(source, "refetch", None)
        refreshed = bool(refetch()) if refetch is not None else False
        # The first attempt may itself have switched a stale cache to the server.
        if not refreshed and not (was_cached and not getattr(source, "from_cache", False)):
            raise
    return _resolve(source, text)


def _resolve(source: SchemaSource, text: str) -> MethodDescriptor:
    raw = text.strip()
    if raw.startswith("."):
        raw = raw[1:]
    if (
        not raw
        or raw.endswith(("/", "."))
        or raw.count("/") > 1
        or any(c.isspace() or not c.isprintable() for c in raw)
    ):
        raise SchemaError(
            f"not a method name: {text!r}",
            "write pkg.Service/Method, pkg.Service.Method, Service/Method or Method",
        )
    if "/" in raw and "." in raw.split("/")[0]:
        # pkg.Service/Method: ask for that service alone, no service listing (one
        # round trip less); a miss falls through to the listing and suggestions.
        svc_name, meth_name = raw.split("/")
        try:
            found = source.find_service(svc_name).methods_by_name.get(meth_name)
        except SchemaNotFound:
            found = None
        if found is not None:
            return found
    services = source.list_services()
    if "/" in raw:
        svc_part, meth = raw.split("/")
        exact_services = [svc_part] if svc_part in services else []
    else:
        svc_part, _, meth = raw.rpartition(".")
        exact_services = [svc_part] if svc_part in services else []
    # Fast path: a full service name needs only that service's descriptor.
    if exact_services:
        svc = source.find_service(exact_services[0])
        found = svc.methods_by_name.get(meth)
        if found is not None:
            return found
        names = [method_name(m) for m in svc.methods]
        raise _miss(
            f"method not found: {svc.full_name}/{meth}",
            did_you_mean(suggestions(f"{svc.full_name}/{meth}", names)),
        )
    _preload(source, services)
    methods: list[MethodDescriptor] = []
    for name in services:
        try:
            svc = source.find_service(name)
        except SchemaError:
            continue
        methods.extend(svc.methods)
    dotted = raw.replace("/", ".")
    matches = [
        m
        for m in methods
        if m.full_name == dotted
        or (
            m.full_name.endswith("." + dotted)
            and ("/" not in raw or m.containing_service.full_name.endswith("." + svc_part))
        )
    ]
    if "/" in raw:
        matches = [m for m in matches if m.name == meth]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = sorted(method_name(m) for m in matches)
        raise SchemaError(
            f"ambiguous method {text!r}: {len(names)} services have it",
            "write one of: " + ", ".join(names),
        )
    raise _miss(f"method not found: {raw}", did_you_mean(_closest(raw, methods)))


def _closest(raw: str, methods: list[MethodDescriptor]) -> list[str]:
    """Closest full names, compared in the same shape the user typed."""
    keys: dict[str, list[str]] = {}
    for m in methods:
        svc = m.containing_service
        if "/" in raw:
            shape = raw.split("/", maxsplit=1)[0]
            key = f"{svc.full_name if '.' in shape else svc.name}/{m.name}"
        elif "." in raw:
            key = m.full_name if raw.count(".") > 1 else f"{svc.name}.{m.name}"
        else:
            key = m.name
        keys.setdefault(key, []).append(method_name(m))
    out: list[str] = []
    for key in suggestions(raw, list(keys)):
        for full in keys[key]:
            if full not in out and len(out) < 3:
                out.append(full)
    return out


def _preload(source: SchemaSource, services: list[str]) -> None:
    load = getattr(source, "load_services", None)
    if load is not None:
        load(services)


def _miss(message: str, *hints: str) -> SchemaNotFound:
    return SchemaNotFound(message, *hints)


def resolve_service(source: SchemaSource, text: str) -> ServiceDescriptor:
    """The service named by text: a full name, or a unique short one (`EchoServer`)."""
    try:
        return source.find_service(text)
    except SchemaNotFound as miss:
        wanted = text.strip().lstrip(".")
        matches = [s for s in source.list_services() if s.endswith("." + wanted)]
        if len(matches) == 1:
            return source.find_service(matches[0])
        if len(matches) > 1:
            raise SchemaError(
                f"ambiguous service {text!r}: {len(matches)} services have that name",
                "write one of: " + ", ".join(sorted(matches)),
            ) from None
        raise miss from None


def resolve_symbol(source: SchemaSource, text: str) -> Symbol:
    """The symbol named by text: a full name, or a unique short one (`SayHello`,
    `EchoServer.SayHello`, `EchoRequest`), among every service's files."""
    from .source import all_symbol_names, lookup_symbol, normalize_symbol

    try:
        return source.find_symbol(text)
    except SchemaNotFound as miss:
        wanted = normalize_symbol(text)
        services = source.list_services()
        _preload(source, services)
        files = [f.name for f in source.file_descriptor_set().file]
        names = sorted(set(all_symbol_names(source.pool, files)))
        matches = [n for n in names if n == wanted or n.endswith("." + wanted)]
        if len(matches) == 1:
            found = lookup_symbol(source.pool, matches[0])
            if found is not None:
                return found
        if len(matches) > 1:
            raise SchemaError(
                f"ambiguous symbol {text!r}: {len(matches)} symbols have that name",
                "write one of: " + ", ".join(matches[:8]),
            ) from None
        raise miss from None
