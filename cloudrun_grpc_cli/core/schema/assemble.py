"""Turn file descriptors from any source into one consistent DescriptorPool.

Owns the repairs and checks every schema source shares. Conforming
descriptors pass through unchanged; grpc-node's @grpc/reflection (grpc-node
issues 3018 and 3034) sends files that need repair, done here where the
intent is unambiguous:

- missing dependency lists: dependencies are inferred from the type
  references across all files received;
- relative or unqualified type names ("Kind", "common.Money"): qualified by
  proto scoping rules and rewritten absolute (".shop.common.Money"), with the
  field type (message/enum) filled in when absent;
- map entry types named after the field ("Labels") instead of "LabelsEntry";
- proto3 `optional` fields sent as a plain "_name" oneof without the
  proto3_optional flag;
- copies of well-known types (a combined "google_protobuf.proto"): replaced
  by the runtime's own google/protobuf/*.proto files;
- proto2 files labelled proto3 (@grpc/proto-loader labels every file proto3,
  e.g. protoc-gen-validate's validate.proto): a file declared proto3 that
  holds what only proto2 allows (explicit default values, required fields,
  groups, extension ranges, an enum whose first value is not zero) is
  relabelled proto2, so its defaults and presence stay as written;
- message reserved and extension ranges written with inclusive ends
  ("reserved 3;" sent as 3..3, as in grpc-js's channelz.proto): when a file
  has a range whose end equals its start, every message range end in that
  file is made exclusive (end + 1), as descriptor.proto defines it;
- protobuf.js's copies of extension fields inside the extended message
  (a field named ".pkg.ext" numbered in an extension range): dropped, the
  extension itself stays;
- `packed = false` written on every field, packable or not: cleared where it
  is the default (the encoding is unchanged).

Where the intent is not clear (a name that resolves nowhere, two files
defining one symbol, an import cycle, an import that never arrives, bytes
that are not a descriptor) a SchemaError says what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError

from ...errors import SchemaError, one_line
from .names import camel_case
from .wellknown import is_wellknown_file, wellknown_file, wellknown_symbols, wellknown_type

FDP = descriptor_pb2.FileDescriptorProto
_F = descriptor_pb2.FieldDescriptorProto

#: Upper bound on files one assembly accepts (guards against endless servers).
MAX_FILES = 2000


def parse_file(data: bytes, origin: str) -> FDP:
    """Parse one serialized FileDescriptorProto, or raise a SchemaError naming origin."""
    try:
        fdp = FDP.FromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise SchemaError(f"{origin} sent a malformed file descriptor: {exc}") from None
    if not fdp.name:
        raise SchemaError(f"{origin} sent a file descriptor without a file name")
    return fdp


class Assembler:
    """Every file accepted so far, repaired, and the pool holding them."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.pool = descriptor_pool.DescriptorPool()
        self.files: dict[str, FDP] = {}  # accepted files in the order they entered the pool
        self._types: dict[str, tuple[str, bool]] = {}  # full name -> (file, is_enum)
        self._scopes: set[str] = set()  # packages and message names of accepted files

    # -- queries -------------------------------------------------------------

    def missing_imports(self, batch: Iterable[FDP]) -> list[str]:
        """Declared imports of batch that neither the pool, the batch nor the runtime has."""
        batch = list(batch)
        have = set(self.files) | {f.name for f in batch}
        missing: list[str] = []
        for fdp in batch:
            for dep in fdp.dependency:
                if dep not in have and not is_wellknown_file(dep) and dep not in missing:
                    missing.append(dep)
        return missing

    def file_descriptor_set(self) -> descriptor_pb2.FileDescriptorSet:
        """Every accepted file, dependencies before dependents."""
        fds = descriptor_pb2.FileDescriptorSet()
        for fdp in self.files.values():
            fds.file.add().CopyFrom(fdp)
        return fds

    # -- adding --------------------------------------------------------------

    def add(self, batch: Sequence[FDP]) -> list[str]:
        """Repair and add batch (with the well-known files it needs); return names added."""
        new: dict[str, FDP] = {}
        dropped: set[str] = set()
        for fdp in batch:
            if not fdp.name:
                raise SchemaError(f"{self.origin} sent a file descriptor without a file name")
            if fdp.name in self.files or fdp.name in new or is_wellknown_file(fdp.name):
                continue  # first copy wins; well-known files come from the runtime
            copy = FDP()
            copy.CopyFrom(fdp)
            if _strip_wellknown_copies(copy) and _is_empty(copy):
                dropped.add(copy.name)  # it held only copies of well-known types
                continue
            new[copy.name] = copy
        if len(self.files) + len(new) > MAX_FILES:
            raise SchemaError(f"{self.origin} sent more than {MAX_FILES} files; giving up")
        types, scopes = self._index(new)
        for fdp in new.values():
            if dropped.intersection(fdp.dependency):
                deps = [d for d in fdp.dependency if d not in dropped]
                del fdp.dependency[:]
                fdp.dependency.extend(deps)
            _fix_proto_loader_file(fdp)
            _Repairer(fdp, types, scopes, self.origin).run()
        # Imports of well-known files come from the runtime.
        wanted = [dep for fdp in new.values() for dep in fdp.dependency]
        for dep in wanted:
            if is_wellknown_file(dep) and dep not in self.files and dep not in new:
                new[dep] = wellknown_file(dep)
                for sub in new[dep].dependency:
                    if sub not in self.files and sub not in new:
                        new[sub] = wellknown_file(sub)
        missing = [
            (fdp.name, dep)
            for fdp in new.values()
            for dep in fdp.dependency
            if dep not in self.files and dep not in new
        ]
        if missing:
            name, dep = missing[0]
            raise SchemaError(
                f"{self.origin}: {name} imports {dep}, which is not available",
                "the server (or protoset) must provide every imported file",
            )
        added: list[str] = []
        for fdp in _topological(new, self.origin):
            try:
                self.pool.Add(fdp)
            except (TypeError, ValueError, KeyError) as exc:
                raise SchemaError(
                    f"{self.origin}: invalid descriptor for {fdp.name}: {_short(exc)}"
                ) from None
            self.files[fdp.name] = fdp
            added.append(fdp.name)
        self._types, self._scopes = types, scopes
        return added

    def _index(self, new: dict[str, FDP]) -> tuple[dict[str, tuple[str, bool]], set[str]]:
        types = _Types(self._types)
        scopes = set(self._scopes)
        scopes.add("google.protobuf")
        for fdp in new.values():
            pkg = fdp.package
            if pkg:
                parts = pkg.split(".")
                scopes.update(".".join(parts[: i + 1]) for i in range(len(parts)))
            for full, is_enum in _declared_types(fdp):
                if full in types and types[full][0] != fdp.name:
                    other = types[full][0]
                    raise SchemaError(
                        f"{self.origin}: {full} is defined twice, in {other} and {fdp.name}"
                    )
                types[full] = (fdp.name, is_enum)
                if not is_enum:
                    scopes.add(full)
        return types, scopes


class _Types(dict[str, tuple[str, bool]]):
    """Full name -> (file, is_enum) of the files received; a name not among them
    may be a well-known type, looked up in the runtime's files (loaded only then)."""

    def __missing__(self, full: str) -> tuple[str, bool]:
        found = wellknown_type(full)
        if found is None:
            raise KeyError(full)
        return found

    def __contains__(self, full: object) -> bool:
        return dict.__contains__(self, full) or (isinstance(full, str) and wellknown_type(full) is not None)

    def get(  # type: ignore[override]
        self, full: str, default: tuple[str, bool] | None = None
    ) -> tuple[str, bool] | None:
        found = dict.get(self, full)
        if found is None:
            found = wellknown_type(full)
        return default if found is None else found


# -- repairs ---------------------------------------------------------------------


class _Repairer:
    """Qualifies type names, infers imports, fixes map entries and proto3 optional."""

    def __init__(
        self, fdp: FDP, types: dict[str, tuple[str, bool]], scopes: set[str], origin: str
    ) -> None:
        self.fdp = fdp
        self.types = types
        self.scopes = scopes
        self.origin = origin
        self.deps = list(fdp.dependency)

    def run(self) -> None:
        fdp = self.fdp
        pkg = fdp.package
        for msg in fdp.message_type:
            self._message(msg, f"{pkg}.{msg.name}" if pkg else msg.name)
        for ext in fdp.extension:
            self._field(ext, pkg, f"{pkg}.{ext.name}" if pkg else ext.name)
        for svc in fdp.service:
            scope = f"{pkg}.{svc.name}" if pkg else svc.name
            for method in svc.method:
                where = f"{scope}.{method.name}"
                method.input_type = self._resolve(method.input_type, scope, where, want_enum=False)
                method.output_type = self._resolve(
                    method.output_type, scope, where, want_enum=False
                )
        if self.deps != list(fdp.dependency):
            del fdp.dependency[:]
            fdp.dependency.extend(self.deps)

    def _message(self, msg: descriptor_pb2.DescriptorProto, full: str) -> None:
        for field in msg.field:
            self._field(field, full, f"{full}.{field.name}")
        for ext in msg.extension:
            self._field(ext, full, f"{full}.{ext.name}")
        for nested in msg.nested_type:
            self._message(nested, f"{full}.{nested.name}")
        _fix_map_entries(msg, full, self.types)
        if self.fdp.syntax == "proto3":
            _fix_proto3_optional(msg)

    def _field(self, field: descriptor_pb2.FieldDescriptorProto, scope: str, where: str) -> None:
        if field.extendee:
            field.extendee = self._resolve(field.extendee, scope, where, want_enum=False)
        if not field.type_name:
            if not field.HasField("type"):
                raise SchemaError(
                    f"{self.origin}: field {where} has neither a type nor a type name"
                )
            return
        if field.HasField("type") and field.type not in (
            _F.TYPE_MESSAGE,
            _F.TYPE_ENUM,
            _F.TYPE_GROUP,
        ):
            raise SchemaError(
                f"{self.origin}: field {where} has a scalar type and a type name "
                f"{field.type_name!r}"
            )
        field.type_name = self._resolve(field.type_name, scope, where, want_enum=None)
        is_enum = self.types[field.type_name[1:]][1]
        if not field.HasField("type") or field.type != _F.TYPE_GROUP:
            field.type = _F.TYPE_ENUM if is_enum else _F.TYPE_MESSAGE

    def _resolve(self, name: str, scope: str, where: str, *, want_enum: bool | None) -> str:
        """The absolute ".full.Name" for a reference made from scope; adds an import."""
        if not name:
            raise SchemaError(f"{self.origin}: {where} names no type")
        if name.startswith("."):
            candidates = [name[1:]]
        else:
            candidates = []
            parts = scope.split(".") if scope else []
            for i in range(len(parts), -1, -1):
                prefix = ".".join(parts[:i])
                candidates.append(f"{prefix}.{name}" if prefix else name)
        for full in candidates:
            found = self.types.get(full)
            if found is None:
                continue
            file, is_enum = found
            if want_enum is not None and is_enum != want_enum:
                continue
            if file != self.fdp.name and file not in self.deps:
                self.deps.append(file)
            return f".{full}"
        raise SchemaError(
            f"{self.origin}: {self.fdp.name}: {where} refers to {name!r}, "
            "which no file received defines"
        )


#: descriptor.proto's largest field number + 1 (the exclusive end of "to max").
_MAX_FIELD_END = 0x20000000

_UNPACKABLE = (_F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_MESSAGE, _F.TYPE_GROUP)


def _fix_proto_loader_file(fdp: FDP) -> None:
    """File-local repairs of @grpc/proto-loader's (protobuf.js's) descriptor writer."""
    if fdp.syntax == "proto3" and _holds_proto2_only(fdp):
        fdp.syntax = "proto2"
        for field in _all_fields(fdp):
            field.ClearField("proto3_optional")  # proto3-only; its oneof stays a real one
    _fix_inclusive_ranges(fdp)
    for msg in _all_messages(fdp):
        _drop_extension_copies(msg)
    _clear_default_packed(fdp)


def _all_messages(fdp: FDP) -> list[descriptor_pb2.DescriptorProto]:
    out: list[descriptor_pb2.DescriptorProto] = []
    pending = list(fdp.message_type)
    while pending:
        msg = pending.pop(0)
        out.append(msg)
        pending.extend(msg.nested_type)
    return out


def _all_fields(fdp: FDP) -> list[descriptor_pb2.FieldDescriptorProto]:
    out = list(fdp.extension)
    for msg in _all_messages(fdp):
        out.extend(msg.field)
        out.extend(msg.extension)
    return out


def _holds_proto2_only(fdp: FDP) -> bool:
    """Whether the file has something proto3 forbids and proto2 allows."""
    for field in _all_fields(fdp):
        if field.HasField("default_value") or field.label == _F.LABEL_REQUIRED:
            return True
        if field.HasField("type") and field.type == _F.TYPE_GROUP:
            return True
    msgs = _all_messages(fdp)
    if any(msg.extension_range for msg in msgs):
        return True
    enums = [*fdp.enum_type, *(e for msg in msgs for e in msg.enum_type)]
    return any(enum.value and enum.value[0].number != 0 for enum in enums)


def _fix_inclusive_ranges(fdp: FDP) -> None:
    """Make message range ends exclusive when the file's writer wrote them inclusive.

    descriptor.proto's DescriptorProto reserved and extension ranges have
    exclusive ends, so a conforming range never ends where it starts; one that
    does ("reserved 3;" sent as 3..3) shows the writer used inclusive ends, as
    protobuf.js does for every message range. Enum reserved ranges are
    inclusive by definition and are left alone. Ranges that end before they
    start are not guessed at (the descriptor pool rejects them).
    """
    ranges: list[
        descriptor_pb2.DescriptorProto.ReservedRange | descriptor_pb2.DescriptorProto.ExtensionRange
    ] = []
    for msg in _all_messages(fdp):
        ranges.extend(msg.reserved_range)
        ranges.extend(msg.extension_range)
    if not any(r.end == r.start for r in ranges) or any(r.end < r.start for r in ranges):
        return
    if any(r.end + 1 > _MAX_FIELD_END for r in ranges):
        return  # would pass the largest field number: not protobuf.js's inclusive ends
    for r in ranges:
        r.end += 1


def _drop_extension_copies(msg: descriptor_pb2.DescriptorProto) -> None:
    """Drop protobuf.js's copy of an extension among the extended message's fields.

    protobuf.js adds each extension of a message to that message's fields,
    named by the extension's full name with a leading dot and numbered in an
    extension range; no real field can have such a name or number.
    """

    def is_copy(field: descriptor_pb2.FieldDescriptorProto) -> bool:
        return field.name.startswith(".") and any(
            r.start <= field.number < r.end for r in msg.extension_range
        )

    if not any(is_copy(f) for f in msg.field):
        return
    keep = [_copy_field(f) for f in msg.field if not is_copy(f)]
    del msg.field[:]
    for field in keep:
        msg.field.add().CopyFrom(field)


def _copy_field(field: descriptor_pb2.FieldDescriptorProto) -> descriptor_pb2.FieldDescriptorProto:
    copy = descriptor_pb2.FieldDescriptorProto()
    copy.CopyFrom(field)
    return copy


def _clear_default_packed(fdp: FDP) -> None:
    """Clear `packed = false` where it is the default, if the writer set it on every field.

    protobuf.js writes `packed = false` on every field of a file it read as
    proto2, including singular and string fields, which cannot be packed at
    all. Only when every such unpackable field carries it (the writer's mark,
    not a choice in the source) is it cleared: on unpackable fields, and on
    repeated scalars of proto2 files, where expanded is the default. The
    encoding does not change.
    """
    fields = _all_fields(fdp)

    def unpackable(field: descriptor_pb2.FieldDescriptorProto) -> bool:
        return field.label != _F.LABEL_REPEATED or (
            field.HasField("type") and field.type in _UNPACKABLE
        ) or (not field.HasField("type") and bool(field.type_name))

    marked = [f for f in fields if unpackable(f)]
    if not marked or not all(f.options.HasField("packed") and not f.options.packed for f in marked):
        return
    for field in fields:
        default = unpackable(field) or fdp.syntax == "proto2"
        if default and field.options.HasField("packed") and not field.options.packed:
            field.options.ClearField("packed")
            if field.options.ByteSize() == 0:
                field.ClearField("options")


def _fix_map_entries(
    msg: descriptor_pb2.DescriptorProto, full: str, types: dict[str, tuple[str, bool]]
) -> None:
    """Rename map entry types to protoc's <Field>Entry when only one field uses them."""
    entries = {n.name: n for n in msg.nested_type if n.options.map_entry}
    if not entries:
        return
    users: dict[str, list[descriptor_pb2.FieldDescriptorProto]] = {}
    for field in msg.field:
        for name in entries:
            if field.type_name == f".{full}.{name}":
                users.setdefault(name, []).append(field)
    taken = {n.name for n in msg.nested_type} | {e.name for e in msg.enum_type}
    for name, fields in users.items():
        if len(fields) != 1:
            continue
        want = _map_entry_name(fields[0].name)
        if want == name or want in taken:
            continue
        entries[name].name = want
        taken.discard(name)
        taken.add(want)
        fields[0].type_name = f".{full}.{want}"
        file_enum = types.pop(f"{full}.{name}", None)
        if file_enum is not None:
            types[f"{full}.{want}"] = file_enum


def _map_entry_name(field_name: str) -> str:
    """protoc's name for the entry type of a map field: foo_bar -> FooBarEntry."""
    return camel_case(field_name, upper_first=True) + "Entry"


def _fix_proto3_optional(msg: descriptor_pb2.DescriptorProto) -> None:
    """A oneof named "_x" holding only field x is proto3 `optional x`; mark it so."""
    members: dict[int, list[descriptor_pb2.FieldDescriptorProto]] = {}
    for field in msg.field:
        if field.HasField("oneof_index"):
            members.setdefault(field.oneof_index, []).append(field)
    synthetic: set[int] = set()
    for index, fields in members.items():
        if index >= len(msg.oneof_decl) or len(fields) != 1:
            continue
        only = fields[0]
        if msg.oneof_decl[index].name == f"_{only.name}" and only.label != _F.LABEL_REPEATED:
            only.proto3_optional = True
        if only.proto3_optional:
            synthetic.add(index)
    # protoc requires synthetic oneofs after all real ones: reorder if needed.
    order = [i for i in range(len(msg.oneof_decl)) if i not in synthetic]
    order += [i for i in range(len(msg.oneof_decl)) if i in synthetic]
    if order == list(range(len(msg.oneof_decl))):
        return
    decls = [msg.oneof_decl[i] for i in order]
    copies = []
    for decl in decls:
        copy = descriptor_pb2.OneofDescriptorProto()
        copy.CopyFrom(decl)
        copies.append(copy)
    new_index = {old: new for new, old in enumerate(order)}
    del msg.oneof_decl[:]
    for copy in copies:
        msg.oneof_decl.add().CopyFrom(copy)
    for field in msg.field:
        if field.HasField("oneof_index") and field.oneof_index in new_index:
            field.oneof_index = new_index[field.oneof_index]


def _strip_wellknown_copies(fdp: FDP) -> bool:
    """Drop google.protobuf types the runtime defines from a non-well-known file."""
    if fdp.package != "google.protobuf":
        return False
    known = wellknown_symbols()
    keep_msgs = [m for m in fdp.message_type if f"google.protobuf.{m.name}" not in known]
    keep_enums = [e for e in fdp.enum_type if f"google.protobuf.{e.name}" not in known]
    if len(keep_msgs) == len(fdp.message_type) and len(keep_enums) == len(fdp.enum_type):
        return False
    msgs = [_copy(m) for m in keep_msgs]
    enums = [_copy(e) for e in keep_enums]
    del fdp.message_type[:]
    del fdp.enum_type[:]
    for m in msgs:
        fdp.message_type.add().CopyFrom(m)
    for e in enums:
        fdp.enum_type.add().CopyFrom(e)
    return True


_M = TypeVar("_M", descriptor_pb2.DescriptorProto, descriptor_pb2.EnumDescriptorProto)


def _copy(msg: _M) -> _M:
    copy = type(msg)()
    copy.CopyFrom(msg)
    return copy


def _is_empty(fdp: FDP) -> bool:
    return not (fdp.message_type or fdp.enum_type or fdp.service or fdp.extension)


def _declared_types(fdp: FDP) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    prefix = f"{fdp.package}." if fdp.package else ""

    def walk(msg: descriptor_pb2.DescriptorProto, full: str) -> None:
        out.append((full, False))
        for nested in msg.nested_type:
            walk(nested, f"{full}.{nested.name}")
        for enum in msg.enum_type:
            out.append((f"{full}.{enum.name}", True))

    for msg in fdp.message_type:
        walk(msg, f"{prefix}{msg.name}")
    for enum in fdp.enum_type:
        out.append((f"{prefix}{enum.name}", True))
    return out


def _topological(files: dict[str, FDP], origin: str) -> list[FDP]:
    """Files ordered dependencies first; an import cycle is a SchemaError."""
    order: list[FDP] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for root in files:
        if state.get(root) == 2:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            name, i = stack.pop()
            if i == 0:
                if state.get(name) == 2:
                    continue
                if state.get(name) == 1:
                    cycle = [*path[path.index(name) :], name]
                    raise SchemaError(f"{origin}: import cycle: {' -> '.join(cycle)}")
                state[name] = 1
                path.append(name)
            deps = [d for d in files[name].dependency if d in files]
            if i < len(deps):
                stack.append((name, i + 1))
                dep = deps[i]
                if state.get(dep) == 1:
                    cycle = [*path[path.index(dep) :], dep]
                    raise SchemaError(f"{origin}: import cycle: {' -> '.join(cycle)}")
                if state.get(dep) != 2:
                    stack.append((dep, 0))
            else:
                state[name] = 2
                path.pop()
                order.append(files[name])
    return order


def _short(exc: BaseException) -> str:
    return one_line(str(exc)) or type(exc).__name__
