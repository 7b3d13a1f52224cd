"""Well-known types: google/protobuf/*.proto as the protobuf runtime ships them.

Owns the one rule for well-known files: whatever a server or a file says, a
file named google/protobuf/X.proto that the runtime knows is taken from the
runtime, and google.protobuf.* symbols the runtime defines resolve to the
runtime's files (servers often leave them out or send odd copies of them).
"""

from __future__ import annotations

import functools

from google.protobuf import descriptor_pb2

# The wrapper types: JSON writes each as its bare value.
WRAPPER_TYPES = frozenset(
    "google.protobuf." + name
    for name in (
        "DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value",
        "BoolValue", "StringValue", "BytesValue",
    )
)
# Every well-known type whose JSON is not an object of its fields (protobuf's JSON mapping).
JSON_FORM_TYPES = WRAPPER_TYPES | {
    "google.protobuf." + name
    for name in ("Any", "Duration", "FieldMask", "ListValue", "Struct", "Timestamp", "Value", "Empty")
}


@functools.cache
def wellknown_files() -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """The runtime's google/protobuf/*.proto files by name."""
    from google.protobuf import (
        any_pb2,
        api_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        source_context_pb2,
        struct_pb2,
        timestamp_pb2,
        type_pb2,
        wrappers_pb2,
    )

    modules = (
        any_pb2,
        api_pb2,
        descriptor_pb2,
        duration_pb2,
        empty_pb2,
        field_mask_pb2,
        source_context_pb2,
        struct_pb2,
        timestamp_pb2,
        type_pb2,
        wrappers_pb2,
    )
    files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    for module in modules:
        fdp = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
        files[fdp.name] = fdp
    return files


@functools.cache
def wellknown_symbols() -> dict[str, tuple[str, bool]]:
    """Full name (no leading dot) of every type -> (its runtime file, is an enum)."""
    index: dict[str, tuple[str, bool]] = {}
    for name, fdp in wellknown_files().items():
        prefix = fdp.package
        for msg in fdp.message_type:
            _index_message(index, f"{prefix}.{msg.name}", msg, name)
        for enum in fdp.enum_type:
            index[f"{prefix}.{enum.name}"] = (name, True)
    return index


def _index_message(
    index: dict[str, tuple[str, bool]], full: str, msg: descriptor_pb2.DescriptorProto, file: str
) -> None:
    index[full] = (file, False)
    for nested in msg.nested_type:
        _index_message(index, f"{full}.{nested.name}", nested, file)
    for enum in msg.enum_type:
        index[f"{full}.{enum.name}"] = (file, True)


# The names of wellknown_files(), known without loading them (a test holds the two equal).
WELLKNOWN_FILE_NAMES = frozenset(
    f"google/protobuf/{stem}.proto"
    for stem in (
        "any", "api", "descriptor", "duration", "empty", "field_mask", "source_context",
        "struct", "timestamp", "type", "wrappers",
    )
)


def is_wellknown_file(name: str) -> bool:
    return name in WELLKNOWN_FILE_NAMES


def wellknown_type(full: str) -> tuple[str, bool] | None:
    """(its runtime file, is an enum) for a well-known type's full name, else None;
    the runtime's files are loaded only for a google.protobuf name."""
    return wellknown_symbols().get(full) if full.startswith("google.protobuf.") else None


def wellknown_file(name: str) -> descriptor_pb2.FileDescriptorProto:
    """A copy of the runtime's file of that name (KeyError if not well known)."""
    copy = descriptor_pb2.FileDescriptorProto()
    copy.CopyFrom(wellknown_files()[name])
    return copy
