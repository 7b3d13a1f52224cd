"""Request data errors in crgrpc's own words, for every field type.

protobuf's json_format reports bad values in Python's words ("invalid literal
for int() with base 10") or its own internals ("at M.i32"). When it refuses
a message, `first_problem` walks the same JSON against the descriptor and
says what is wrong the way a user thinks of it: the field's path, the value,
and what the field takes. It runs only after json_format failed, so the
per-message cost of good data is nothing.
"""

from __future__ import annotations

import math
import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from .codec import is_utf8_text
from .schema.wellknown import WRAPPER_TYPES

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: ("sint32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: ("sfixed32", -(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: ("sint64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: ("sfixed64", -(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: ("uint32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: ("fixed32", 0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: ("uint64", 0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: ("fixed64", 0, 2**64 - 1),
}
_FLOAT_MAX = 3.4028234663852886e38
_FLOAT_WORDS = {"NaN", "Infinity", "-Infinity"}
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_ANY_JSON = {"google.protobuf.Value", "google.protobuf.Struct", "google.protobuf.ListValue",
             "google.protobuf.Any", "google.protobuf.FieldMask", "google.protobuf.Empty"}


def _escaped(text: str) -> str:
    """text as JSON with \\u escapes (a lone surrogate cannot be printed), cut short."""
    import json

    out = json.dumps(text)
    return out if len(out) <= 42 else out[:40] + '…"'


def shown(value: Any) -> str:
    """A JSON value as the user wrote it, cut short."""
    import json

    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        value = int(value)  # 1e10 reads as 10000000000, not 10000000000.0
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else "null" if value is None else type(value).__name__


def first_problem(obj: Any, desc: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, what is wrong) for the first bad value in obj, or None."""
    if not isinstance(obj, dict):
        return (path or "(message)", f"expected an object for {desc.full_name}, got {json_type(obj)}")
    by_name: dict[str, Any] = {}
    for f in desc.fields:
        by_name[f.name] = f
        by_name[f.json_name] = f
    oneofs: dict[str, str] = {}
    for key, value in obj.items():
        f = by_name.get(key)
        if f is None or value is None:
            continue
        where = f"{path}.{f.name}" if path else f.name
        group = f.containing_oneof
        if group is not None and not group.name.startswith("_"):
            if group.name in oneofs:
                return (
                    where,
                    f"{oneofs[group.name]} and {f.name} are both set, but they are alternatives "
                    f"(oneof {group.name}): set one",
                )
            oneofs[group.name] = f.name
        mt = f.message_type
        if mt is not None and mt.GetOptions().map_entry:
            found = _map(mt, value, where)
        elif f.is_repeated:
            if not isinstance(value, list):
                found = (where, f"expected an array, got {json_type(value)}")
            else:
                found = next(
                    (p for i, v in enumerate(value) if (p := _single(f, v, f"{where}[{i}]"))), None
                )
        else:
            found = _single(f, value, where)
        if found is not None:
            return found
    return None


def _map(entry: Any, value: Any, where: str) -> tuple[str, str] | None:
    if not isinstance(value, dict):
        return (where, f"expected an object (a map), got {json_type(value)}")
    kf, vf = entry.fields_by_name["key"], entry.fields_by_name["value"]
    for k, v in value.items():
        if kf.type in _INT_RANGES:
            problem = _integer(kf, k)
            if problem is not None:
                return (where, f"map key {shown(k)}: {problem}")
        elif kf.type == FieldDescriptor.TYPE_BOOL and k not in ("true", "false"):
            return (where, f"map key {shown(k)}: a bool key is \"true\" or \"false\"")
        found = _single(vf, v, f"{where}[{shown(k)}]")
        if found is not None:
            return found
    return None


def _single(f: Any, value: Any, where: str) -> tuple[str, str] | None:
    problem = _value_problem(f, value, where)
    if isinstance(problem, tuple):
        return problem
    return (where, problem) if problem else None


def _value_problem(f: Any, value: Any, where: str) -> str | tuple[str, str] | None:
    if value is None:
        return None
    t = f.type
    if t in _INT_RANGES:
        return _integer(f, value)
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return _floating(f, value)
    if t == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            return f"expected true or false, got {shown(value)}"
        return None
    if t == FieldDescriptor.TYPE_STRING:
        return None if isinstance(value, str) else f"expected a string, got {json_type(value)}"
    if t == FieldDescriptor.TYPE_BYTES:
        return None if isinstance(value, str) else f"expected a base64 string, got {json_type(value)}"
    if t == FieldDescriptor.TYPE_ENUM:
        return enum_problem(f, value)
    if t in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
        full = f.message_type.full_name
        if full == "google.protobuf.Timestamp":
            return _timestamp(value)
        if full == "google.protobuf.Duration":
            if not isinstance(value, str) or not _DURATION.match(value):
                return f"{shown(value)} is not a duration: write seconds with an s, like \"1.5s\" or \"300s\""
            return None
        if full in WRAPPER_TYPES:
            return _value_problem(f.message_type.fields_by_name["value"], value, where)
        if full in _ANY_JSON:
            return None
        return first_problem(value, f.message_type, where)
    return None


def _integer(f: Any, value: Any) -> str | None:
    kind, low, high = _INT_RANGES[f.type]
    number: int
    if isinstance(value, bool):
        return f"expected a whole number ({kind}), got {shown(value)}"
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            return f"{shown(value)} is not a whole number ({kind})"
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                as_float = float(text)
            except ValueError:
                return f"{shown(value)} is not a whole number ({kind})"
            if not math.isfinite(as_float) or as_float != int(as_float):
                return f"{shown(value)} is not a whole number ({kind})"
            number = int(as_float)
    else:
        return f"expected a whole number ({kind}), got {json_type(value)}"
    if not low <= number <= high:
        return f"{shown(value)} is out of range for {kind} ({low} to {high})"
    return None


def _floating(f: Any, value: Any) -> str | None:
    kind = "float" if f.type == FieldDescriptor.TYPE_FLOAT else "double"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return f"expected a number ({kind}), got {json_type(value)}"
    if isinstance(value, str):
        if value in _FLOAT_WORDS:
            return None
        try:
            number = float(value)
        except ValueError:
            return f"{shown(value)} is not a number ({kind}; \"NaN\", \"Infinity\" and \"-Infinity\" are)"
    else:
        number = float(value)
    if kind == "float" and math.isfinite(number) and abs(number) > _FLOAT_MAX:
        return f"{shown(value)} is out of range for float (at most about 3.4e38)"
    return None


def enum_problem(f: Any, value: Any) -> str | None:
    enum = f.enum_type
    names = [v.name for v in enum.values]
    listed = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    if isinstance(value, str):
        if not is_utf8_text(value):  # before the lookup: upb's breaks on a lone surrogate
            return f"{_escaped(value)} is not valid UTF-8 text, so not a value of {enum.full_name}"
        if value in enum.values_by_name:
            return None
        return f"{shown(value)} is not a value of {enum.full_name} (one of: {listed})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a value of {enum.full_name} (one of: {listed}), got {json_type(value)}"
    if isinstance(value, float) and not value.is_integer():  # 1.5, NaN, infinities
        return f"{shown(value)} is not a value of {enum.full_name}: numbers must be whole"
    if not -(2**31) <= int(value) < 2**31:
        return f"{shown(value)} is out of range for {enum.full_name} (enum numbers are int32)"
    return None


def _timestamp(value: Any) -> str | None:
    hint = 'write an RFC 3339 time, like "2024-01-02T03:04:05Z" or "2024-01-02T03:04:05.5+01:00"'
    if not isinstance(value, str):
        return f"{shown(value)} is not a timestamp: {hint}"
    m = _TIMESTAMP.match(value)
    if m is None:
        return f"{shown(value)} is not a timestamp: {hint}"
    import datetime as dt

    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:
        dt.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError as e:
        return f"{shown(value)} is not a valid date and time ({e})"
    if not 1 <= year <= 9999:
        return f"{shown(value)} is outside the years 0001 to 9999"
    return None
