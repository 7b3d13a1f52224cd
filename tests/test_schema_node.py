"""grpc-node's @grpc/reflection: recorded answers replayed, and the live Node server.

grpc-node sends files combined per package ("shop_v1.proto"), without
dependency lists, with relative type names ("Kind", "common.Money"), map
entries named after the field, proto3 optional as a plain "_x" oneof, and
its own copies of well-known types (grpc-node issues 3018 and 3034). The
schema must come out the same as compiling the .proto files.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, json_format, message_factory

from cloudrun_grpc_cli.core.schema import (
    SchemaSource,
    proto_source,
    protoset_source,
    resolve_method,
    to_proto_text,
    write_protoset,
)
from tests.support.node import NODE_DIR, node_modules_fixture  # noqa: F401
from tests.support.reflection_servers import (
    NODE_RECORDING,
    PROTOS,
    REPO,
    ReflectionServer,
    load_recording,
    source_for,
    start_replay_server,
    strip_comments,
)

SYMBOLS = [
    "echo.EchoServer",
    "echo.EchoRequest",
    "shop.v1.Catalog",
    "shop.v1.Greeter",
    "shop.v1.Product",
    "shop.v1.Product.Variant",
    "shop.v1.Product.Kind",
    "shop.v1.Status",
    "shop.v1.ListProductsRequest",
    "shop.v1.ImportSummary",
    "shop.common.Money",
    "shop.v1.Catalog.SyncProducts",
    "shop.v1.Product.labels",
    "shop.v1.Product.variants_by_sku",
    "shop.v1.Product.description",
]


@pytest.fixture(scope="module")
def compiled() -> SchemaSource:
    return proto_source(
        [REPO / "protos" / "echo.proto", PROTOS / "shop" / "v1" / "catalog.proto"],
        [REPO / "protos", PROTOS],
    )


@pytest.fixture
def replay() -> Iterator[ReflectionServer]:
    srv = start_replay_server()
    yield srv
    srv.stop()


def assert_same_schema(src: SchemaSource, compiled: SchemaSource) -> None:
    assert src.list_services() == compiled.list_services()
    for name in SYMBOLS:
        assert to_proto_text(src.find_symbol(name)) == strip_comments(
            to_proto_text(compiled.find_symbol(name))
        ), name
    for text in ["SayHelloBidi", "Catalog/GetProduct", "shop.v1.Greeter.SayHello"]:
        assert resolve_method(src, text).full_name == resolve_method(compiled, text).full_name


def test_recording_is_present_and_raw() -> None:
    recorded = load_recording(NODE_RECORDING)
    assert len(recorded) > 20
    # The recording really holds grpc-node's quirks (no dependency lists, relative names).
    from grpc_reflection.v1alpha import reflection_pb2

    files = []
    for data in recorded.values():
        resp = reflection_pb2.ServerReflectionResponse.FromString(data)
        files += [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in resp.file_descriptor_response.file_descriptor_proto
        ]
    shop = next(f for f in files if f.package == "shop.v1")
    assert shop.name == "shop_v1.proto"
    assert not shop.dependency
    assert any(
        fl.type_name == "common.Money"
        for m in shop.message_type
        for n in m.nested_type
        for fl in n.field
    )


def test_replayed_node_schema_matches_compiled_protos(
    replay: ReflectionServer, compiled: SchemaSource
) -> None:
    assert_same_schema(source_for(replay), compiled)


def test_replayed_node_repairs(replay: ReflectionServer) -> None:
    src = source_for(replay)
    product = src.find_symbol("shop.v1.Product")
    fds = src.file_descriptor_set()
    by_name = {f.name: f for f in fds.file}
    shop = by_name["shop_v1.proto"]
    # dependencies inferred; well-known types from the runtime, node's copy dropped
    assert set(shop.dependency) == {
        "shop_common.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/struct.proto",
    }
    assert "google_protobuf.proto" not in by_name
    # names qualified, map entries renamed, proto3 optional flagged
    fields = {f.name: f for f in shop.message_type[0].field}
    assert fields["kind"].type_name == ".shop.v1.Product.Kind"
    assert fields["labels"].type_name == ".shop.v1.Product.LabelsEntry"
    assert fields["variants_by_sku"].type_name == ".shop.v1.Product.VariantsBySkuEntry"
    assert fields["description"].proto3_optional
    # message classes work, with the runtime's well-known types (JSON forms)
    cls = message_factory.GetMessageClass(product)
    msg = json_format.ParseDict(
        {
            "labels": {"k": "v"},
            "created": "2024-05-06T07:08:09Z",
            "attributes": {"a": [1, "b"]},
            "description": "",
            "variantsBySku": {"s": {"price": {"units": "5"}}},
        },
        cls(),
    )
    assert msg.HasField("description")
    again = json_format.MessageToDict(msg)
    assert again["created"] == "2024-05-06T07:08:09Z"
    assert again["attributes"] == {"a": [1, "b"]}


def test_replayed_protoset_out_round_trips(
    replay: ReflectionServer, tmp_path: Path, compiled: SchemaSource
) -> None:
    src = source_for(replay)
    for name in SYMBOLS:
        src.find_symbol(name)
    out = tmp_path / "node.protoset"
    write_protoset(src, out)
    assert_same_schema(protoset_source([out]), compiled)


@pytest.mark.node
def test_live_node_server(compiled: SchemaSource, node_modules: Path) -> None:
    # node_modules: installed by `npm ci` on first use; skipped only without node or npm
    proc = subprocess.Popen(
        ["node", str(NODE_DIR / "server.js"), "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        address = line.removeprefix("listening on ")

        import grpc

        from cloudrun_grpc_cli.core.schema import reflection_source

        src = reflection_source(
            grpc.insecure_channel(address), metadata=list, timeout=10, address=address
        )
        assert_same_schema(src, compiled)
        assert src.version == "v1"
        # and a call through the reflected descriptors works
        method = resolve_method(src, "echo.EchoServer/SayHello")
        req_cls = message_factory.GetMessageClass(method.input_type)
        rep_cls = message_factory.GetMessageClass(method.output_type)
        call = grpc.insecure_channel(address).unary_unary(
            "/echo.EchoServer/SayHello",
            request_serializer=req_cls.SerializeToString,
            response_deserializer=rep_cls.FromString,
        )
        reply = call(req_cls(name="node"), timeout=10)
        assert reply.message == "Hello node from node"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
