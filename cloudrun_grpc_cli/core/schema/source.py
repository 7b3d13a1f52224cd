"""The SchemaSource protocol, the Symbol type, and lookups in a DescriptorPool.

Owns what every schema source shares: finding a service or any symbol by
name in a pool, "did you mean" suggestions, and PoolSource, the source over
a fixed set of files (protoset and .proto sources, the schema cache).
"""

from __future__ import annotations

import difflib
from typing import Protocol, Union, runtime_checkable

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    EnumValueDescriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.descriptor_pool import DescriptorPool

from ...errors import SchemaError
from .assemble import Assembler

Symbol = Union[  # noqa: UP007 - a runtime alias usable on Python 3.10
    ServiceDescriptor,
    MethodDescriptor,
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    EnumValueDescriptor,
]


@runtime_checkable
class SchemaSource(Protocol):
    """Where service and message definitions come from."""

    def list_services(self) -> list[str]:
        """Full names of the services, sorted."""
        ...

    def find_service(self, name: str) -> ServiceDescriptor:
        """The service of that full name; SchemaError if unknown."""
        ...

    def find_symbol(self, name: str) -> Symbol:
        """Service, method (pkg.Svc.Method or pkg.Svc/Method), message, enum, field or enum value."""
        ...

    def file_descriptor_set(self) -> descriptor_pb2.FileDescriptorSet:
        """Every file loaded so far with all its dependencies."""
        ...

    def settle(self, timeout: float) -> None:
        """Before the channel closes: let what the source still has open on it end
        well, for up to timeout (reflection's half-closed streams)."""
        ...

    @property
    def pool(self) -> DescriptorPool: ...


# -- source text of files (comments) -------------------------------------------------

# id(pool) -> (pool, files by name). Holding the pool keeps its id unique; pools
# are few and live as long as the process that uses them.
_FILES: dict[int, tuple[DescriptorPool, dict[str, descriptor_pb2.FileDescriptorProto]]] = {}


def register_files(
    pool: DescriptorPool, files: dict[str, descriptor_pb2.FileDescriptorProto]
) -> None:
    """Remember the FileDescriptorProtos behind pool (the pool drops source_code_info)."""
    _FILES[id(pool)] = (pool, files)


def file_proto(file: FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of file, with source_code_info when it had any."""
    entry = _FILES.get(id(file.pool))
    if entry is not None and entry[0] is file.pool and file.name in entry[1]:
        return entry[1][file.name]
    return descriptor_pb2.FileDescriptorProto.FromString(file.serialized_pb)


# -- lookups ----------------------------------------------------------------------


def normalize_symbol(name: str) -> str:
    """'pkg.Svc/Method' -> 'pkg.Svc.Method'; strips a leading dot and spaces."""
    name = name.strip()
    if name.startswith("."):
        name = name[1:]
    return name.replace("/", ".")


def lookup_service(pool: DescriptorPool, name: str) -> ServiceDescriptor | None:
    try:
        return pool.FindServiceByName(normalize_symbol(name))
    except KeyError:
        return None


def lookup_symbol(pool: DescriptorPool, name: str) -> Symbol | None:
    """Any symbol of that full name in pool, or None."""
    name = normalize_symbol(name)
    if not name:
        return None
    finders = (pool.FindServiceByName, pool.FindMessageTypeByName, pool.FindEnumTypeByName)
    for finder in finders:
        try:
            found: Symbol = finder(name)
        except KeyError:
            continue
        return found
    parent, _, child = name.rpartition(".")
    if not parent:
        return None
    try:
        svc = pool.FindServiceByName(parent)
    except KeyError:
        pass
    else:
        return svc.methods_by_name.get(child)
    try:
        msg = pool.FindMessageTypeByName(parent)
    except KeyError:
        pass
    else:
        if child in msg.fields_by_name:
            return msg.fields_by_name[child]
        ext = msg.extensions_by_name.get(child)
        if ext is not None:
            return ext
        # enum values are scoped beside their enum: pkg.Msg.VALUE
        for enum in msg.enum_types:
            if child in enum.values_by_name:
                return enum.values_by_name[child]
        return None
    try:
        enum_desc = pool.FindEnumTypeByName(parent)
    except KeyError:
        pass
    else:
        return enum_desc.values_by_name.get(child)
    try:
        return pool.FindExtensionByName(name)
    except KeyError:
        pass
    # A top-level enum value: pkg.VALUE lives in the package scope.
    try:
        file = pool.FindFileContainingSymbol(name)
    except KeyError:
        return None
    for enum in file.enum_types_by_name.values():
        if child in enum.values_by_name and file.package == parent:
            return enum.values_by_name[child]
    return None


def all_symbol_names(pool: DescriptorPool, files: list[str], *, fields: bool = True) -> list[str]:
    """Full names of the services, methods, messages, enums and fields of files; without
    `fields`, neither fields nor the map entry messages protoc makes for map fields."""
    names: list[str] = []

    def message(desc: Descriptor) -> None:
        if not fields and desc.GetOptions().map_entry:
            return
        names.append(desc.full_name)
        if fields:
            names.extend(f.full_name for f in desc.fields)
        for nested in desc.nested_types:
            message(nested)
        for enum in desc.enum_types:
            names.append(enum.full_name)

    for name in files:
        try:
            file = pool.FindFileByName(name)
        except KeyError:
            continue
        for svc in file.services_by_name.values():
            names.append(svc.full_name)
            names.extend(m.full_name for m in svc.methods)
        for msg in file.message_types_by_name.values():
            message(msg)
        for enum in file.enum_types_by_name.values():
            names.append(enum.full_name)
    return names


def describable_names(source: SchemaSource) -> list[str]:
    """Services, methods (pkg.Service.Method), messages and enums of every file source has
    loaded, with their dependencies: what `describe` is mostly asked for (completion)."""
    files = [f.name for f in source.file_descriptor_set().file]
    return sorted(set(all_symbol_names(source.pool, files, fields=False)))


def suggestions(text: str, candidates: list[str], n: int = 3) -> list[str]:
    """Up to n close matches, compared both whole and by their last name part."""
    text = text.strip()
    seen: list[str] = []
    for match in difflib.get_close_matches(text, candidates, n=n, cutoff=0.6):
        if match not in seen:
            seen.append(match)
    if len(seen) < n:
        last = text.replace("/", ".").rsplit(".", 1)[-1]
        by_last: dict[str, list[str]] = {}
        for cand in candidates:
            by_last.setdefault(cand.replace("/", ".").rsplit(".", 1)[-1], []).append(cand)
        for key in difflib.get_close_matches(last, list(by_last), n=n, cutoff=0.6):
            for cand in by_last[key]:
                if cand not in seen and len(seen) < n:
                    seen.append(cand)
    return seen


def did_you_mean(names: list[str]) -> str:
    if not names:
        return ""
    if len(names) == 1:
        return f"did you mean {names[0]}?"
    return "did you mean one of: " + ", ".join(names) + "?"


class SchemaNotFound(SchemaError):
    """A name the schema does not have: a miss, which the schema cache refetches once."""


def not_found(kind: str, name: str, candidates: list[str]) -> SchemaNotFound:
    return SchemaNotFound(f"{kind} not found: {name}", did_you_mean(suggestions(name, candidates)))


# -- a source over a fixed set of files ------------------------------------------------


class PoolSource:
    """A SchemaSource over files assembled up front (protosets, .proto files, a cache)."""

    def __init__(self, assembler: Assembler) -> None:
        self._asm = assembler
        register_files(assembler.pool, assembler.files)

    @property
    def pool(self) -> DescriptorPool:
        return self._asm.pool

    def list_services(self) -> list[str]:
        names: list[str] = []
        for name in self._asm.files:
            file = self._asm.pool.FindFileByName(name)
            names.extend(svc.full_name for svc in file.services_by_name.values())
        return sorted(set(names))

    def find_service(self, name: str) -> ServiceDescriptor:
        svc = lookup_service(self.pool, name)
        if svc is None:
            raise not_found("service", normalize_symbol(name), self.list_services())
        return svc

    def find_symbol(self, name: str) -> Symbol:
        found = lookup_symbol(self.pool, name)
        if found is None:
            candidates = all_symbol_names(self.pool, list(self._asm.files))
            raise not_found("symbol", normalize_symbol(name), candidates)
        return found

    def settle(self, timeout: float) -> None:
        """Nothing is open: the pool is local."""

    def file_descriptor_set(self) -> descriptor_pb2.FileDescriptorSet:
        return self._asm.file_descriptor_set()

