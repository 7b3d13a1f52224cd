"""Malformed, cyclic and incomplete descriptors: a SchemaError in bounded time, never a hang."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2, timestamp_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudrun_grpc_cli.core.schema import to_proto_text
from cloudrun_grpc_cli.core.schema.assemble import Assembler, parse_file
from cloudrun_grpc_cli.errors import SchemaError
from tests.support.reflection_servers import (
    ReflectionServer,
    error_response,
    file_response,
    list_response,
    per_request,
    source_for,
    start_files_server,
    start_server,
)

FDP = descriptor_pb2.FileDescriptorProto
F = descriptor_pb2.FieldDescriptorProto


def file(
    name: str, package: str = "t", deps: tuple[str, ...] = (), **messages: dict[str, str]
) -> FDP:
    fdp = FDP(name=name, package=package, syntax="proto3", dependency=list(deps))
    for msg_name, fields in messages.items():
        msg = fdp.message_type.add(name=msg_name)
        for i, (fname, type_name) in enumerate(fields.items(), start=1):
            if type_name == "string":
                msg.field.add(name=fname, number=i, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
            else:
                msg.field.add(name=fname, number=i, type_name=type_name, label=F.LABEL_OPTIONAL)
    return fdp


def with_service(fdp: FDP, svc: str, req: str, rep: str) -> FDP:
    service = fdp.service.add(name=svc)
    service.method.add(name="Do", input_type=req, output_type=rep)
    return fdp


@pytest.fixture
def serve() -> Iterator[Callable[..., ReflectionServer]]:
    started: list[ReflectionServer] = []

    def make(*args: object, **kwargs: object) -> ReflectionServer:
        srv = start_files_server(*args, **kwargs)  # type: ignore[arg-type]
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


def expect_schema_error(src: object, symbol: str, *fragments: str) -> SchemaError:
    start = time.monotonic()
    with pytest.raises(SchemaError) as info:
        src.find_symbol(symbol)  # type: ignore[attr-defined]
    assert time.monotonic() - start < 10
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    return info.value


def test_garbage_bytes(serve: Callable[..., ReflectionServer]) -> None:
    srv = serve(["t.S"], {"t.S": [b"\xff\xff\xff\x01garbage"]})
    expect_schema_error(source_for(srv), "t.S", "malformed file descriptor")


def test_unnamed_file(serve: Callable[..., ReflectionServer]) -> None:
    srv = serve(["t.S"], {"t.S": [FDP(package="t")]})
    expect_schema_error(source_for(srv), "t.S", "without a file name")


def test_import_cycle(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(file("a.proto", deps=("b.proto",), A={"x": "string"}), "S", ".t.A", ".t.B")
    b = file("b.proto", deps=("a.proto",), B={"a": ".t.A"})
    srv = serve(["t.S"], {"t.S": [a]}, {"b.proto": [b, a]})
    expect_schema_error(source_for(srv), "t.S", "import cycle", "a.proto", "b.proto")


def test_inferred_cycle_is_reported(serve: Callable[..., ReflectionServer]) -> None:
    # grpc-node style: no dependency lists, references both ways between files.
    a = with_service(file("a.proto", package="a", A={"b": ".b.B"}), "S", ".a.A", ".a.A")
    b = file("b.proto", package="b", B={"a": ".a.A"})
    srv = serve(["a.S"], {"a.S": [a, b]})
    expect_schema_error(source_for(srv), "a.S", "import cycle")


def test_unresolvable_type(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(file("a.proto", A={"x": "Nowhere"}), "S", ".t.A", ".t.A")
    srv = serve(["t.S"], {"t.S": [a]})
    err = expect_schema_error(source_for(srv), "t.S", "t.A.x", "Nowhere")
    assert err.exit_code == 5


def test_import_never_delivered(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(
        file("a.proto", deps=("missing.proto",), A={"x": "string"}), "S", ".t.A", ".t.A"
    )
    srv = serve(["t.S"], {"t.S": [a]})
    expect_schema_error(source_for(srv), "t.S", "missing.proto")


def test_endless_imports_are_cut_off() -> None:
    count = [0]

    def respond(request):  # type: ignore[no-untyped-def]
        kind = request.WhichOneof("message_request")
        if kind == "list_services":
            return list_response(request, "t.S")
        count[0] += 1
        name = f"f{count[0]}.proto"
        nxt = f"f{count[0] + 1}.proto"
        fdp = FDP(
            name=name if kind == "file_by_filename" else "root.proto", package="t", dependency=[nxt]
        )
        return file_response(request, fdp)

    srv = start_server(("v1",), answer=per_request(respond), echo=False)
    try:
        expect_schema_error(source_for(srv, timeout=30), "t.S", "giving up")
    finally:
        srv.stop()


def test_duplicate_symbol_in_two_files(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(file("a.proto", A={"x": "string"}), "S", ".t.A", ".t.A")
    b = file("b.proto", A={"y": "string"})
    srv = serve(["t.S"], {"t.S": [a, b]})
    expect_schema_error(source_for(srv), "t.S", "defined twice", "t.A")


def test_pool_rejects_invalid_descriptor(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(file("a.proto", A={"x": "string", "y": "string"}), "S", ".t.A", ".t.A")
    a.message_type[0].field[1].number = 1  # duplicate field number
    srv = serve(["t.S"], {"t.S": [a]})
    expect_schema_error(source_for(srv), "t.S", "invalid descriptor", "a.proto")


def test_error_response_other_than_not_found(serve: Callable[..., ReflectionServer]) -> None:
    def respond(request):  # type: ignore[no-untyped-def]
        return error_response(request, grpc.StatusCode.INTERNAL, "boom")

    srv = start_server(("v1",), answer=per_request(respond), echo=False)
    try:
        expect_schema_error(source_for(srv), "t.S", "INTERNAL", "boom")
    finally:
        srv.stop()


def test_wrong_answer_kind(serve: Callable[..., ReflectionServer]) -> None:
    srv = start_server(("v1",), answer=per_request(lambda r: list_response(r, "x.Y")), echo=False)
    try:
        expect_schema_error(source_for(srv), "t.S", "list_services_response")
    finally:
        srv.stop()


def test_wellknown_types_missing_from_server(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(
        file(
            "a.proto",
            deps=("google/protobuf/timestamp.proto", "google/protobuf/empty.proto"),
            A={"when": ".google.protobuf.Timestamp"},
        ),
        "S",
        ".t.A",
        ".google.protobuf.Empty",
    )
    srv = serve(["t.S"], {"t.S": [a]})  # the server cannot send google/protobuf/*
    src = source_for(srv)
    svc = src.find_service("t.S")
    assert svc.methods[0].output_type.full_name == "google.protobuf.Empty"
    field = src.find_symbol("t.A.when")
    assert field.message_type.full_name == "google.protobuf.Timestamp"
    assert "google/protobuf/timestamp.proto" in {f.name for f in src.file_descriptor_set().file}
    assert srv.requests["v1"] == 1  # well-known files were not even asked for


def test_wellknown_file_names_are_the_runtimes_files() -> None:
    from cloudrun_grpc_cli.core.schema.wellknown import WELLKNOWN_FILE_NAMES, wellknown_files

    assert set(wellknown_files()) == WELLKNOWN_FILE_NAMES


def test_wellknown_reference_without_import(serve: Callable[..., ReflectionServer]) -> None:
    a = with_service(file("a.proto", A={"when": "google.protobuf.Timestamp"}), "S", ".t.A", ".t.A")
    srv = serve(["t.S"], {"t.S": [a]})
    field = source_for(srv).find_symbol("t.A.when")
    assert field.message_type.full_name == "google.protobuf.Timestamp"
    assert to_proto_text(field) == "google.protobuf.Timestamp when = 1;"


def test_conforming_files_are_unchanged() -> None:
    asm = Assembler("test")
    fdp = FDP.FromString(timestamp_pb2.DESCRIPTOR.serialized_pb)
    user = file(
        "u.proto", deps=("google/protobuf/timestamp.proto",), U={"t": ".google.protobuf.Timestamp"}
    )
    user.message_type[0].field[0].type = F.TYPE_MESSAGE
    asm.add([user])
    assert asm.files["u.proto"] == user
    assert asm.files["google/protobuf/timestamp.proto"] == fdp


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    start = time.monotonic()
    try:
        fdp = parse_file(data, "fuzz")
        Assembler("fuzz").add([fdp])
    except SchemaError:
        pass
    assert time.monotonic() - start < 5


@settings(deadline=None, max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.proto", "b.proto", "c.proto", "d.proto"]),
            st.lists(
                st.sampled_from(["a.proto", "b.proto", "c.proto", "d.proto", "e.proto"]), max_size=3
            ),
            st.lists(
                st.sampled_from(["A", "B", ".t.A", "t.B", "C", "Nope", "google.protobuf.Any"]),
                max_size=3,
            ),
        ),
        max_size=5,
    )
)
def test_random_file_graphs_never_crash(spec: list[tuple[str, list[str], list[str]]]) -> None:
    files = []
    for i, (name, deps, refs) in enumerate(spec):
        fdp = FDP(name=name, package="t", syntax="proto3", dependency=deps)
        msg = fdp.message_type.add(name=f"M{i}" if i else "A")
        for j, ref in enumerate(refs, start=1):
            msg.field.add(name=f"f{j}", number=j, type_name=ref, label=F.LABEL_OPTIONAL)
        files.append(fdp)
    with contextlib.suppress(SchemaError):
        Assembler("fuzz").add(files)
