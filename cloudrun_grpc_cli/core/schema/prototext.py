"""Render a schema symbol as proto source text (what `describe` prints).

Owns the proto syntax printer: services, methods, messages (fields, oneofs,
maps, optional/required/repeated labels, nested types, extensions,
reserved), enums and their values, options such as `deprecated`, and the
comments of source_code_info when the file has them (a .proto source has;
reflection usually has not). Type names are fully qualified, without the
leading dot: `rpc SayHello(echo.EchoRequest) returns (echo.EchoReply);`.
The text has no trailing newline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

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
from google.protobuf.message import Message

from .names import camel_case
from .source import Symbol, file_proto

_F = descriptor_pb2.FieldDescriptorProto
INDENT = "  "

_SCALARS = {
    _F.TYPE_DOUBLE: "double",
    _F.TYPE_FLOAT: "float",
    _F.TYPE_INT64: "int64",
    _F.TYPE_UINT64: "uint64",
    _F.TYPE_INT32: "int32",
    _F.TYPE_FIXED64: "fixed64",
    _F.TYPE_FIXED32: "fixed32",
    _F.TYPE_BOOL: "bool",
    _F.TYPE_STRING: "string",
    _F.TYPE_BYTES: "bytes",
    _F.TYPE_UINT32: "uint32",
    _F.TYPE_SFIXED32: "sfixed32",
    _F.TYPE_SFIXED64: "sfixed64",
    _F.TYPE_SINT32: "sint32",
    _F.TYPE_SINT64: "sint64",
}


def to_proto_text(s: Symbol) -> str:
    """Proto source text for a service, method, message, enum, field or enum value."""
    printer = _Printer(_file_of(s))
    if isinstance(s, ServiceDescriptor):
        lines = printer.service(s.full_name)
    elif isinstance(s, MethodDescriptor):
        lines = printer.method(s.containing_service.full_name, s.name)
    elif isinstance(s, Descriptor):
        lines = printer.message(s.full_name)
    elif isinstance(s, EnumDescriptor):
        lines = printer.enum(s.full_name)
    elif isinstance(s, FieldDescriptor):
        lines = printer.field_symbol(s)
    elif isinstance(s, EnumValueDescriptor):
        lines = printer.enum_value_symbol(s.type.full_name, s.name)
    else:
        raise TypeError(f"not a schema symbol: {s!r}")
    return "\n".join(lines)


def _file_of(s: Symbol) -> FileDescriptor:
    if isinstance(s, MethodDescriptor):
        return s.containing_service.file
    if isinstance(s, EnumValueDescriptor):
        return s.type.file
    file: FileDescriptor = s.file  # type: ignore[union-attr]  # FieldDescriptor has .file at runtime
    return file


class _Printer:
    """Prints elements of one file, found by full name in its FileDescriptorProto."""

    def __init__(self, file: FileDescriptor) -> None:
        self.fdp = file_proto(file)
        self.syntax = self.fdp.syntax or "proto2"
        self.paths: dict[str, tuple[list[int], Message]] = {}
        self.comments: dict[tuple[int, ...], descriptor_pb2.SourceCodeInfo.Location] = {
            tuple(loc.path): loc for loc in self.fdp.source_code_info.location
        }
        prefix = f"{self.fdp.package}." if self.fdp.package else ""
        for i, msg in enumerate(self.fdp.message_type):
            self._index_message(f"{prefix}{msg.name}", msg, [4, i])
        for i, enum in enumerate(self.fdp.enum_type):
            self._index_enum(f"{prefix}{enum.name}", enum, [5, i])
        for i, svc in enumerate(self.fdp.service):
            self.paths[f"{prefix}{svc.name}"] = ([6, i], svc)
            for j, method in enumerate(svc.method):
                self.paths[f"{prefix}{svc.name}.{method.name}"] = ([6, i, 2, j], method)
        for i, ext in enumerate(self.fdp.extension):
            self.paths[f"{prefix}{ext.name}"] = ([7, i], ext)

    def _index_message(
        self, full: str, msg: descriptor_pb2.DescriptorProto, path: list[int]
    ) -> None:
        self.paths[full] = (path, msg)
        for i, field in enumerate(msg.field):
            self.paths[f"{full}.{field.name}"] = ([*path, 2, i], field)
        for i, ext in enumerate(msg.extension):
            self.paths[f"{full}.{ext.name}"] = ([*path, 6, i], ext)
        for i, nested in enumerate(msg.nested_type):
            self._index_message(f"{full}.{nested.name}", nested, [*path, 3, i])
        for i, enum in enumerate(msg.enum_type):
            self._index_enum(f"{full}.{enum.name}", enum, [*path, 4, i])
        for i, oneof in enumerate(msg.oneof_decl):
            self.paths[f"oneof:{full}.{oneof.name}"] = ([*path, 8, i], oneof)

    def _index_enum(
        self, full: str, enum: descriptor_pb2.EnumDescriptorProto, path: list[int]
    ) -> None:
        self.paths[full] = (path, enum)
        for i, value in enumerate(enum.value):
            self.paths[f"value:{full}.{value.name}"] = ([*path, 2, i], value)

    # -- comments ----------------------------------------------------------------

    def _leading(self, path: list[int]) -> list[str]:
        loc = self.comments.get(tuple(path))
        if loc is None:
            return []
        out: list[str] = []
        for detached in loc.leading_detached_comments:
            out.extend(_comment_lines(detached))
            out.append("")
        out.extend(_comment_lines(loc.leading_comments))
        return out

    def _trailing(self, path: list[int]) -> str:
        loc = self.comments.get(tuple(path))
        if loc is None or not loc.trailing_comments.strip():
            return ""
        text = " ".join(ln.strip() for ln in loc.trailing_comments.strip().splitlines())
        return f" // {text}"

    # -- elements ----------------------------------------------------------------

    def service(self, full: str) -> list[str]:
        path, svc = self.paths[full]
        assert isinstance(svc, descriptor_pb2.ServiceDescriptorProto)
        lines = [*self._leading(path), f"service {svc.name} {{"]
        lines += _indent(_option_statements(svc.options))
        for i, _ in enumerate(svc.method):
            lines += _indent(self._method_lines([*path, 2, i], svc.method[i]))
        lines.append("}")
        return lines

    def method(self, service: str, name: str) -> list[str]:
        path, method = self.paths[f"{service}.{name}"]
        assert isinstance(method, descriptor_pb2.MethodDescriptorProto)
        return self._method_lines(path, method)

    def _method_lines(self, path: list[int], m: descriptor_pb2.MethodDescriptorProto) -> list[str]:
        cin = "stream " if m.client_streaming else ""
        sout = "stream " if m.server_streaming else ""
        head = f"rpc {m.name}({cin}{_type(m.input_type)}) returns ({sout}{_type(m.output_type)})"
        options = _option_statements(m.options)
        lines = self._leading(path)
        if options:
            lines += [f"{head} {{", *_indent(options), "}" + self._trailing(path)]
        else:
            lines.append(f"{head};{self._trailing(path)}")
        return lines

    def message(self, full: str) -> list[str]:
        path, msg = self.paths[full]
        assert isinstance(msg, descriptor_pb2.DescriptorProto)
        return self._message_lines(full, path, msg)

    def _message_lines(
        self, full: str, path: list[int], msg: descriptor_pb2.DescriptorProto
    ) -> list[str]:
        lines = [*self._leading(path), f"message {msg.name} {{"]
        chunks: list[list[str]] = []
        options = _option_statements(msg.options)
        if options:
            chunks.append(options)
        fields: list[str] = []
        done_oneofs: set[int] = set()
        entries = {n.name: n for n in msg.nested_type if n.options.map_entry}
        for i, field in enumerate(msg.field):
            fpath = [*path, 2, i]
            real_oneof = field.HasField("oneof_index") and not field.proto3_optional
            if real_oneof:
                index = field.oneof_index
                if index in done_oneofs:
                    continue
                done_oneofs.add(index)
                fields += self._oneof_lines(full, path, msg, index, entries)
                continue
            fields += self._field_lines(fpath, field, full, entries)
        if fields:
            chunks.append(fields)
        for i, nested in enumerate(msg.nested_type):
            if nested.options.map_entry:
                continue
            chunks.append(self._message_lines(f"{full}.{nested.name}", [*path, 3, i], nested))
        for i, enum in enumerate(msg.enum_type):
            chunks.append(self._enum_lines([*path, 4, i], enum))
        if msg.extension_range:
            ranges = ", ".join(_range(r.start, r.end) for r in msg.extension_range)
            chunks.append([f"extensions {ranges};"])
        chunks += self._extend_blocks([*path, 6], msg.extension, full)
        reserved = _reserved(msg.reserved_range, msg.reserved_name)
        if reserved:
            chunks.append(reserved)
        for n, chunk in enumerate(chunks):
            if n:
                lines.append("")
            lines += _indent(chunk)
        lines.append("}")
        return lines

    def _oneof_lines(
        self,
        full: str,
        path: list[int],
        msg: descriptor_pb2.DescriptorProto,
        index: int,
        entries: dict[str, descriptor_pb2.DescriptorProto],
    ) -> list[str]:
        decl = msg.oneof_decl[index]
        opath = [*path, 8, index]
        body: list[str] = list(_option_statements(decl.options))
        for i, field in enumerate(msg.field):
            if field.HasField("oneof_index") and field.oneof_index == index:
                body += self._field_lines([*path, 2, i], field, full, entries, in_oneof=True)
        return [*self._leading(opath), f"oneof {decl.name} {{", *_indent(body), "}"]

    def _field_lines(
        self,
        path: list[int],
        field: descriptor_pb2.FieldDescriptorProto,
        scope: str,
        entries: dict[str, descriptor_pb2.DescriptorProto],
        *,
        in_oneof: bool = False,
    ) -> list[str]:
        return [
            *self._leading(path),
            self._field_text(field, scope, entries, in_oneof) + self._trailing(path),
        ]

    def _field_text(
        self,
        field: descriptor_pb2.FieldDescriptorProto,
        scope: str,
        entries: dict[str, descriptor_pb2.DescriptorProto],
        in_oneof: bool,
    ) -> str:
        entry = None
        if field.label == _F.LABEL_REPEATED and field.type == _F.TYPE_MESSAGE:
            short = field.type_name.rsplit(".", 1)[-1]
            if field.type_name == f".{scope}.{short}" and short in entries:
                entry = entries[short]
        if entry is not None:
            key = next(f for f in entry.field if f.number == 1)
            value = next(f for f in entry.field if f.number == 2)
            text = f"map<{_field_type(key)}, {_field_type(value)}> {field.name} = {field.number}"
        else:
            label = ""
            if field.label == _F.LABEL_REPEATED:
                label = "repeated "
            elif in_oneof:
                label = ""
            elif field.proto3_optional:
                label = "optional "
            elif self.syntax == "proto2":
                label = "required " if field.label == _F.LABEL_REQUIRED else "optional "
            elif self.syntax == "editions" and field.label == _F.LABEL_REQUIRED:
                label = "required "
            text = f"{label}{_field_type(field)} {field.name} = {field.number}"
        options = _inline_options(field.options)
        if self.syntax == "proto2" and field.HasField("default_value"):
            options.insert(0, f"default = {_default(field)}")
        if field.json_name and field.json_name != _json_name(field.name):
            options.append(f"json_name = {json.dumps(field.json_name)}")
        if options:
            text += " [" + ", ".join(options) + "]"
        return text + ";"

    def _extend_blocks(
        self, path: list[int], exts: Iterable[descriptor_pb2.FieldDescriptorProto], scope: str
    ) -> list[list[str]]:
        blocks: dict[str, list[str]] = {}
        for i, ext in enumerate(exts):
            lines = self._field_lines([*path, i], ext, scope, {})
            blocks.setdefault(ext.extendee, []).extend(lines)
        return [[f"extend {_type(k)} {{", *_indent(v), "}"] for k, v in blocks.items()]

    def enum(self, full: str) -> list[str]:
        path, enum = self.paths[full]
        assert isinstance(enum, descriptor_pb2.EnumDescriptorProto)
        return self._enum_lines(path, enum)

    def _enum_lines(self, path: list[int], enum: descriptor_pb2.EnumDescriptorProto) -> list[str]:
        lines = [*self._leading(path), f"enum {enum.name} {{"]
        body = list(_option_statements(enum.options))
        for i, value in enumerate(enum.value):
            body += self._leading([*path, 2, i])
            body.append(_enum_value_text(value) + self._trailing([*path, 2, i]))
        reserved = _reserved(enum.reserved_range, enum.reserved_name, inclusive=True)
        if reserved:
            body += reserved
        lines += _indent(body)
        lines.append("}")
        return lines

    def field_symbol(self, fd: FieldDescriptor) -> list[str]:
        path, field = self.paths[fd.full_name]
        assert isinstance(field, descriptor_pb2.FieldDescriptorProto)
        scope = fd.containing_type.full_name if fd.containing_type is not None else ""
        entries: dict[str, descriptor_pb2.DescriptorProto] = {}
        if scope:
            _, parent = self.paths[scope]
            assert isinstance(parent, descriptor_pb2.DescriptorProto)
            entries = {n.name: n for n in parent.nested_type if n.options.map_entry}
        in_oneof = field.HasField("oneof_index") and not field.proto3_optional
        return [
            *self._leading(path),
            self._field_text(field, scope, entries, in_oneof) + self._trailing(path),
        ]

    def enum_value_symbol(self, enum_full: str, name: str) -> list[str]:
        path, value = self.paths[f"value:{enum_full}.{name}"]
        assert isinstance(value, descriptor_pb2.EnumValueDescriptorProto)
        return [*self._leading(path), _enum_value_text(value) + self._trailing(path)]


# -- helpers ---------------------------------------------------------------------


def _indent(lines: Iterable[str]) -> list[str]:
    return [f"{INDENT}{ln}" if ln else "" for ln in lines]


def _comment_lines(text: str) -> list[str]:
    if not text.strip():
        return []
    lines = text.rstrip("\n").split("\n")
    return [f"//{ln.rstrip()}" if ln.strip() else "//" for ln in lines]


def _type(name: str) -> str:
    return name[1:] if name.startswith(".") else name


def _field_type(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if field.type in _SCALARS:
        return _SCALARS[field.type]
    return _type(field.type_name)


def _enum_value_text(value: descriptor_pb2.EnumValueDescriptorProto) -> str:
    text = f"{value.name} = {value.number}"
    options = _inline_options(value.options)
    if options:
        text += " [" + ", ".join(options) + "]"
    return text + ";"


def _json_name(name: str) -> str:
    """protoc's default json_name: foo_bar -> fooBar."""
    return camel_case(name, upper_first=False)


def _default(field: descriptor_pb2.FieldDescriptorProto) -> str:
    value = field.default_value
    if field.type == _F.TYPE_STRING:
        return json.dumps(value)
    if field.type == _F.TYPE_BYTES:
        return f'"{value}"'  # already C-escaped by protoc
    return value


def _range(start: int, end: int, *, inclusive: bool = False) -> str:
    last = end if inclusive else end - 1
    if last >= 536870911 or (inclusive and last >= 2147483647):
        return f"{start} to max"
    return str(start) if start == last else f"{start} to {last}"


def _reserved(
    ranges: Iterable[Message], names: Iterable[str], *, inclusive: bool = False
) -> list[str]:
    out: list[str] = []
    parts = [
        _range(r.start, r.end, inclusive=inclusive)  # type: ignore[attr-defined]
        for r in ranges
    ]
    if parts:
        out.append(f"reserved {', '.join(parts)};")
    quoted = [json.dumps(n) for n in names]
    if quoted:
        out.append(f"reserved {', '.join(quoted)};")
    return out


def _option_items(options: Message) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for fd, value in options.ListFields():
        if fd.name in ("map_entry", "uninterpreted_option"):
            continue
        name = f"({fd.full_name})" if fd.is_extension else fd.name
        values = list(value) if _is_repeated(fd) else [value]
        items.extend((name, _option_value(fd, v)) for v in values)
    return items


def _is_repeated(fd: FieldDescriptor) -> bool:
    flag = getattr(fd, "is_repeated", None)
    if isinstance(flag, bool):
        return flag
    return bool(getattr(fd, "label", 0) == FieldDescriptor.LABEL_REPEATED)


def _option_value(fd: FieldDescriptor, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if fd.type == FieldDescriptor.TYPE_ENUM and fd.enum_type is not None and isinstance(value, int):
        found = fd.enum_type.values_by_number.get(value)
        return found.name if found is not None else str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bytes):
        return json.dumps(value.decode("latin-1"))
    if isinstance(value, Message):
        from google.protobuf import text_format  # only options with message values need it

        return "{ " + text_format.MessageToString(value, as_one_line=True) + " }"
    return str(value)


def _option_statements(options: Message) -> list[str]:
    return [f"option {name} = {value};" for name, value in _option_items(options)]


def _inline_options(options: Message) -> list[str]:
    return [f"{name} = {value}" for name, value in _option_items(options)]
