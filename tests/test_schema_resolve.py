"""resolve_method: every METHOD form, ambiguity, suggestions; method and symbol kinds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudrun_grpc_cli.core.schema import (
    SchemaSource,
    method_kind,
    proto_source,
    resolve_method,
    symbol_kind,
)
from cloudrun_grpc_cli.errors import SchemaError
from tests.support.reflection_servers import (
    PROTOS,
    REPO,
    ReflectionServer,
    source_for,
    start_shop_server,
)


@pytest.fixture(scope="module")
def server() -> Iterator[ReflectionServer]:
    srv = start_shop_server()
    yield srv
    srv.stop()


@pytest.fixture(params=["reflection", "proto"])
def src(request: pytest.FixtureRequest, server: ReflectionServer) -> SchemaSource:
    if request.param == "reflection":
        return source_for(server)  # type: ignore[no-any-return]
    return proto_source(
        [REPO / "protos" / "echo.proto", PROTOS / "shop" / "v1" / "catalog.proto"],
        [REPO / "protos", PROTOS],
    )


@pytest.mark.parametrize(
    ("text", "full"),
    [
        ("echo.EchoServer/SayHello", "echo.EchoServer.SayHello"),
        ("echo.EchoServer.SayHello", "echo.EchoServer.SayHello"),
        (".echo.EchoServer/SayHelloStream", "echo.EchoServer.SayHelloStream"),
        ("SayHelloBidi", "echo.EchoServer.SayHelloBidi"),
        ("EchoServer/SayHello", "echo.EchoServer.SayHello"),
        ("EchoServer.SayHelloClientStream", "echo.EchoServer.SayHelloClientStream"),
        ("Greeter/SayHello", "shop.v1.Greeter.SayHello"),
        ("v1.Greeter.SayHello", "shop.v1.Greeter.SayHello"),
        ("GetProduct", "shop.v1.Catalog.GetProduct"),
        ("shop.v1.Catalog/SyncProducts", "shop.v1.Catalog.SyncProducts"),
    ],
)
def test_forms(src: SchemaSource, text: str, full: str) -> None:
    assert resolve_method(src, text).full_name == full


def test_ambiguous_lists_candidates(src: SchemaSource) -> None:
    with pytest.raises(SchemaError) as info:
        resolve_method(src, "SayHello")
    assert "ambiguous" in str(info.value)
    assert info.value.hints == ("write one of: echo.EchoServer/SayHello, shop.v1.Greeter/SayHello",)


@pytest.mark.parametrize(
    ("text", "suggested"),
    [
        ("echo.EchoServer/SayHelo", "echo.EchoServer/SayHello"),
        ("SayHelloStrem", "echo.EchoServer/SayHelloStream"),
        ("Catalog/GetProdcut", "shop.v1.Catalog/GetProduct"),
        ("shop.v1.Catalg.GetProduct", "shop.v1.Catalog/GetProduct"),
    ],
)
def test_unknown_suggests(src: SchemaSource, text: str, suggested: str) -> None:
    with pytest.raises(SchemaError) as info:
        resolve_method(src, text)
    assert info.value.exit_code == 5
    assert "not found" in str(info.value)
    assert info.value.hints and suggested in info.value.hints[0]
    assert info.value.hints[0].count("/") <= 3


@pytest.mark.parametrize("text", ["", "/", "a/b/c", "echo.EchoServer/"])
def test_malformed_names(src: SchemaSource, text: str) -> None:
    with pytest.raises(SchemaError):
        resolve_method(src, text)


def test_unknown_with_nothing_close(src: SchemaSource) -> None:
    with pytest.raises(SchemaError) as info:
        resolve_method(src, "Zzzzzzzz")
    assert info.value.hints == ()


def test_kinds(src: SchemaSource) -> None:
    kinds = {m.name: method_kind(m) for m in src.find_service("echo.EchoServer").methods}
    assert kinds == {
        "SayHello": "unary",
        "SayHelloStream": "server",
        "SayHelloClientStream": "client",
        "SayHelloBidi": "bidi",
    }
    assert [
        symbol_kind(src.find_symbol(n))
        for n in [
            "shop.v1.Catalog",
            "shop.v1.Catalog/GetProduct",
            "shop.v1.Product",
            "shop.v1.Status",
            "shop.v1.Product.id",
            "shop.v1.RETIRED",
        ]
    ] == ["service", "method", "message", "enum", "field", "enum value"]


def test_full_form_fetches_only_that_service(server: ReflectionServer) -> None:
    before = server.total
    src = source_for(server)
    resolve_method(src, "echo.EchoServer/SayHello")
    names = {f.name for f in src.file_descriptor_set().file}
    assert names == {"echo.proto"}
    assert server.total - before == 1  # one file_containing_symbol: a full name needs no listing
