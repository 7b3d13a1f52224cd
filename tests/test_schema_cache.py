"""The schema cache: hits need no server, misses refetch once, TTL, corrupt files, modes."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from cloudrun_grpc_cli.core.schema import (
    CachedReflectionSource,
    read_cached_methods,
    read_cached_services,
    resolve_method,
    to_proto_text,
)
from cloudrun_grpc_cli.core.schema.cache import cache_dir, cache_path, write_entry
from cloudrun_grpc_cli.demo import echo_pb2
from cloudrun_grpc_cli.errors import SchemaError
from tests.support.reflection_servers import ReflectionServer, start_server, start_shop_server

KEY = "plaintext://127.0.0.1:test|authority=|headers="


@pytest.fixture
def server() -> Iterator[ReflectionServer]:
    srv = start_server(("v1alpha",))
    yield srv
    srv.stop()


def cached(server: ReflectionServer, key: str = KEY, **kwargs: object) -> object:
    return CachedReflectionSource(
        server.channel(),
        metadata=list,
        timeout=10,
        address=server.address,
        cache_key=key,
        **kwargs,  # type: ignore[arg-type]
    )


def warm(server: ReflectionServer) -> None:
    src = cached(server)
    src.list_services()  # type: ignore[attr-defined]
    resolve_method(src, "echo.EchoServer/SayHello")  # type: ignore[arg-type]


def test_cache_location_and_modes(server: ReflectionServer, isolated_env: Path) -> None:
    warm(server)
    assert cache_dir() == isolated_env / "cache" / "crgrpc" / "schema"
    path = cache_path(KEY)
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


def test_hit_needs_no_server(server: ReflectionServer) -> None:
    warm(server)
    resolve_method(cached(server), "SayHello")  # type: ignore[arg-type]  # bare: loads every service
    before = server.total
    src = cached(server)
    assert "echo.EchoServer" in src.list_services()  # type: ignore[attr-defined]
    method = resolve_method(src, "SayHelloStream")  # type: ignore[arg-type]
    assert method.full_name == "echo.EchoServer.SayHelloStream"
    assert to_proto_text(src.find_symbol("echo.EchoRequest")).startswith("message EchoRequest {")  # type: ignore[attr-defined]
    assert server.total == before
    assert src.from_cache  # type: ignore[attr-defined]


def test_disabled_cache_always_dials(server: ReflectionServer) -> None:
    warm(server)
    before = server.total
    src = cached(server, enabled=False)
    src.list_services()  # type: ignore[attr-defined]
    assert server.total == before + 1


def test_completion_reads(server: ReflectionServer) -> None:
    assert read_cached_services(KEY) is None
    warm(server)
    before = server.total
    assert read_cached_services(KEY) == [
        "echo.EchoServer",
        "grpc.reflection.v1alpha.ServerReflection",
    ]
    methods = read_cached_methods(KEY, "echo.EchoServer")
    assert methods == sorted(
        f"echo.EchoServer/{m}"
        for m in ["SayHello", "SayHelloStream", "SayHelloClientStream", "SayHelloBidi"]
    )
    assert read_cached_methods(KEY) == methods  # only Echo's file was fetched
    assert read_cached_methods(KEY, "nope.Service") is None
    assert server.total == before


def test_unknown_symbol_refetches_once(server: ReflectionServer) -> None:
    warm(server)
    src = cached(server)
    before = server.total
    with pytest.raises(SchemaError):
        src.find_symbol("echo.Nope")  # type: ignore[attr-defined]
    after = server.total
    assert after > before
    assert not src.from_cache  # type: ignore[attr-defined]
    assert src.refetch() is False  # type: ignore[attr-defined]  # only once


def test_new_service_found_after_refetch() -> None:
    old = start_server(("v1alpha",))
    try:
        warm(old)
    finally:
        old.stop()
    new = start_shop_server()  # the "redeployed" server has more services
    try:
        src = cached(new)
        assert "shop.v1.Catalog" not in src.list_services()  # type: ignore[attr-defined]  # stale but fresh
        method = resolve_method(src, "shop.v1.Catalog/GetProduct")  # type: ignore[arg-type]
        assert method.full_name == "shop.v1.Catalog.GetProduct"
        assert "shop.v1.Catalog" in (read_cached_services(KEY) or [])
    finally:
        new.stop()


def test_new_method_found_after_refetch(server: ReflectionServer) -> None:
    # A cached Echo without SayHelloBidi: the live server has it.
    fdp = descriptor_pb2.FileDescriptorProto.FromString(echo_pb2.DESCRIPTOR.serialized_pb)
    del fdp.service[0].method[3]
    write_entry(KEY, ["echo.EchoServer"], [fdp])
    src = cached(server)
    assert len(src.find_service("echo.EchoServer").methods) == 3  # type: ignore[attr-defined]
    assert server.total == 0
    assert resolve_method(src, "echo.EchoServer/SayHelloBidi").name == "SayHelloBidi"  # type: ignore[arg-type]
    assert server.total > 0
    assert len(read_cached_methods(KEY, "echo.EchoServer") or []) == 4


def test_ttl_expiry(server: ReflectionServer) -> None:
    warm(server)
    path = cache_path(KEY)
    doc = json.loads(path.read_text())
    doc["created"] -= 301
    path.write_text(json.dumps(doc))
    before = server.total
    src = cached(server)
    src.list_services()  # type: ignore[attr-defined]
    assert server.total == before + 1
    assert read_cached_services(KEY) is not None  # rewritten fresh
    src2 = cached(server, ttl=0.0)
    src2.list_services()  # type: ignore[attr-defined]
    assert server.total == before + 2


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b"[]",
        b'{"format": "other"}',
        b"\x00\xff" * 10,
        json.dumps(
            {
                "format": "crgrpc-schema-cache/1",
                "key": KEY,
                "created": 1e18,
                "services": [],
                "protoset": "",
            }
        ).encode(),
        json.dumps(
            {
                "format": "crgrpc-schema-cache/1",
                "key": KEY,
                "created": 0,
                "services": None,
                "protoset": "!!!",
            }
        ).encode(),
    ],
)
def test_corrupt_file_ignored(server: ReflectionServer, content: bytes) -> None:
    path = cache_path(KEY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    assert read_cached_services(KEY) is None
    src = cached(server)
    assert "echo.EchoServer" in src.list_services()  # type: ignore[attr-defined]
    assert server.total == 1


def test_foreign_key_ignored(server: ReflectionServer) -> None:
    warm(server)
    path = cache_path(KEY)
    doc = json.loads(path.read_text())
    doc["key"] = "someone else"
    path.write_text(json.dumps(doc))
    assert read_cached_services(KEY) is None


def test_undecodable_descriptors_ignored(server: ReflectionServer) -> None:
    bad = descriptor_pb2.FileDescriptorProto(name="a.proto", dependency=["a.proto"])
    write_entry(KEY, ["x.Y"], [bad])
    assert read_cached_services(KEY) is None
    assert "echo.EchoServer" in cached(server).list_services()  # type: ignore[attr-defined]
