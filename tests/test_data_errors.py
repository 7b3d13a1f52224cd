"""Request-data errors in crgrpc's own words for every field type (issue 11, item 11),
never Python's ("invalid literal for int() with base 10") nor protobuf's internals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run
from .support.rawgrpc import Reply, raw_grpc

PROTOS = Path(__file__).parent / "data" / "protos"
M = "error: request data: message 1: field "

CASES = [
    ({"i32": "abc"}, 'i32: "abc" is not a whole number (int32)'),
    ({"i32": 1.5}, "i32: 1.5 is not a whole number (int32)"),
    ({"i32": 3000000000}, "i32: 3000000000 is out of range for int32 (-2147483648 to 2147483647)"),
    ({"i64": "x"}, 'i64: "x" is not a whole number (int64)'),
    ({"u32": -1}, "u32: -1 is out of range for uint32 (0 to 4294967295)"),
    ({"u64": "-5"}, 'u64: "-5" is out of range for uint64 (0 to 18446744073709551615)'),
    ({"s32": "q"}, 's32: "q" is not a whole number (sint32)'),
    ({"f64": -1}, "f64: -1 is out of range for fixed64 (0 to 18446744073709551615)"),
    ({"f": "fast"}, 'f: "fast" is not a number (float; "NaN", "Infinity" and "-Infinity" are)'),
    ({"f": 1e300}, "f: 1e+300 is out of range for float (at most about 3.4e38)"),
    ({"d": "NaNx"}, 'd: "NaNx" is not a number (double; "NaN", "Infinity" and "-Infinity" are)'),
    ({"b": "yes"}, 'b: expected true or false, got "yes"'),
    ({"s": 5}, "s: expected a string, got a number"),
    ({"by": "%%%"}, "by: invalid base64 '%%%'"),
    ({"color": "BLUE"}, 'color: "BLUE" is not a value of alltypes.All.Color (one of: COLOR_UNSPECIFIED, RED)'),
    ({"color": 1.5}, "color: 1.5 is not a value of alltypes.All.Color: numbers must be whole"),
    ({"color": float("nan"), "d": ""}, "color: NaN is not a value of alltypes.All.Color: numbers must be whole"),
    ({"color": 1e400}, "color: Infinity is not a value of alltypes.All.Color: numbers must be whole"),
    ({"color": 2147483648}, "color: 2147483648 is out of range for alltypes.All.Color (enum numbers are int32)"),
    ({"color": "\ud800"}, 'color: "\\ud800" is not valid UTF-8 text, so not a value of alltypes.All.Color'),
    ({"color": "RE\udfffD"}, 'color: "RE\\udfffD" is not valid UTF-8 text, so not a value of alltypes.All.Color'),
    ({"ts": "yesterday"}, 'ts: "yesterday" is not a timestamp: write an RFC 3339 time, like "2024-01-02T03:04:05Z" or "2024-01-02T03:04:05.5+01:00"'),
    ({"ts": "2024-13-01T00:00:00Z"}, 'ts: "2024-13-01T00:00:00Z" is not a valid date and time (month must be in 1..12)'),
    ({"dur": "5 minutes"}, 'dur: "5 minutes" is not a duration: write seconds with an s, like "1.5s" or "300s"'),
    ({"dur": 5}, 'dur: 5 is not a duration: write seconds with an s, like "1.5s" or "300s"'),
    ({"w32": "x"}, 'w32: "x" is not a whole number (int32)'),
    ({"ws": 3}, "ws: expected a string, got a number"),
    ({"wb": "maybe"}, 'wb: expected true or false, got "maybe"'),
    ({"counts": {"a": "x"}}, 'counts["a"]: "x" is not a whole number (int32)'),
    ({"counts": [1]}, "counts: expected an object (a map), got an array"),
    ({"names": {"x": "y"}}, 'names: map key "x": "x" is not a whole number (int32)'),
    ({"a": "1", "n": 2}, "n: a and n are both set, but they are alternatives (oneof pick): set one"),
    ({"nums": "1,2"}, "nums: expected an array, got a string"),
    ({"nums": [1, "a"]}, 'nums[1]: "a" is not a whole number (int32)'),
    ({"child": {"child": {"i32": "z"}}}, 'child.child.i32: "z" is not a whole number (int32)'),
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with raw_grpc(Reply()) as srv:
        yield srv.address


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_bad_values_in_crgrpcs_words(server: str, data: dict, expected: str) -> None:
    import json

    r = run(
        "call", "--plaintext", server, "alltypes.Types/Echo", "--proto", str(PROTOS / "alltypes" / "alltypes.proto"),
        "-I", str(PROTOS), "-d", json.dumps(data),
    )
    assert r.code == 6
    assert r.stderr == M + expected + "\n"
    assert r.stdout == ""
    for python_words in ("invalid literal", "Couldn't parse", "Value out of range", " at All.", "Failed to parse"):
        assert python_words not in r.stderr
