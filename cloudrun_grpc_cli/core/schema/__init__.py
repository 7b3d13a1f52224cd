"""Schemas: where service and message definitions come from.

Server reflection (v1, falling back to v1alpha; tolerant of grpcio's and
grpc-node's quirks), FileDescriptorSet files, .proto files compiled with
grpcio-tools, and a short-lived per-target cache of what reflection found.
Every source is a SchemaSource over a protobuf DescriptorPool; message
classes come from message_factory.GetMessageClass on its descriptors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Submodules load on first use (PEP 562): a call answered from the schema cache
# never loads protoset/.proto handling or the proto-text renderer.
_WHERE = {
    "CachedReflectionSource": "cache",
    "read_cached_methods": "cache",
    "read_cached_services": "cache",
    "read_cached_symbols": "cache",
    "proto_source": "files",
    "protoset_source": "files",
    "write_protoset": "files",
    "to_proto_text": "prototext",
    "ReflectionSource": "reflection",
    "reflection_source": "reflection",
    "method_kind": "resolve",
    "method_name": "resolve",
    "resolve_method": "resolve",
    "resolve_service": "resolve",
    "resolve_symbol": "resolve",
    "symbol_kind": "resolve",
    "PoolSource": "source",
    "SchemaNotFound": "source",
    "SchemaSource": "source",
    "describable_names": "source",
    "Symbol": "source",
}

if TYPE_CHECKING:
    from .cache import (
        CachedReflectionSource,
        read_cached_methods,
        read_cached_services,
        read_cached_symbols,
    )
    from .files import proto_source, protoset_source, write_protoset
    from .prototext import to_proto_text
    from .reflection import ReflectionSource, reflection_source
    from .resolve import (
        method_kind,
        method_name,
        resolve_method,
        resolve_service,
        resolve_symbol,
        symbol_kind,
    )
    from .source import PoolSource, SchemaNotFound, SchemaSource, Symbol, describable_names


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CachedReflectionSource",
    "PoolSource",
    "ReflectionSource",
    "SchemaNotFound",
    "SchemaSource",
    "Symbol",
    "describable_names",
    "method_kind",
    "method_name",
    "proto_source",
    "protoset_source",
    "read_cached_methods",
    "read_cached_services",
    "read_cached_symbols",
    "reflection_source",
    "resolve_method",
    "resolve_service",
    "resolve_symbol",
    "symbol_kind",
    "to_proto_text",
    "write_protoset",
]
