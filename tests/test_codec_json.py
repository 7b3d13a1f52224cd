"""The fast JSON paths of core/codec.py equal json_format exactly.

`to_message` sets plain fields itself and gives up to json_format for the
rest; `JsonWriter` reads plain fields itself. Property tests drive both with
random JSON over a message type that has every kind of field (and random
junk values), and compare with json_format alone: the same message, or the
same error message; the same JSON object.
"""

from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudrun_grpc_cli.core.codec import JsonWriter, _to_message_slow, dumps, to_json, to_message
from cloudrun_grpc_cli.errors import RequestDataError

PROTO = """
syntax = "proto3";
package kinds;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";

message Inner {
  string s = 1;
  int32 i = 2;
  repeated Inner kids = 3;
}

message All {
  enum Color { COLOR_UNSPECIFIED = 0; RED = 1; }
  string name = 1;
  int32 i32 = 2;
  int64 i64 = 3;
  uint32 u32 = 4;
  uint64 u64 = 5;
  sint32 s32 = 6;
  fixed64 f64 = 7;
  double d = 8;
  float f = 9;
  bool flag = 10;
  bytes blob = 11;
  Color color = 12;
  Inner inner = 13;
  repeated Inner inners = 14;
  repeated string tags = 15;
  repeated int64 longs = 16;
  repeated double ds = 17;
  map<string, int32> counts = 18;
  optional int32 maybe = 19;
  oneof choice { string a = 20; int32 b = 21; }
  google.protobuf.Timestamp when = 22;
  google.protobuf.Int32Value wrapped = 23;
  string last_word = 24;
}
"""


@functools.cache
def all_class() -> Any:
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kinds.proto").write_text(PROTO)
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{tmp}", f"-I{include}", f"--descriptor_set_out={out}",
                "--include_imports", str(Path(tmp) / "kinds.proto")]
        assert protoc.main(args) == 0
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    return GetMessageClass(pool.FindMessageTypeByName("kinds.All"))


junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["RED", "1", "AAAA", "2026-01-01T00:00:00Z", "NaN", "-5", "1e3"]),
)
scalar = st.one_of(junk, st.lists(junk, max_size=3))
inner = st.recursive(
    st.fixed_dictionaries({}, optional={"s": junk, "i": junk}),
    lambda kids: st.fixed_dictionaries({}, optional={"s": junk, "i": junk, "kids": st.lists(kids, max_size=2)}),
    max_leaves=6,
)
KEYS = ["name", "i32", "i64", "u32", "u64", "s32", "f64", "d", "f", "flag", "blob", "color",
        "tags", "longs", "ds", "counts", "maybe", "a", "b", "when", "wrapped", "last_word",
        "lastWord", "unknownField"]
request = st.dictionaries(
    st.sampled_from(KEYS), scalar, max_size=6
) | st.builds(
    lambda d, i, kids: {**d, **({"inner": i} if i is not None else {}), **({"inners": kids} if kids else {})},
    st.dictionaries(st.sampled_from(KEYS), junk, max_size=4), st.none() | inner, st.lists(inner, max_size=2),
)


def outcome(fn: Any, obj: dict[str, Any], allow_unknown: bool) -> tuple[str, Any]:
    try:
        msg = fn(obj, all_class(), index=3, allow_unknown=allow_unknown)
    except RequestDataError as e:
        return "error", (e.message, e.hints)
    return "ok", msg.SerializeToString(deterministic=True)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request, st.booleans())
def test_to_message_equals_json_format(obj: dict[str, Any], allow_unknown: bool) -> None:
    assert outcome(to_message, obj, allow_unknown) == outcome(_to_message_slow, obj, allow_unknown)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request, st.booleans())
def test_writer_equals_message_to_dict(obj: dict[str, Any], proto_names: bool) -> None:
    try:
        msg = _to_message_slow(obj, all_class(), allow_unknown=True)
    except RequestDataError:
        return
    expected = json_format.MessageToDict(msg, preserving_proto_field_name=proto_names)
    assert JsonWriter(proto_names=proto_names).to_json(msg) == expected
    assert to_json(msg, proto_names=proto_names) == expected
    assert dumps(to_json(msg, proto_names=proto_names)) == dumps(expected)


def test_writer_plain_values_exactly() -> None:
    cls = all_class()
    msg = cls(name="é", i64=-(2**62), u64=2**63, d=math.inf, f=0.1, flag=True, blob=b"\xff\x00",
              tags=["x", "y"], longs=[1, -2], ds=[1.5, -math.inf, math.nan])
    msg.inner.kids.add(s="k")
    assert to_json(msg) == {
        "name": "é", "i64": str(-(2**62)), "u64": str(2**63), "d": "Infinity", "f": 0.1,
        "flag": True, "blob": "/wA=", "inner": {"kids": [{"s": "k"}]}, "tags": ["x", "y"],
        "longs": ["1", "-2"], "ds": [1.5, "-Infinity", "NaN"],
    }
    assert to_json(msg) == json_format.MessageToDict(msg)


@pytest.mark.parametrize("obj", [
    {"name": "a", "i32": 5, "inner": {"s": "x", "kids": [{"i": 1}, {}]}, "tags": ["p"], "d": 2},
    {"lastWord": "w", "last_word": "w"},  # the same field twice: json_format's error
    {"i32": 2**31},  # out of range: json_format's error
    {"i32": True},
    {"name": None, "inner": {}},
    {"name": "\udc80"},  # not UTF-8-encodable: json_format's error
])
def test_to_message_cases(obj: dict[str, Any]) -> None:
    assert outcome(to_message, obj, False) == outcome(_to_message_slow, obj, False)
