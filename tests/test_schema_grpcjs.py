"""grpc-js servers over commonly served protos: health, channelz, google/api, validate, proto2.

@grpc/proto-loader (protobuf.js) writes descriptors protobuf's pool rejects
or reads differently from the source: every file labelled proto3 (so
protoc-gen-validate's proto2 validate.proto carries "explicit defaults" the
pool refuses), reserved and extension ranges with inclusive ends ("reserved
3;" sent as 3..3, as in grpc-js's channelz.proto), a copy of each extension
among the extended message's fields, and `packed = false` on every field of
a proto2 file. assemble.py repairs these; each repair is tested here on a
hand-built descriptor, then on grpc-node's recorded answers, then against
the live server tests/node/common_server.js.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2, message_factory

from cloudrun_grpc_cli.core.schema import PoolSource, SchemaSource, to_proto_text
from cloudrun_grpc_cli.core.schema.assemble import Assembler
from cloudrun_grpc_cli.errors import SchemaError
from tests.support.cli import run
from tests.support.node import node_modules_fixture  # noqa: F401
from tests.support.reflection_servers import (
    NODE_COMMON_RECORDING,
    PROTOS,
    REPO,
    ReflectionServer,
    compile_protos,
    load_recording,
    source_for,
    start_replay_server,
    strip_comments,
)

FDP = descriptor_pb2.FileDescriptorProto
F = descriptor_pb2.FieldDescriptorProto
NODE_DIR = REPO / "tests" / "node"
MODULES = NODE_DIR / "node_modules"


def assemble(*files: FDP) -> Assembler:
    asm = Assembler("test server")
    asm.add(list(files))
    return asm


def accepted(asm: Assembler, name: str) -> FDP:
    return asm.files[name]


def text_of(asm: Assembler, symbol: str) -> str:
    return to_proto_text(PoolSource(asm).find_symbol(symbol))


def scalar(name: str, number: int, kind: int = F.TYPE_STRING, **extra: object) -> F:
    return F(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL, **extra)  # type: ignore[arg-type]


# -- proto2 files labelled proto3 ------------------------------------------------------


def rules_file(syntax: str = "proto3") -> FDP:
    """validate.proto's StringRules as proto-loader sends it: proto3, with a default."""
    fdp = FDP(name="validate.proto", package="validate", syntax=syntax)
    msg = fdp.message_type.add(name="StringRules")
    msg.field.append(scalar("pattern", 6))
    msg.field.append(scalar("strict", 25, F.TYPE_BOOL, default_value="true"))
    return fdp


def test_proto3_file_with_a_default_value_is_relabelled_proto2() -> None:
    asm = assemble(rules_file())
    fdp = accepted(asm, "validate.proto")
    assert fdp.syntax == "proto2"
    assert fdp.message_type[0].field[1].default_value == "true"
    cls = message_factory.GetMessageClass(asm.pool.FindMessageTypeByName("validate.StringRules"))
    msg = cls()
    assert msg.strict is True  # the written default, not proto3's false
    assert not msg.HasField("strict")
    assert not msg.HasField("pattern")  # proto2 presence for every field
    assert text_of(asm, "validate.StringRules") == (
        "message StringRules {\n"
        "  optional string pattern = 6;\n"
        "  optional bool strict = 25 [default = true];\n"
        "}"
    )


def _required(fdp: FDP) -> None:
    fdp.message_type[0].field.append(F(name="id", number=1, type=F.TYPE_STRING, label=F.LABEL_REQUIRED))


def _group(fdp: FDP) -> None:
    msg = fdp.message_type[0]
    msg.nested_type.add(name="Result").field.append(scalar("url", 2))
    msg.field.append(
        F(name="result", number=1, type=F.TYPE_GROUP, type_name="Result", label=F.LABEL_OPTIONAL)
    )


def _extension_range(fdp: FDP) -> None:
    fdp.message_type[0].extension_range.add(start=100, end=200)


def _enum_starting_at_one(fdp: FDP) -> None:
    enum = fdp.enum_type.add(name="Mode")
    enum.value.add(name="MODE_A", number=1)
    enum.value.add(name="MODE_B", number=2)


@pytest.mark.parametrize(
    "add",
    [_required, _group, _extension_range, _enum_starting_at_one],
    ids=["required field", "group", "extension range", "enum not starting at zero"],
)
def test_other_proto2_only_constructs_relabel_a_proto3_file(add: object) -> None:
    fdp = FDP(name="old.proto", package="old", syntax="proto3")
    fdp.message_type.add(name="Old").field.append(scalar("label", 3))
    add(fdp)  # type: ignore[operator]
    assert accepted(assemble(fdp), "old.proto").syntax == "proto2"


def test_relabelled_file_loses_proto3_optional_flags_but_keeps_their_oneof() -> None:
    fdp = rules_file()
    msg = fdp.message_type[0]
    msg.oneof_decl.add(name="_note")
    msg.field.append(scalar("note", 30, oneof_index=0, proto3_optional=True))
    asm = assemble(fdp)
    note = accepted(asm, "validate.proto").message_type[0].field[2]
    assert not note.proto3_optional
    assert note.oneof_index == 0
    desc = asm.pool.FindMessageTypeByName("validate.StringRules")
    assert [o.name for o in desc.oneofs] == ["_note"]


def test_conforming_proto3_and_proto2_files_pass_unchanged() -> None:
    fds = compile_protos("legacy/legacy.proto", "shop/v1/catalog.proto")
    asm = assemble(*fds.file)
    for fdp in fds.file:
        assert asm.files[fdp.name] == fdp, fdp.name
    assert asm.files["legacy/legacy.proto"].syntax == ""  # protoc's spelling of proto2
    assert asm.files["shop/v1/catalog.proto"].syntax == "proto3"


def test_proto3_file_without_proto2_constructs_stays_proto3() -> None:
    fdp = FDP(name="plain.proto", package="plain", syntax="proto3")
    fdp.message_type.add(name="M").field.append(scalar("a", 1))
    assert accepted(assemble(fdp), "plain.proto").syntax == "proto3"


# -- inclusive range ends ------------------------------------------------------------


def ranges_file() -> FDP:
    """channelz's ChannelRef as proto-loader sends it: "reserved 3, 4;" as 3..3 and 4..4."""
    fdp = FDP(name="ref.proto", package="ref", syntax="proto3")
    msg = fdp.message_type.add(name="ChannelRef")
    msg.field.append(scalar("name", 2))
    msg.reserved_range.add(start=3, end=3)
    msg.reserved_range.add(start=4, end=4)
    nested = msg.nested_type.add(name="Inner")
    nested.field.append(scalar("x", 1))
    nested.reserved_range.add(start=10, end=12)  # "reserved 10 to 12;"
    enum = fdp.enum_type.add(name="Color")
    enum.value.add(name="COLOR_UNSPECIFIED", number=0)
    enum.reserved_range.add(start=5, end=5)  # enum ranges are inclusive by definition
    return fdp


def test_reserved_ranges_ending_at_their_start_make_the_files_ranges_exclusive() -> None:
    asm = assemble(ranges_file())
    msg = accepted(asm, "ref.proto").message_type[0]
    assert [(r.start, r.end) for r in msg.reserved_range] == [(3, 4), (4, 5)]
    assert [(r.start, r.end) for r in msg.nested_type[0].reserved_range] == [(10, 13)]
    assert [(r.start, r.end) for r in accepted(asm, "ref.proto").enum_type[0].reserved_range] == [
        (5, 5)
    ]
    assert text_of(asm, "ref.ChannelRef") == (
        "message ChannelRef {\n"
        "  string name = 2;\n"
        "\n"
        "  message Inner {\n"
        "    string x = 1;\n"
        "\n"
        "    reserved 10 to 12;\n"
        "  }\n"
        "\n"
        "  reserved 3, 4;\n"
        "}"
    )


def test_extension_ranges_ending_at_their_start_are_made_exclusive() -> None:
    fdp = FDP(name="ext.proto", package="ext", syntax="proto2")
    msg = fdp.message_type.add(name="Base")
    msg.field.append(scalar("id", 1))
    msg.extension_range.add(start=100, end=100)  # "extensions 100;"
    msg.extension_range.add(start=200, end=299)  # "extensions 200 to 299;"
    fdp.extension.append(scalar("last", 299, extendee=".ext.Base"))
    asm = assemble(fdp)
    ranges = accepted(asm, "ext.proto").message_type[0].extension_range
    assert [(r.start, r.end) for r in ranges] == [(100, 101), (200, 300)]
    assert asm.pool.FindExtensionByName("ext.last").number == 299
    assert "  extensions 100, 200 to 299;\n" in text_of(asm, "ext.Base")


def test_range_to_max_written_inclusive_ends_at_the_largest_field_number() -> None:
    fdp = FDP(name="max.proto", package="mx", syntax="proto2")
    msg = fdp.message_type.add(name="Open")
    msg.extension_range.add(start=7, end=7)
    msg.extension_range.add(start=1000, end=0x1FFFFFFF)  # "extensions 1000 to max;"
    ranges = accepted(assemble(fdp), "max.proto").message_type[0].extension_range
    assert [(r.start, r.end) for r in ranges] == [(7, 8), (1000, 0x20000000)]


def test_conforming_ranges_are_left_alone() -> None:
    fdp = FDP(name="ok.proto", package="ok", syntax="proto3")
    msg = fdp.message_type.add(name="M")
    msg.reserved_range.add(start=3, end=4)
    msg.reserved_range.add(start=10, end=13)
    ranges = accepted(assemble(fdp), "ok.proto").message_type[0].reserved_range
    assert [(r.start, r.end) for r in ranges] == [(3, 4), (10, 13)]


def test_a_range_ending_before_its_start_is_not_guessed_at() -> None:
    fdp = FDP(name="bad.proto", package="bad", syntax="proto3")
    msg = fdp.message_type.add(name="M")
    msg.reserved_range.add(start=3, end=3)
    msg.reserved_range.add(start=9, end=5)
    with pytest.raises(SchemaError) as info:
        assemble(fdp)
    assert str(info.value) == (
        "test server: invalid descriptor for bad.proto: Couldn't build proto file into "
        "descriptor pool: Reserved range (3, 3) is invalid, message=bad.M"
    )


def test_ranges_already_ending_at_the_exclusive_max_are_not_shifted() -> None:
    fdp = FDP(name="mix.proto", package="mix", syntax="proto2")
    msg = fdp.message_type.add(name="M")
    msg.extension_range.add(start=5, end=5)
    msg.extension_range.add(start=100, end=0x20000000)
    with pytest.raises(SchemaError) as info:
        assemble(fdp)
    assert str(info.value) == (
        "test server: invalid descriptor for mix.proto: Couldn't build proto file into "
        "descriptor pool: Extension range (5, 5) is invalid, message=mix.M"
    )


# -- protobuf.js's copies of extensions ----------------------------------------------


def extended_file() -> FDP:
    """legacy.proto's Old as proto-loader sends it: the extension copied into Old's fields."""
    fdp = FDP(name="legacy.proto", package="legacy", syntax="proto2")
    msg = fdp.message_type.add(name="Old")
    msg.field.append(scalar("id", 1))
    msg.field.append(scalar(".legacy.flagged", 100, F.TYPE_BOOL))
    msg.extension_range.add(start=100, end=200)
    fdp.extension.append(scalar("flagged", 100, F.TYPE_BOOL, extendee=".legacy.Old"))
    return fdp


def test_copies_of_extensions_among_the_extended_messages_fields_are_dropped() -> None:
    asm = assemble(extended_file())
    fdp = accepted(asm, "legacy.proto")
    assert [f.name for f in fdp.message_type[0].field] == ["id"]
    assert [f.name for f in fdp.extension] == ["flagged"]
    ext = asm.pool.FindExtensionByName("legacy.flagged")
    assert (ext.number, ext.containing_type.full_name) == (100, "legacy.Old")


def test_a_dotted_field_outside_every_extension_range_is_an_error() -> None:
    fdp = extended_file()
    fdp.message_type[0].field.append(scalar(".legacy.other", 7))
    with pytest.raises(SchemaError) as info:
        assemble(fdp)
    assert str(info.value) == (
        "test server: invalid descriptor for legacy.proto: Couldn't build proto file into "
        "descriptor pool: invalid name: unexpected '.' (.legacy.other)"
    )


# -- packed = false on every field ------------------------------------------------


def packed_file(syntax: str, *, mark_all: bool = True) -> FDP:
    fdp = FDP(name="p.proto", package="p", syntax=syntax)
    msg = fdp.message_type.add(name="M")
    unpackable = [
        scalar("name", 1),
        scalar("size", 2, F.TYPE_INT32),
        F(name="tags", number=3, type=F.TYPE_STRING, label=F.LABEL_REPEATED),
    ]
    if mark_all:
        for field in unpackable:
            field.options.packed = False
    else:
        unpackable[1].options.packed = False
    msg.field.extend(unpackable)
    expanded = F(name="codes", number=4, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    expanded.options.packed = False
    packed = F(name="ids", number=5, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    packed.options.packed = True
    packed.options.deprecated = True
    msg.field.extend([expanded, packed])
    return fdp


def options_of(fdp: FDP) -> dict[str, str]:
    return {f.name: str(f.options).replace("\n", " ").strip() for f in fdp.message_type[0].field}


def test_packed_false_written_on_every_field_is_cleared_where_it_is_the_default() -> None:
    asm = assemble(packed_file("proto2"))
    assert options_of(accepted(asm, "p.proto")) == {
        "name": "",
        "size": "",
        "tags": "",
        "codes": "",
        "ids": "packed: true deprecated: true",
    }
    assert not accepted(asm, "p.proto").message_type[0].field[0].HasField("options")
    assert text_of(asm, "p.M") == (
        "message M {\n"
        "  optional string name = 1;\n"
        "  optional int32 size = 2;\n"
        "  repeated string tags = 3;\n"
        "  repeated int32 codes = 4;\n"
        "  repeated int32 ids = 5 [packed = true, deprecated = true];\n"
        "}"
    )


def test_packed_false_on_proto3_repeated_scalars_is_kept() -> None:
    fdp = accepted(assemble(packed_file("proto3")), "p.proto")
    assert options_of(fdp)["codes"] == "packed: false"
    assert options_of(fdp)["size"] == ""


def test_one_packed_false_written_by_hand_is_kept() -> None:
    fdp = accepted(assemble(packed_file("proto2", mark_all=False)), "p.proto")
    assert options_of(fdp) == {
        "name": "",
        "size": "packed: false",
        "tags": "",
        "codes": "packed: false",
        "ids": "packed: true deprecated: true",
    }


# -- grpc-node's recorded answers ------------------------------------------------------

LIST = (
    '{"service":"grpc.channelz.v1.Channelz"}\n'
    '{"service":"grpc.health.v1.Health"}\n'
    '{"service":"library.v1.Library"}\n'
)
LIST_HEALTH = (
    '{"method":"grpc.health.v1.Health/Check","kind":"unary",'
    '"request":"grpc.health.v1.HealthCheckRequest","response":"grpc.health.v1.HealthCheckResponse"}\n'
    '{"method":"grpc.health.v1.Health/Watch","kind":"server",'
    '"request":"grpc.health.v1.HealthCheckRequest","response":"grpc.health.v1.HealthCheckResponse"}\n'
    '{"method":"grpc.health.v1.Health/List","kind":"unary",'
    '"request":"grpc.health.v1.HealthListRequest","response":"grpc.health.v1.HealthListResponse"}\n'
)
LIST_LIBRARY = (
    '{"method":"library.v1.Library/GetBook","kind":"unary",'
    '"request":"library.v1.GetBookRequest","response":"library.v1.Book"}\n'
)
CHANNELZ_METHODS = [
    "GetTopChannels",
    "GetServers",
    "GetServer",
    "GetServerSockets",
    "GetChannel",
    "GetSubchannel",
    "GetSocket",
]
#: What describe prints for each symbol. Lost on grpc-node's side and so absent
#: here: custom options ((google.api.http), (google.api.field_behavior),
#: (validate.rules)), enum value options, json_name, and proto2 `required`.
DESCRIBED = {
    "grpc.channelz.v1.ChannelRef": (
        "message ChannelRef {\n"
        "  int64 channel_id = 1;\n"
        "  string name = 2;\n"
        "\n"
        "  reserved 3, 4, 5, 6, 7, 8;\n"
        "}"
    ),
    "grpc.channelz.v1.SocketRef": (
        "message SocketRef {\n"
        "  int64 socket_id = 3;\n"
        "  string name = 4;\n"
        "\n"
        "  reserved 1, 2, 5, 6, 7, 8;\n"
        "}"
    ),
    "grpc.health.v1.HealthCheckResponse": (
        "message HealthCheckResponse {\n"
        "  grpc.health.v1.HealthCheckResponse.ServingStatus status = 1;\n"
        "\n"
        "  enum ServingStatus {\n"
        "    UNKNOWN = 0;\n"
        "    SERVING = 1;\n"
        "    NOT_SERVING = 2;\n"
        "    SERVICE_UNKNOWN = 3;\n"
        "  }\n"
        "}"
    ),
    "library.v1.Library": (
        "service Library {\n"
        "  rpc GetBook(library.v1.GetBookRequest) returns (library.v1.Book);\n"
        "}"
    ),
    "library.v1.Book": (
        "message Book {\n"
        "  string name = 1;\n"
        "  string title = 2;\n"
        "  int32 pages = 3;\n"
        "  repeated string authors = 5;\n"
        "\n"
        "  reserved 4, 6 to 8;\n"
        '  reserved "isbn";\n'
        "}"
    ),
    "validate.StringRules.strict": "optional bool strict = 25 [default = true];",
    "validate.StringRules.in": "repeated string in = 10;",
    "google.api.FieldBehavior": (
        "enum FieldBehavior {\n"
        "  FIELD_BEHAVIOR_UNSPECIFIED = 0;\n"
        "  OPTIONAL = 1;\n"
        "  REQUIRED = 2;\n"
        "  OUTPUT_ONLY = 3;\n"
        "  INPUT_ONLY = 4;\n"
        "  IMMUTABLE = 5;\n"
        "  UNORDERED_LIST = 6;\n"
        "  NON_EMPTY_DEFAULT = 7;\n"
        "  IDENTIFIER = 8;\n"
        "}"
    ),
    "legacy.Old": (
        "message Old {\n"
        "  optional string id = 1;\n"
        "  optional int32 size = 2 [default = 7];\n"
        '  optional string label = 3 [default = "none"];\n'
        "  repeated int32 codes = 4 [packed = true];\n"
        "  optional string renamed = 5;\n"
        "\n"
        "  extensions 100 to 199;\n"
        "\n"
        "  reserved 8, 10 to 12;\n"
        '  reserved "gone";\n'
        "}"
    ),
    "legacy.Mode": (
        "enum Mode {\n"
        "  option allow_alias = true;\n"
        "  MODE_A = 1;\n"
        "  MODE_ALIAS = 1;\n"
        "  MODE_B = 2;\n"
        "}"
    ),
}


@pytest.fixture
def replay() -> Iterator[ReflectionServer]:
    srv = start_replay_server(NODE_COMMON_RECORDING)
    yield srv
    srv.stop()


def test_common_recording_holds_the_quirks_raw() -> None:
    from grpc_reflection.v1alpha import reflection_pb2

    files: dict[str, FDP] = {}
    for data in load_recording(NODE_COMMON_RECORDING).values():
        resp = reflection_pb2.ServerReflectionResponse.FromString(data)
        for blob in resp.file_descriptor_response.file_descriptor_proto:
            fdp = FDP.FromString(blob)
            files[fdp.name] = fdp
    assert sorted(files) == [
        "google_api.proto",
        "google_protobuf.proto",
        "grpc_channelz_v1.proto",
        "grpc_health_v1.proto",
        "legacy.proto",
        "library_v1.proto",
        "validate.proto",
    ]
    assert {f.syntax for f in files.values()} == {"proto3"}
    channel_ref = next(m for m in files["grpc_channelz_v1.proto"].message_type if m.name == "ChannelRef")
    assert [(r.start, r.end) for r in channel_ref.reserved_range][:2] == [(3, 3), (4, 4)]
    rules = next(m for m in files["validate.proto"].message_type if m.name == "StringRules")
    strict = next(f for f in rules.field if f.name == "strict")
    assert (strict.default_value, strict.options.packed, strict.options.HasField("packed")) == (
        "true",
        False,
        True,
    )
    old = files["legacy.proto"].message_type[0]
    assert [f.name for f in old.field][-1] == ".legacy.flagged"
    assert [(r.start, r.end) for r in old.extension_range] == [(100, 199)]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list"], LIST),
        (["list", "grpc.health.v1.Health"], LIST_HEALTH),
        (["list", "library.v1.Library"], LIST_LIBRARY),
    ],
    ids=["services", "health", "library"],
)
def test_replayed_list(replay: ReflectionServer, argv: list[str], expected: str) -> None:
    r = run(argv[0], "--plaintext", replay.address, *argv[1:])
    assert (r.code, r.stderr, r.stdout) == (0, "", expected)


def test_replayed_list_channelz(replay: ReflectionServer) -> None:
    r = run("list", "--plaintext", replay.address, "grpc.channelz.v1.Channelz")
    assert (r.code, r.stderr) == (0, "")
    assert [row["method"] for row in r.lines] == [
        f"grpc.channelz.v1.Channelz/{m}" for m in CHANNELZ_METHODS
    ]


@pytest.mark.parametrize("symbol", list(DESCRIBED))
def test_replayed_describe(replay: ReflectionServer, symbol: str) -> None:
    r = run("describe", "--plaintext", replay.address, symbol)
    assert (r.code, r.stderr) == (0, "")
    assert r.json["proto"] == DESCRIBED[symbol]


def test_replayed_validate_rules_keep_proto2_defaults(replay: ReflectionServer) -> None:
    src = source_for(replay)
    rules = src.find_symbol("validate.StringRules")
    src.find_symbol("grpc.channelz.v1.ChannelRef")
    fds = {f.name: f for f in src.file_descriptor_set().file}
    assert fds["validate.proto"].syntax == "proto2"
    assert fds["grpc_channelz_v1.proto"].syntax == "proto3"
    msg = message_factory.GetMessageClass(rules)()
    assert msg.strict is True
    again = type(msg).FromString(msg.SerializeToString())
    assert (again.strict, again.HasField("strict")) == (True, False)


# -- the live grpc-js server ----------------------------------------------------------


@pytest.fixture(scope="module")
def live(node_modules: Path) -> Iterator[str]:
    # node_modules: `npm ci` on first use; skipped only without node or npm
    proc = subprocess.Popen(
        ["node", str(NODE_DIR / "common_server.js"), "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def compiled() -> SchemaSource:
    """The same protos compiled by protoc from the npm packages' sources."""
    import grpc_tools
    from grpc_tools import protoc

    from cloudrun_grpc_cli.core.schema import protoset_source

    bundled = Path(grpc_tools.__file__).parent / "_proto"
    includes = [
        MODULES / "grpc-health-check" / "proto",
        MODULES / "@grpc" / "grpc-js" / "proto",
        MODULES / "@grpc" / "grpc-js" / "proto" / "protoc-gen-validate",
        MODULES / "google-proto-files",
        PROTOS,
        bundled,
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = [
            "protoc",
            *(f"-I{d}" for d in includes),
            f"--descriptor_set_out={out}",
            "--include_imports",
            "health/v1/health.proto",
            "channelz.proto",
            "library/v1/library.proto",
            "legacy/legacy.proto",
        ]
        assert protoc.main(args) == 0, args
        return protoset_source([out])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list"], LIST),
        (["list", "grpc.health.v1.Health"], LIST_HEALTH),
        (["list", "library.v1.Library"], LIST_LIBRARY),
    ],
    ids=["services", "health", "library"],
)
@pytest.mark.node
def test_live_list(live: str, argv: list[str], expected: str) -> None:
    r = run(argv[0], "--plaintext", live, *argv[1:])
    assert (r.code, r.stderr, r.stdout) == (0, "", expected)


@pytest.mark.parametrize("symbol", list(DESCRIBED))
@pytest.mark.node
def test_live_describe(live: str, symbol: str) -> None:
    r = run("describe", "--plaintext", live, symbol)
    assert (r.code, r.stderr) == (0, "")
    assert r.json["proto"] == DESCRIBED[symbol]


#: Symbols whose reflected text is protoc's, comments aside: nothing in them is lost.
SAME_AS_COMPILED = [
    "grpc.health.v1.Health",
    "grpc.health.v1.HealthCheckRequest",
    "grpc.health.v1.HealthCheckResponse",
    "grpc.channelz.v1.Channelz",
    "grpc.channelz.v1.ChannelRef",
    "grpc.channelz.v1.SocketRef",
    "grpc.channelz.v1.ChannelData",
    "grpc.channelz.v1.Security",
    "grpc.channelz.v1.Address",
    "validate.StringRules",
    "validate.FieldRules",
    "validate.KnownRegex",
    "validate.RepeatedRules",
    "google.api.HttpRule",
    "google.api.Http",
    "google.api.FieldBehavior",
    "library.v1.Book",
    "legacy.Old.size",
    "legacy.Old.codes",
]


@pytest.mark.node
def test_live_schema_matches_protoc(live: str, compiled: SchemaSource) -> None:
    from cloudrun_grpc_cli.core.schema import reflection_source

    src = reflection_source(grpc.insecure_channel(live), metadata=list, timeout=10, address=live)
    assert src.list_services() == [
        "grpc.channelz.v1.Channelz",
        "grpc.health.v1.Health",
        "library.v1.Library",
    ]
    for name in SAME_AS_COMPILED:
        assert to_proto_text(src.find_symbol(name)) == strip_comments(
            to_proto_text(compiled.find_symbol(name))
        ), name


@pytest.mark.node
def test_live_call_health_check(live: str) -> None:
    r = run("call", "--plaintext", live, "grpc.health.v1.Health/Check", "-d", '{"service": "library.v1.Library"}')
    assert (r.code, r.stderr, r.stdout) == (0, "", '{"status":"SERVING"}\n')
    r = run("call", "--plaintext", live, "grpc.health.v1.Health/Check", "-d", '{"service": "nope"}')
    assert (r.code, r.stdout, r.stderr) == (
        69,
        "",
        "error: NOT_FOUND: Health status unknown for service nope\n",
    )


@pytest.mark.node
def test_live_call_channelz(live: str) -> None:
    r = run("call", "--plaintext", live, "grpc.channelz.v1.Channelz/GetTopChannels", "-d", "{}")
    assert (r.code, r.stderr, r.stdout) == (0, "", '{"end":true}\n')
    r = run("call", "--plaintext", live, "grpc.channelz.v1.Channelz/GetServers", "-d", "{}")
    assert (r.code, r.stderr) == (0, "")
    servers = r.json["server"]
    assert [s["ref"] for s in servers] == [{"serverId": "1"}]
    assert servers[0]["listenSocket"] == [{"socketId": "1", "name": live}]
    assert r.json["end"] is True


@pytest.mark.node
def test_live_call_library(live: str) -> None:
    r = run("call", "--plaintext", live, "library.v1.Library/GetBook", "-d", '{"name": "shelves/1/books/2"}')
    assert (r.code, r.stderr, r.stdout) == (
        0,
        "",
        '{"name":"shelves/1/books/2","title":"Dune","pages":412,"authors":["Frank Herbert"]}\n',
    )
