"""Property-based tests: arbitrary input to crgrpc's parsers gives a result or a clean
CrgrpcError (one line, no traceback), never another exception.

Parsers: the JWT decoder, the JSON message-stream reader (whole and in arbitrary
chunks), JSON → protobuf conversion, the TARGET parser, -H headers, and the
METHOD resolver against a fixed schema.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudrun_grpc_cli.cli.call import _method_text
from cloudrun_grpc_cli.core.auth.jwt import DecodedJwt, decode_jwt
from cloudrun_grpc_cli.core.channel import parse_header
from cloudrun_grpc_cli.core.codec import iter_messages, parse_messages, to_message
from cloudrun_grpc_cli.core.schema import SchemaSource, proto_source, resolve_method
from cloudrun_grpc_cli.core.target import Target, parse_target
from cloudrun_grpc_cli.errors import (
    CredentialsError,
    CrgrpcError,
    RequestDataError,
    SchemaError,
    UsageError,
)

from .support.hostile import message_class
from .support.reflection_servers import PROTOS, REPO


def _examples(default: int) -> int:
    """Modest by default; PROPERTY_EXAMPLES=3000 for a long hunt."""
    return int(os.environ.get("PROPERTY_EXAMPLES", default))


FAST = settings(deadline=None, max_examples=_examples(150), suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(deadline=None, max_examples=_examples(60), suppress_health_check=[HealthCheck.too_slow])


def clean(err: CrgrpcError) -> None:
    """A reportable error: one non-empty line, hints one line each."""
    assert err.message and "\n" not in err.message, repr(err.message)
    assert all("\n" not in h for h in err.hints), err.hints


json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)
separators = st.sampled_from(["", " ", "\n", "\r\n", "\t", " \n  "])


# -- JWT decoder ------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@FAST
@given(st.text(max_size=120))
def test_jwt_decoder_on_any_text(text: str) -> None:
    try:
        out = decode_jwt(text)
    except CredentialsError as e:
        clean(e)
    else:
        assert isinstance(out, DecodedJwt)


jwt_part = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.", max_size=40),
    json_values.map(lambda v: _b64(json.dumps(v).encode())),
    st.binary(max_size=40).map(_b64),
)


@FAST
@given(st.lists(jwt_part, min_size=1, max_size=4), st.sampled_from(["", "Bearer ", "bearer  ", " "]))
def test_jwt_decoder_on_jwt_shaped_text(parts: list[str], prefix: str) -> None:
    try:
        out = decode_jwt(prefix + ".".join(parts))
    except CredentialsError as e:
        clean(e)
    else:
        assert isinstance(out.header, dict) and isinstance(out.claims, dict)


# -- the JSON message stream ----------------------------------------------------------------------


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except RequestDataError as e:
        clean(e)
        return "error", e.message


def _chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    out, last = [], 0
    for p in points:
        out.append(text[last:p])
        last = p
    out.append(text[last:])
    return out


@FAST
@given(st.text(max_size=200))
def test_message_reader_on_any_text(text: str) -> None:
    kind, value = _outcome(parse_messages, text)
    if kind == "ok":
        assert all(isinstance(m, dict) for m in value)


@FAST
@given(st.lists(json_objects, max_size=5), separators, st.lists(st.integers(0, 10_000), max_size=12))
def test_message_reader_round_trips_in_any_chunks(objs: list[dict[str, Any]], sep: str, cuts: list[int]) -> None:
    text = sep.join(json.dumps(o, separators=(",", ":") if sep == "" else (", ", ": ")) for o in objs)
    assert parse_messages(text) == objs
    assert list(iter_messages(_chunks(text, cuts))) == objs


@FAST
@given(
    st.text(alphabet='{}[]":,\\ \n0123456789abtrufenl-.', max_size=80),
    st.lists(st.integers(0, 10_000), max_size=10),
)
def test_message_reader_chunking_never_changes_the_answer(text: str, cuts: list[int]) -> None:
    whole = _outcome(parse_messages, text)
    chunked = _outcome(lambda t: list(iter_messages(_chunks(t, cuts))), text)
    # Same messages, or the same error at the same place (the snippet after
    # "found" shows what had arrived so far, which depends on the chunks).
    strip = lambda o: (o[0], o[1].split(", found ")[0] if o[0] == "error" else o[1])  # noqa: E731
    assert strip(chunked) == strip(whole)


@FAST
@given(st.text(alphabet="é☃\udc95\udcff{}\"a", max_size=30))
def test_message_reader_on_undecodable_bytes(text: str) -> None:
    kind, _ = _outcome(parse_messages, text)
    if any("\udc80" <= c <= "\udcff" for c in text):
        assert kind == "error"


# -- JSON → protobuf ---------------------------------------------------------------------------------


SCALAR_FIELDS = ["blob", "i32", "i64", "u32", "color", "nums", "counts", "ratio", "flag", "child", "nope"]


@SLOW
@given(st.dictionaries(st.sampled_from(SCALAR_FIELDS), json_values, max_size=4), st.booleans())
def test_to_message_on_any_values(obj: dict[str, Any], allow_unknown: bool) -> None:
    cls = message_class("Scalars")
    try:
        msg = to_message(obj, cls, allow_unknown=allow_unknown)
    except RequestDataError as e:
        clean(e)
        assert e.message.startswith("request data: message 1")
    else:
        assert isinstance(msg, cls)


@FAST
@given(st.text(max_size=16))
def test_bytes_fields_take_only_base64(text: str) -> None:
    import base64
    import binascii

    cls = message_class("Scalars")
    try:
        msg = to_message({"blob": text}, cls)
    except RequestDataError as e:
        clean(e)
        return
    # Accepted: it really is base64 (either alphabet, padding optional).
    body = text.strip().rstrip("=").replace("-", "+").replace("_", "/")
    try:
        assert msg.blob == base64.b64decode(body + "=" * (-len(body) % 4), validate=True)  # type: ignore[attr-defined]
    except binascii.Error:  # pragma: no cover - would be a bug
        raise AssertionError(f"accepted {text!r}") from None


# -- TARGET and -H ------------------------------------------------------------------------------------


@FAST
@given(st.text(max_size=60), st.booleans())
def test_target_parser_on_any_text(text: str, plaintext: bool) -> None:
    try:
        t = parse_target(text, plaintext=plaintext)
    except UsageError as e:
        clean(e)
    else:
        assert isinstance(t, Target)
        assert t.is_unix or (t.port is not None and 1 <= t.port <= 65535)


target_alphabet = "abcxyz019.-_:/[]@%?#unixhtps "


@FAST
@given(st.text(alphabet=target_alphabet, max_size=40), st.booleans())
def test_target_parser_on_target_shaped_text(text: str, plaintext: bool) -> None:
    test_target_parser_on_any_text.hypothesis.inner_test(text, plaintext)  # type: ignore[attr-defined]


labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@FAST
@given(st.lists(labels, min_size=1, max_size=4), st.integers(1, 65535), st.sampled_from(["", "http://", "https://"]))
def test_target_parser_accepts_good_targets(parts: list[str], port: int, scheme: str) -> None:
    host = ".".join(parts)
    t = parse_target(f"{scheme}{host}:{port}")
    assert (t.host, t.port, t.tls) == (host, port, scheme != "http://")
    again = parse_target(t.address, plaintext=not t.tls)
    assert (again.host, again.port) == (t.host, t.port)


@FAST
@given(st.text(max_size=40))
def test_header_parser_on_any_text(text: str) -> None:
    try:
        name, value = parse_header(text)
    except UsageError as e:
        clean(e)
    else:
        assert name and name == name.lower()
        assert isinstance(value, bytes) == name.endswith("-bin")


# -- METHOD --------------------------------------------------------------------------------------------


@functools.cache
def _schema() -> SchemaSource:
    return proto_source(
        [REPO / "protos" / "echo.proto", PROTOS / "shop" / "v1" / "catalog.proto"],
        [REPO / "protos", PROTOS],
    )


method_alphabet = st.sampled_from(
    ["echo", "EchoServer", "SayHello", "Stream", "shop", "v1", "Catalog", "Greeter", "GetProduct", ".", "/", "x", " ", "é"]
)


# Printable text: a control character in METHOD is echoed raw into the error (below).
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40)


@SLOW
@given(st.one_of(printable, st.lists(method_alphabet, max_size=8).map("".join)))
def test_method_resolver_on_any_text(text: str) -> None:
    try:
        m = resolve_method(_schema(), text)
    except SchemaError as e:
        clean(e)
    else:
        assert m.containing_service is not None


@FAST
@given(st.none() | st.text(max_size=30), st.none() | st.text(max_size=30))
def test_method_text_on_any_input(from_target: str | None, given_text: str | None) -> None:
    try:
        out = _method_text(from_target, given_text)
    except UsageError as e:
        clean(e)
    else:
        assert out and not out.startswith("/")


def test_method_with_a_newline_is_a_one_line_error() -> None:
    try:
        resolve_method(_schema(), "0\n0")
    except SchemaError as e:
        clean(e)
