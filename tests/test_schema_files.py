"""--protoset and --proto sources: same results as reflection; errors name the file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format, message_factory

from cloudrun_grpc_cli.core.schema import (
    SchemaSource,
    method_kind,
    proto_source,
    protoset_source,
    resolve_method,
    symbol_kind,
    to_proto_text,
    write_protoset,
)
from cloudrun_grpc_cli.errors import SchemaError
from tests.support.reflection_servers import (
    PROTOS,
    REPO,
    ReflectionServer,
    compile_protos,
    source_for,
    start_shop_server,
    strip_comments,
)

SHOP = PROTOS / "shop" / "v1" / "catalog.proto"
ECHO = REPO / "protos" / "echo.proto"
SYMBOLS = [
    "echo.EchoServer",
    "echo.EchoServer.SayHelloStream",
    "echo.EchoRequest",
    "shop.v1.Catalog",
    "shop.v1.Product",
    "shop.v1.Product.Kind",
    "shop.v1.Status",
    "shop.common.Money",
    "shop.v1.Product.labels",
    "shop.v1.Product.PHYSICAL",
]
METHODS = [
    "SayHello",
    "EchoServer/SayHelloBidi",
    "shop.v1.Catalog.ListProducts",
    "Catalog/SyncProducts",
]


@pytest.fixture(scope="module")
def server() -> Iterator[ReflectionServer]:
    srv = start_shop_server()
    yield srv
    srv.stop()


@pytest.fixture
def protoset(tmp_path: Path) -> Path:
    path = tmp_path / "shop.protoset"
    path.write_bytes(compile_protos("echo.proto", "shop/v1/catalog.proto").SerializeToString())
    return path


def summary(src: SchemaSource) -> dict[str, object]:
    services = [s for s in src.list_services() if not s.startswith("grpc.reflection")]
    return {
        "services": services,
        "methods": {
            s: [(m.name, method_kind(m)) for m in src.find_service(s).methods] for s in services
        },
        "symbols": {
            n: (symbol_kind(src.find_symbol(n)), strip_comments(to_proto_text(src.find_symbol(n))))
            for n in SYMBOLS
        },
        "resolved": {t: resolve_method(src, t).full_name for t in METHODS if t != "SayHello"},
    }


def test_sources_agree(server: ReflectionServer, protoset: Path) -> None:
    reflected = summary(source_for(server))
    assert summary(protoset_source([protoset])) == reflected
    assert summary(proto_source([ECHO, SHOP], [REPO / "protos", PROTOS])) == reflected


def test_message_classes_from_every_source(server: ReflectionServer, protoset: Path) -> None:
    for src in (source_for(server), protoset_source([protoset]), proto_source([SHOP], [PROTOS])):
        cls = message_factory.GetMessageClass(src.find_symbol("shop.v1.Product"))
        msg = json_format.ParseDict({"id": "x", "kind": "DIGITAL", "labels": {"a": "b"}}, cls())
        assert json_format.MessageToDict(msg) == {
            "id": "x",
            "kind": "DIGITAL",
            "labels": {"a": "b"},
        }
        assert cls.FromString(msg.SerializeToString()) == msg


def test_write_protoset_round_trips(server: ReflectionServer, tmp_path: Path) -> None:
    src = source_for(server)
    for name in SYMBOLS:
        src.find_symbol(name)
    out = tmp_path / "out.protoset"
    write_protoset(src, out)
    again = protoset_source([out])

    def by_name(fds: object) -> dict[str, object]:
        return {f.name: f for f in fds.file}  # type: ignore[attr-defined]

    assert by_name(again.file_descriptor_set()) == by_name(src.file_descriptor_set())
    assert {n: to_proto_text(again.find_symbol(n)) for n in SYMBOLS} == {
        n: to_proto_text(src.find_symbol(n)) for n in SYMBOLS
    }
    # and a proto source written out keeps its comments
    comp = proto_source([ECHO], [REPO / "protos"])
    write_protoset(comp, tmp_path / "echo.protoset")
    assert "// Unary" in to_proto_text(
        protoset_source([tmp_path / "echo.protoset"]).find_service("echo.EchoServer")
    )


def test_bad_protoset_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.protoset"
    bad.write_bytes(b"\x0a\xff\xff\xff\xff garbage")
    with pytest.raises(SchemaError) as info:
        protoset_source([bad])
    assert str(bad) in str(info.value)
    assert info.value.exit_code == 5
    with pytest.raises(SchemaError, match="cannot read protoset"):
        protoset_source([tmp_path / "missing.protoset"])


def test_protoset_without_imports(tmp_path: Path) -> None:
    fds = compile_protos("shop/v1/catalog.proto")
    del fds.file[:]  # rebuild without the money.proto import
    full = compile_protos("shop/v1/catalog.proto")
    for f in full.file:
        if f.name != "shop/common/money.proto":
            fds.file.add().CopyFrom(f)
    path = tmp_path / "partial.protoset"
    path.write_bytes(fds.SerializeToString())
    with pytest.raises(SchemaError, match=r"shop/common/money\.proto") as info:
        protoset_source([path])
    assert any("--include_imports" in h for h in info.value.hints)


def test_protoset_without_wellknown_types_still_works(tmp_path: Path) -> None:
    fds = compile_protos("shop/v1/catalog.proto")
    keep = [f for f in fds.file if not f.name.startswith("google/")]
    del fds.file[:]
    fds.file.extend(keep)
    path = tmp_path / "nowkt.protoset"
    path.write_bytes(fds.SerializeToString())
    field = protoset_source([path]).find_symbol("shop.v1.Product.created")
    assert field.message_type.full_name == "google.protobuf.Timestamp"


def test_proto_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\npackage p;\nmessage M {\n  strin x = 1;\n}\n')
    with pytest.raises(SchemaError) as info:
        proto_source([bad], [tmp_path])
    assert "bad.proto:4:" in str(info.value)


def test_proto_import_error_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "imp.proto"
    bad.write_text('syntax = "proto3";\npackage p;\nimport "nowhere/thing.proto";\n')
    with pytest.raises(SchemaError) as info:
        proto_source([bad], [tmp_path])
    text = " ".join([str(info.value), *info.value.hints])
    assert "nowhere/thing.proto" in text
    assert "imp.proto" in text


def test_proto_without_import_path_uses_its_directory(tmp_path: Path) -> None:
    (tmp_path / "solo.proto").write_text(
        'syntax = "proto3";\npackage solo;\nimport "google/protobuf/empty.proto";\n'
        "service S { rpc Ping(google.protobuf.Empty) returns (google.protobuf.Empty); }\n"
    )
    src = proto_source([tmp_path / "solo.proto"], [])
    assert src.list_services() == ["solo.S"]
    assert method_kind(resolve_method(src, "Ping")) == "unary"


def test_proto_needs_grpc_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "grpc_tools", None)
    with pytest.raises(SchemaError) as info:
        proto_source([ECHO], [])
    assert str(info.value) == "--proto needs the protos extra"
    assert info.value.hints == ("pip install 'crgrpc[protos]'",)
