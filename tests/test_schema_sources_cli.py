"""list, describe and call give identical results from reflection, --protoset and --proto;
--protoset-out writes what reflection found so a later run needs no reflection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run
from .support.servers import echo_server

ROOT = Path(__file__).resolve().parent.parent
ECHO_PROTO = ROOT / "protos" / "echo.proto"


@pytest.fixture(scope="module")
def with_reflection() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


@pytest.fixture(scope="module")
def without_reflection() -> Iterator[str]:
    with echo_server(reflection=False) as s:
        yield s.address


@pytest.fixture(scope="module")
def protoset(with_reflection: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ps") / "echo.protoset"
    r = run("describe", "--plaintext", with_reflection, "echo.EchoServer", "--protoset-out", str(out))
    assert r.code == 0, r
    assert out.stat().st_size > 0
    return out


def _strip_comments(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [
        {**row, "proto": "\n".join(line for line in row["proto"].splitlines() if not line.strip().startswith("//"))}
        if "proto" in row else row
        for row in rows
    ]


COMMANDS = [
    ["list"],
    ["list", "echo.EchoServer"],
    ["describe", "echo.EchoServer"],
    ["describe", "echo.EchoRequest"],
    ["describe", "echo.EchoServer.SayHelloBidi"],
    ["call", "SayHelloStream", "-d", '{"name":"s","count":2}'],
    ["call", "echo.EchoServer/SayHelloClientStream", "-d", '{"name":"a"}{"name":"b"}'],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_sources_agree(argv: list[str], with_reflection: str, without_reflection: str, protoset: Path) -> None:
    reflected = run(argv[0], "--plaintext", with_reflection, *argv[1:])
    from_set = run(argv[0], "--plaintext", without_reflection, *argv[1:], "--protoset", str(protoset))
    from_proto = run(argv[0], "--plaintext", without_reflection, *argv[1:], "--proto", str(ECHO_PROTO), "-I", str(ECHO_PROTO.parent))
    assert reflected.code == from_set.code == from_proto.code == 0, (reflected, from_set, from_proto)
    if argv == ["list"]:
        # Only the reflecting server lists its reflection service.
        assert reflected.lines == [{"service": "echo.EchoServer"}, {"service": "grpc.reflection.v1alpha.ServerReflection"}]
        assert from_set.lines == from_proto.lines == [{"service": "echo.EchoServer"}]
        return
    assert _strip_comments(reflected.lines) == _strip_comments(from_set.lines) == _strip_comments(from_proto.lines)


def test_proto_source_shows_comments(without_reflection: str) -> None:
    r = run("describe", "--plaintext", without_reflection, "echo.EchoRequest", "--proto", str(ECHO_PROTO))
    assert r.code == 0
    assert "// Replies a stream sends (default 2)." in r.lines[0]["proto"]


def test_protoset_out_from_call_round_trips(with_reflection: str, without_reflection: str, tmp_path: Path) -> None:
    out = tmp_path / "from-call.protoset"
    r = run("call", "--plaintext", with_reflection, "SayHello", "-d", '{"name":"x"}', "--protoset-out", str(out))
    assert r.code == 0
    again = run("call", "--plaintext", without_reflection, "SayHello", "-d", '{"name":"x"}', "--protoset", str(out))
    assert (again.code, again.stdout) == (0, r.stdout)


def test_bad_protoset_exit_5(tmp_path: Path) -> None:
    bad = tmp_path / "bad.protoset"
    bad.write_bytes(b"\xff\xfe not a descriptor set")
    r = run("list", "--plaintext", "127.0.0.1:1", "--protoset", str(bad))
    assert r.code == 5
    assert "bad.protoset" in r.stderr.splitlines()[0]


def test_bad_proto_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.proto"
    bad.write_text('syntax = "proto3";\npackage x;\nmessage M {\n  strin name = 1;\n}\n')
    r = run("list", "--plaintext", "127.0.0.1:1", "--proto", str(bad))
    assert r.code == 5
    assert "bad.proto:4:" in r.stderr.splitlines()[0]
