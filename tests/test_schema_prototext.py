"""to_proto_text: exact proto source text for services, methods, messages, enums."""

from __future__ import annotations

import pytest

from cloudrun_grpc_cli.core.schema import SchemaSource, proto_source, to_proto_text
from tests.support.reflection_servers import PROTOS, REPO


@pytest.fixture(scope="module")
def echo() -> SchemaSource:
    return proto_source([REPO / "protos" / "echo.proto"], [REPO / "protos"])


@pytest.fixture(scope="module")
def shop() -> SchemaSource:
    return proto_source(
        [PROTOS / "shop" / "v1" / "catalog.proto", PROTOS / "legacy" / "legacy.proto"], [PROTOS]
    )


def text(src: SchemaSource, name: str) -> str:
    return to_proto_text(src.find_symbol(name))


def test_echo_service_with_comments(echo: SchemaSource) -> None:
    assert (
        text(echo, "echo.EchoServer")
        == """\
service EchoServer {
  // Unary: one request, one reply.
  rpc SayHello(echo.EchoRequest) returns (echo.EchoReply);
  // Server streaming: `count` replies (default 2).
  rpc SayHelloStream(echo.EchoRequest) returns (stream echo.EchoReply);
  // Client streaming: many requests, one reply naming them all.
  rpc SayHelloClientStream(stream echo.EchoRequest) returns (echo.EchoReply);
  // Bidirectional streaming: one reply per request, as each arrives.
  rpc SayHelloBidi(stream echo.EchoRequest) returns (stream echo.EchoReply);
}"""
    )


def test_echo_method_and_messages(echo: SchemaSource) -> None:
    assert text(echo, "echo.EchoServer/SayHelloBidi") == (
        "// Bidirectional streaming: one reply per request, as each arrives.\n"
        "rpc SayHelloBidi(stream echo.EchoRequest) returns (stream echo.EchoReply);"
    )
    assert text(echo, "echo.EchoReply") == "message EchoReply {\n  string message = 1;\n}"
    assert (
        text(echo, "echo.EchoRequest")
        == """\
message EchoRequest {
  string name = 1;
  // Replies a stream sends (default 2).
  int32 count = 2;
  // Fail the call with this gRPC status code (0: succeed).
  int32 fail_code = 3;
  // On streams: fail after this many messages.
  int32 fail_after = 4;
}"""
    )
    assert text(echo, "echo.EchoRequest.count") == (
        "// Replies a stream sends (default 2).\nint32 count = 2;"
    )


def test_rich_message(shop: SchemaSource) -> None:
    assert (
        text(shop, "shop.v1.Product")
        == """\
// A product in the catalog.
message Product {
  string id = 1;
  string name = 2;
  shop.v1.Product.Kind kind = 3;
  repeated shop.v1.Product.Variant variants = 4;
  map<string, string> labels = 5;
  oneof availability {
    int32 stock = 6;
    google.protobuf.Timestamp available_from = 7;
  }
  optional string description = 8;
  google.protobuf.Timestamp created = 9;
  google.protobuf.Struct attributes = 10;
  string legacy_code = 11 [deprecated = true];
  map<string, shop.v1.Product.Variant> variants_by_sku = 12;

  // One sellable variant of a product.
  message Variant {
    string sku = 1;
    shop.common.Money price = 2;
  }

  // What kind of thing a product is.
  enum Kind {
    KIND_UNSPECIFIED = 0;
    PHYSICAL = 1;
    DIGITAL = 2;
  }
}"""
    )


def test_enum_and_values(shop: SchemaSource) -> None:
    assert (
        text(shop, "shop.v1.Status")
        == """\
// Order states, a top-level enum.
enum Status {
  STATUS_UNSPECIFIED = 0;
  ACTIVE = 1;
  RETIRED = 2;
}"""
    )
    assert text(shop, "shop.v1.Product.DIGITAL") == "DIGITAL = 2;"
    assert text(shop, "shop.v1.Product.Kind.PHYSICAL") == "PHYSICAL = 1;"


def test_service_with_method_options(shop: SchemaSource) -> None:
    assert text(shop, "shop.v1.Catalog.SyncProducts") == (
        "rpc SyncProducts(stream shop.v1.Product) returns (stream shop.v1.Product) {\n"
        "  option deprecated = true;\n"
        "}"
    )


def test_proto2_features(shop: SchemaSource) -> None:
    assert (
        text(shop, "legacy.Old")
        == """\
message Old {
  required string id = 1;
  optional int32 size = 2 [default = 7];
  optional string label = 3 [default = "none"];
  repeated int32 codes = 4 [packed = true];
  optional string renamed = 5 [json_name = "other"];

  extensions 100 to 199;

  reserved 8, 10 to 12;
  reserved "gone";
}"""
    )
    assert (
        text(shop, "legacy.Mode")
        == """\
enum Mode {
  option allow_alias = true;
  MODE_A = 1;
  MODE_ALIAS = 1;
  MODE_B = 2 [deprecated = true];
}"""
    )
    assert text(shop, "legacy.flagged") == "optional bool flagged = 100;"
