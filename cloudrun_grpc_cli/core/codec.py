"""JSON ⇄ protobuf messages, and reading a stream of JSON messages.

DATA is zero or more JSON objects, concatenated or one per line. The reader
finds each object's end by scanning (strings and escapes aware), so a stream
on stdin yields each message as soon as its closing brace is read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ..errors import RequestDataError, one_line
from .schema.wellknown import JSON_FORM_TYPES

_WS = " \t\r\n"


_DECODER = json.JSONDecoder()


class JsonStreamReader:
    """Incrementally splits text into top-level JSON objects.

    Linear in the input: consumed text is dropped by offset (compacted now and
    then), and the search for an object's closing brace resumes where the last
    chunk ended instead of rescanning the whole object on every chunk.
    """

    def __init__(self, *, not_utf8: str | None = None) -> None:
        self._not_utf8 = not_utf8  # the error for bytes that are not UTF-8 (default: says where)
        self._buf = ""
        self._start = 0  # offset in _buf of the first unconsumed character
        self._lines = 0  # newlines consumed before _start
        self._col = 0  # characters consumed since the last newline
        self.count = 0
        # Scan state of the object being read (offsets into _buf).
        self._obj = -1  # where its "{" is, or -1
        self._scan = 0  # how far it was scanned
        self._depth = 0
        self._in_str = False

    def _position(self, offset: int) -> str:
        """Line and column of _buf[offset] in the whole input."""
        nl = self._buf.count("\n", self._start, offset)
        if nl:
            col = offset - (self._buf.rfind("\n", self._start, offset) + 1)
        else:
            col = self._col + offset - self._start
        return f"line {self._lines + nl + 1} column {col + 1}"

    def feed(self, chunk: str) -> Iterator[dict[str, Any]]:
        bad = _SURROGATE.search(chunk)
        if bad is not None:
            yield from self.feed(chunk[: bad.start()])  # the messages before it are good
            raise RequestDataError(
                self._not_utf8
                or f"request data: the input is not UTF-8 text "
                f"(byte 0x{ord(bad.group()) - 0xDC00:02x} in message {self.count + 1})",
                "DATA is JSON text",
            )
        if self._start > 65536 and self._start * 2 > len(self._buf):
            self._compact()
        # A local with one reference lets CPython grow the string in place.
        buf, self._buf = self._buf, ""
        buf += chunk
        self._buf = buf
        del buf
        while True:
            obj = self._next()
            if obj is None:
                return
            yield obj

    def _compact(self) -> None:
        cut = self._start
        self._buf = self._buf[cut:]
        self._start = 0
        if self._obj >= 0:
            self._obj -= cut
            self._scan -= cut

    def close(self) -> None:
        rest = self._buf[self._start :]
        if rest.strip(_WS):
            offset = self._start + len(rest) - len(rest.lstrip(_WS))
            raise RequestDataError(
                f"request data: message {self.count + 1} is incomplete at {self._position(offset)}",
                "each message is one complete JSON object",
            )

    def _consume(self, upto: int) -> None:
        nl = self._buf.count("\n", self._start, upto)
        if nl:
            self._lines += nl
            self._col = upto - (self._buf.rfind("\n", self._start, upto) + 1)
        else:
            self._col += upto - self._start
        self._start = upto
        self._obj = -1

    def _next(self) -> dict[str, Any] | None:
        buf = self._buf
        if self._obj < 0:
            m = _NON_WS.search(buf, self._start)
            if m is None:
                return None
            i = m.start()
            if buf[i] != "{":
                raise RequestDataError(
                    f"request data: expected a JSON object at {self._position(i)}, "
                    f"found {buf[i : i + 12]!r}",
                    "DATA is JSON objects, concatenated or one per line: -d '{\"name\": \"x\"}'",
                )
            self._obj, self._scan, self._depth, self._in_str = i, i, 0, False
            fresh = True
        else:
            fresh = False
        i = self._obj
        # A fresh object is usually complete: decode at C speed first. Once an
        # object is known to be incomplete, decode only when its brackets balance.
        if not fresh and not self._closes():
            return None  # wait for more input
        try:
            obj, end = _DECODER.raw_decode(buf, i)
        except json.JSONDecodeError as e:
            if fresh and not self._closes():
                return None  # wait for more input
            raise RequestDataError(
                f"request data: invalid JSON in message {self.count + 1} at "
                f"{self._position(e.pos)}: {e.msg}",
            ) from None
        except RecursionError:
            raise RequestDataError(
                f"request data: message {self.count + 1} is nested too deeply"
            ) from None
        self._consume(end)
        self.count += 1
        return obj  # type: ignore[no-any-return]

    def _closes(self) -> bool:
        """Resume scanning the current object; True once its brackets balance."""
        buf, pos, depth, in_str = self._buf, self._scan, self._depth, self._in_str
        n = len(buf)
        done = False
        while pos < n:
            if in_str:
                m = _IN_STRING.search(buf, pos)
                if m is None:
                    pos = n
                    break
                pos = m.start()
                if buf[pos] == "\\":
                    if pos + 1 >= n:
                        break  # the escaped character has not arrived yet
                    pos += 2
                    continue
                in_str = False
                pos += 1
                continue
            m = _STRUCTURAL.search(buf, pos)
            if m is None:
                pos = n
                break
            pos = m.start()
            c = buf[pos]
            pos += 1
            if c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
            else:
                depth -= 1
                if depth <= 0:
                    done = True
                    break
        self._scan, self._depth, self._in_str = pos, depth, in_str
        return done


_NON_WS = re.compile(r"[^ \t\r\n]")
_STRUCTURAL = re.compile(r'["{}\[\]]')
_IN_STRING = re.compile(r'["\\]')
# Bytes that were not UTF-8, as Python's surrogateescape error handler keeps them.
_SURROGATE = re.compile("[\udc80-\udcff]")


def parse_messages(text: str) -> list[dict[str, Any]]:
    """All messages in TEXT (validated JSON syntax), or RequestDataError."""
    reader = JsonStreamReader()
    out = list(reader.feed(text))
    reader.close()
    return out


def iter_messages(
    lines: Iterable[str], *, not_utf8: str | None = None
) -> Iterator[dict[str, Any]]:
    """Messages from a stream of text as each completes (for interactive @-)."""
    reader = JsonStreamReader(not_utf8=not_utf8)
    for chunk in lines:
        yield from reader.feed(chunk)
    reader.close()


CHUNK = 65536


def decode_chunks(read: Callable[[int], bytes], size: int = CHUNK) -> Iterator[str]:
    """Text from a binary reader, a chunk at a time, as the bytes arrive.

    `read(size)` returns what is available (os.read on a pipe or terminal: a
    typed line comes through at once; a file: up to size). Bytes that are not
    UTF-8 come through as surrogates, which JsonStreamReader reports with the
    message they are in.
    """
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
    while True:
        data = read(size)
        if not data:
            break
        text = decoder.decode(data)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def to_message(
    obj: dict[str, Any], cls: type[Message], *, index: int = 1, allow_unknown: bool = False
) -> Message:
    """A JSON object as a message of cls; errors name the message and field, on one line."""
    fast = _fast_message(obj, cls)
    if fast is not None:
        return fast
    return _to_message_slow(obj, cls, index=index, allow_unknown=allow_unknown)


def _to_message_slow(
    obj: dict[str, Any], cls: type[Message], *, index: int = 1, allow_unknown: bool = False
) -> Message:
    """to_message through json_format alone (what the fast path must equal)."""
    from google.protobuf import json_format

    msg = cls()
    try:
        _check_fields(obj, msg.DESCRIPTOR, "")
        json_format.ParseDict(obj, msg, ignore_unknown_fields=allow_unknown)
    except _FieldError as e:
        raise RequestDataError(f"request data: message {index}: field {e.path}: {e.problem}") from None
    except RecursionError:
        raise RequestDataError(f"request data: message {index} is nested too deeply") from None
    except (json_format.ParseError, ValueError, TypeError, OverflowError) as e:
        # Say it in crgrpc's words (json_format's are Python's); only now, so good
        # data costs nothing more.
        from .datacheck import first_problem

        found = first_problem(obj, msg.DESCRIPTOR)
        if found is not None:
            path, problem = found
            raise RequestDataError(f"request data: message {index}: field {path}: {problem}") from None
        if isinstance(e, json_format.ParseError):
            raise _parse_error(e, msg, index, allow_unknown) from None
        raise RequestDataError(f"request data: message {index}: {one_line(str(e))}") from None
    return msg


_PARSE_PREFIX = re.compile(r"^Failed to parse (\w+) field: ")
_NO_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "((?:[^"\\]|\\.)*)"')


def _parse_error(e: Exception, msg: Message, index: int, allow_unknown: bool) -> RequestDataError:
    """protobuf's nested "Failed to parse a field: Failed to parse b field: …" as one line."""
    text = str(e).split("\n", 1)[0]
    path: list[str] = []
    while True:
        m = _PARSE_PREFIX.match(text)
        if m is None:
            break
        path.append(m.group(1))
        text = text[m.end() :]
    text = text.rstrip(".") + "."
    hint = ""
    unknown = _NO_FIELD.search(text)
    if unknown is not None:
        type_name, field = unknown.group(1), unknown.group(2)
        desc = _find_message(msg, type_name)
        fields = ", ".join(f.json_name for f in desc.fields) if desc is not None else ""
        text = f"unknown field {field!r} in {type_name}"
        hint = f"fields of {type_name}: {fields or '(none)'}"
        if not allow_unknown:
            hint += "; --allow-unknown-fields skips unknown ones"
    where = f"field {_show_path(path)}: " if path else ""
    return RequestDataError(f"request data: message {index}: {where}{one_line(text)}", hint)


def _find_message(msg: Message, full_name: str) -> Any:
    if msg.DESCRIPTOR.full_name == full_name:
        return msg.DESCRIPTOR
    try:
        return msg.DESCRIPTOR.file.pool.FindMessageTypeByName(full_name)
    except KeyError:
        return None


def _show_path(parts: list[str]) -> str:
    if len(parts) > 6:
        return ".".join([*parts[:3], f"…({len(parts) - 5} more)…", *parts[-2:]])
    return ".".join(parts)


class _FieldError(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


# proto3 JSON: bytes are base64, standard or URL-safe alphabet, padding optional.
_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def _check_base64(value: Any, path: str) -> None:
    if not isinstance(value, str):
        raise _FieldError(path, f"expected a base64 string, got {_json_type(value)}")
    text = value.strip()
    body = text.rstrip("=")
    padded_ok = "=" not in text or len(text) % 4 == 0
    if not _BASE64.match(text) or len(body) % 4 == 1 or not padded_ok:
        shown = text if len(text) <= 24 else text[:21] + "…"
        raise _FieldError(path, f"invalid base64 {shown!r}")


def _json_type(value: Any) -> str:
    from .datacheck import json_type

    return json_type(value)


def _check_fields(obj: Any, desc: Any, path: str) -> None:
    """What json_format lets through or reports badly: bytes must be strict base64,
    messages objects. Everything else is left to json_format."""
    if not isinstance(obj, dict):
        return
    by_name = _FIELDS_BY_NAME.get(desc)
    if by_name is None:
        by_name = _FIELDS_BY_NAME[desc] = _checked_fields(desc)
    if not by_name:
        return
    for key, value in obj.items():
        f = by_name.get(key)
        if f is None or value is None:
            continue
        where = f"{path}.{f.name}" if path else f.name
        mt = f.message_type
        if mt is not None and mt.GetOptions().map_entry:
            if isinstance(value, dict):
                vf = mt.fields_by_name["value"]
                for k, v in value.items():
                    _check_single(vf, v, f"{where}[{k!r}]")
            continue
        if f.is_repeated:
            if isinstance(value, list):
                for i, v in enumerate(value):
                    _check_single(f, v, f"{where}[{i}]")
            continue
        _check_single(f, value, where)


_FIELDS_BY_NAME: dict[Any, dict[str, Any]] = {}


def _checked_fields(desc: Any) -> dict[str, Any]:
    """The fields _check_single looks at, by proto and JSON name (once per type)."""
    from google.protobuf.descriptor import FieldDescriptor as fd

    out: dict[str, Any] = {}
    for f in desc.fields:
        if f.type in (fd.TYPE_BYTES, fd.TYPE_STRING, fd.TYPE_MESSAGE, fd.TYPE_ENUM):
            out[f.name] = f
            out[f.json_name] = f
    return out


def is_utf8_text(text: str) -> bool:
    """False for text with a lone surrogate (a \\ud800 escape, or a byte that was not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_single(f: Any, value: Any, path: str) -> None:
    if value is None:
        return
    if f.type == f.TYPE_BYTES:
        _check_base64(value, path)
    elif f.type == f.TYPE_STRING:
        if not isinstance(value, str):
            raise _FieldError(path, f"expected a string, got {_json_type(value)}")
    elif f.type == f.TYPE_ENUM:
        # What json_format must not see: text that is not UTF-8 (a lone surrogate, from
        # a \ud800 escape or an invalid byte: upb's enum lookup then leaves Python in a
        # broken state), and numbers that are not whole (it takes 1.5 as 1, and fails on
        # NaN or infinity in Python's words).
        if (isinstance(value, str) and not is_utf8_text(value)) or (
            isinstance(value, float) and not value.is_integer()
        ):
            from .datacheck import enum_problem

            problem = enum_problem(f, value)
            if problem is not None:
                raise _FieldError(path, problem)
    elif f.type == f.TYPE_MESSAGE:
        full = f.message_type.full_name
        if full == "google.protobuf.BytesValue":
            _check_base64(value, path)
        elif full in JSON_FORM_TYPES:
            return  # these well-known types have JSON forms of their own
        elif not isinstance(value, dict):
            raise _FieldError(path, f"expected an object for {full}, got {_json_type(value)}")
        else:
            _check_fields(value, f.message_type, path)


def to_json(msg: Message, *, emit_defaults: bool = False, proto_names: bool = False) -> dict[str, Any]:
    if not emit_defaults:
        return (_BY_PROTO_NAME if proto_names else _BY_JSON_NAME).to_json(msg)
    from google.protobuf import json_format

    return json_format.MessageToDict(
        msg,
        always_print_fields_with_no_presence=emit_defaults,
        preserving_proto_field_name=proto_names,
    )


class JsonWriter:
    """Messages as JSON objects, the same as json_format.MessageToDict, faster.

    This runs once per response message. Each message type gets a plan once:
    its fields of plain kinds (strings, bytes, numbers, booleans, messages of
    such fields, repeated or not) are read straight from ListFields(); a type
    with anything else (enums, maps, well-known types, extensions) is handed
    to json_format whole. tests/test_codec_json.py holds both to the same output.
    """

    def __init__(self, *, proto_names: bool = False) -> None:
        self.proto_names = proto_names
        self._plans: dict[Any, Any] = {}  # descriptor → plan, or None: json_format

    def to_json(self, msg: Message) -> dict[str, Any]:
        plan = self._plan(msg.DESCRIPTOR)
        if plan is None:
            from google.protobuf import json_format

            return json_format.MessageToDict(msg, preserving_proto_field_name=self.proto_names)
        out: dict[str, Any] = {}
        for field, value in msg.ListFields():
            name, conv, repeated = plan[field.number]
            if repeated:
                out[name] = [conv(v) for v in value] if conv is not None else list(value)
            else:
                out[name] = conv(value) if conv is not None else value
        return out

    def _plan(self, desc: Any) -> Any:
        try:
            return self._plans[desc]
        except KeyError:
            pass
        plan = self._make_plan(desc)
        self._plans[desc] = plan
        return plan

    def _make_plan(self, desc: Any) -> dict[int, tuple[str, Any, bool]] | None:
        if desc.full_name.startswith("google.protobuf.") or desc.extension_ranges:
            return None
        from google.protobuf.descriptor import FieldDescriptor as fd

        plan: dict[int, tuple[str, Any, bool]] = {}
        for f in desc.fields:
            conv: Any
            t = f.cpp_type
            if t == fd.CPPTYPE_MESSAGE:
                if f.message_type.GetOptions().map_entry:
                    return None
                conv = self.to_json  # its own plan, or json_format for it
            elif t == fd.CPPTYPE_ENUM:
                return None
            elif t == fd.CPPTYPE_STRING:
                conv = _b64 if f.type == fd.TYPE_BYTES else None
            elif t in (fd.CPPTYPE_INT64, fd.CPPTYPE_UINT64):
                conv = str
            elif t == fd.CPPTYPE_DOUBLE:
                conv = _double
            elif t == fd.CPPTYPE_FLOAT:
                conv = _float
            else:  # int32, uint32, bool: as they are
                conv = None
            name = f.name if self.proto_names else f.json_name
            plan[f.number] = (name, conv, f.is_repeated)
        return plan



def _b64(value: bytes) -> str:
    import base64

    return base64.b64encode(value).decode("ascii")


def _double(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _float(value: float) -> Any:
    special = _double(value)
    if special is not value:
        return special
    from google.protobuf.internal import type_checkers

    return type_checkers.ToShortestFloat(value)


_INF = float("inf")
_BY_JSON_NAME = JsonWriter()
_BY_PROTO_NAME = JsonWriter(proto_names=True)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
try:  # the C encoder itself, without JSONEncoder.encode's Python layers per call
    from json.encoder import c_make_encoder as _c_make_encoder  # type: ignore[attr-defined]
    from json.encoder import encode_basestring as _encode_basestring

    _C_ENCODE: Any = _c_make_encoder(
        None, _COMPACT.default, _encode_basestring, None, ":", ",", False, False, True
    ) if _c_make_encoder is not None else None
except ImportError:  # pragma: no cover - CPython always has it
    _C_ENCODE = None


def dumps(obj: Any) -> str:
    """Compact JSON, one line (one encoder, built once: this runs per message)."""
    if _C_ENCODE is not None and type(obj) is dict:
        return "".join(_C_ENCODE(obj, 0))
    return _COMPACT.encode(obj)


# --- JSON → message, fast ------------------------------------------------------------------
#
# json_format.ParseDict is pure Python and costs more per message than sending
# it. For the plain cases, the fast path below sets fields directly: strings
# from str, integers from int (not bool), booleans from bool, doubles from
# finite numbers, messages from objects, repeated fields from lists of those.
# Anything else (null, enums, bytes, floats, maps, oneofs, well-known types,
# unknown names, a value out of range) gives up and the message is converted
# again by json_format from scratch, so results and error messages are
# exactly json_format's (tests/test_codec_json.py compares them).

_PLAIN = object()  # a type without a fast plan
_MESSAGE = FieldDescriptor.CPPTYPE_MESSAGE
_DOUBLE = FieldDescriptor.CPPTYPE_DOUBLE
# cpp type → the Python type the fast path takes (integers: int; the message checks the range)
_PLAIN_TYPE: dict[int, type] = {
    FieldDescriptor.CPPTYPE_STRING: str,
    FieldDescriptor.CPPTYPE_BOOL: bool,
    FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_INT64: int,
    FieldDescriptor.CPPTYPE_UINT32: int,
    FieldDescriptor.CPPTYPE_UINT64: int,
}


class _GiveUp(Exception):
    pass


_PARSE_PLANS: dict[Any, Any] = {}


def _parse_plan(desc: Any) -> dict[str, tuple[str, int, bool, Any]] | None:
    plan = _PARSE_PLANS.get(desc, _PLAIN)
    if plan is not _PLAIN:
        return plan  # type: ignore[no-any-return]
    from google.protobuf.descriptor import FieldDescriptor as fd

    built: dict[str, tuple[str, int, bool, Any]] | None = {}
    if desc.full_name.startswith("google.protobuf.") or desc.extension_ranges:
        built = None
    else:
        assert built is not None
        for f in desc.fields:
            if f.containing_oneof is not None:
                continue  # json_format checks oneofs: those keys give up
            t = f.cpp_type
            if t == fd.CPPTYPE_STRING and f.type == fd.TYPE_BYTES:
                continue
            if t == fd.CPPTYPE_MESSAGE and f.message_type.GetOptions().map_entry:
                continue
            if t in (fd.CPPTYPE_ENUM, fd.CPPTYPE_FLOAT):
                continue
            entry = (f.name, t, f.is_repeated, f.message_type)
            built[f.json_name] = entry
            built.setdefault(f.name, entry)
    _PARSE_PLANS[desc] = built
    return built


def _fast_message(obj: dict[str, Any], cls: type[Message]) -> Message | None:
    msg = cls()
    try:
        _fill(msg, obj)
    except (_GiveUp, ValueError, TypeError, AttributeError, OverflowError):
        return None
    return msg


def _fill(msg: Any, obj: Any) -> None:
    if type(obj) is not dict:
        raise _GiveUp
    plan = _parse_plan(msg.DESCRIPTOR)
    if plan is None:
        raise _GiveUp
    seen: set[str] = set()
    for key, value in obj.items():
        entry = plan.get(key)
        if entry is None:
            raise _GiveUp
        name, t, repeated, _ = entry
        if name in seen:
            raise _GiveUp  # the same field twice (name and JSON name): json_format says so
        seen.add(name)
        if repeated:
            if type(value) is not list:
                raise _GiveUp
            target = getattr(msg, name)
            if t == _MESSAGE:
                for item in value:
                    _fill(target.add(), item)
            else:
                for item in value:
                    _check_plain(t, item)
                target.extend(value)
        elif t == _MESSAGE:
            sub = getattr(msg, name)
            sub.SetInParent()
            _fill(sub, value)
        else:
            _check_plain(t, value)
            setattr(msg, name, value)


def _check_plain(t: int, value: Any) -> None:
    """value is of the one Python type the fast path takes for cpp type t."""
    vt = type(value)
    if vt is not _PLAIN_TYPE.get(t) and not (t == _DOUBLE and vt is int):
        raise _GiveUp
    if vt is float and not math.isfinite(value):
        raise _GiveUp
