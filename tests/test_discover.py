"""crgrpc list and describe through the CLI: exact output in json and pretty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run
from .support.servers import echo_server, make_certs

SERVICE_PROTO = (
    "service EchoServer {\n"
    "  rpc SayHello(echo.EchoRequest) returns (echo.EchoReply);\n"
    "  rpc SayHelloStream(echo.EchoRequest) returns (stream echo.EchoReply);\n"
    "  rpc SayHelloClientStream(stream echo.EchoRequest) returns (echo.EchoReply);\n"
    "  rpc SayHelloBidi(stream echo.EchoRequest) returns (stream echo.EchoReply);\n"
    "}"
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


def test_list_services_json(server: str) -> None:
    r = run("list", "--plaintext", server)
    assert (r.code, r.stderr) == (0, "")
    assert r.lines == [{"service": "echo.EchoServer"}, {"service": "grpc.reflection.v1alpha.ServerReflection"}]


def test_list_methods_json(server: str) -> None:
    r = run("list", "--plaintext", server, "echo.EchoServer")
    assert r.code == 0
    assert r.lines == [
        {"method": "echo.EchoServer/SayHello", "kind": "unary", "request": "echo.EchoRequest", "response": "echo.EchoReply"},
        {"method": "echo.EchoServer/SayHelloStream", "kind": "server", "request": "echo.EchoRequest", "response": "echo.EchoReply"},
        {"method": "echo.EchoServer/SayHelloClientStream", "kind": "client", "request": "echo.EchoRequest", "response": "echo.EchoReply"},
        {"method": "echo.EchoServer/SayHelloBidi", "kind": "bidi", "request": "echo.EchoRequest", "response": "echo.EchoReply"},
    ]


def test_list_methods_pretty(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    r = run("list", "--plaintext", server, "echo.EchoServer", tty=True)
    assert r.code == 0
    rows = [line.split() for line in r.stdout.splitlines()]
    assert rows[0] == ["method", "kind", "request", "→", "response"]
    assert rows[1:] == [
        ["echo.EchoServer/SayHello", "unary", "echo.EchoRequest", "→", "echo.EchoReply"],
        ["echo.EchoServer/SayHelloStream", "server", "echo.EchoRequest", "→", "echo.EchoReply"],
        ["echo.EchoServer/SayHelloClientStream", "client", "echo.EchoRequest", "→", "echo.EchoReply"],
        ["echo.EchoServer/SayHelloBidi", "bidi", "echo.EchoRequest", "→", "echo.EchoReply"],
    ]


def test_list_unknown_service_exit_5(server: str) -> None:
    r = run("list", "--plaintext", server, "echo.Nope")
    assert r.code == 5
    assert r.stderr.startswith("error: ")
    assert "echo.Nope" in r.stderr.splitlines()[0]


def test_describe_service_json(server: str) -> None:
    r = run("describe", "--plaintext", server, "echo.EchoServer")
    assert r.code == 0
    assert r.lines == [{"symbol": "echo.EchoServer", "kind": "service", "proto": SERVICE_PROTO}]


def test_describe_all_services_by_default(server: str) -> None:
    r = run("describe", "--plaintext", server)
    assert r.code == 0
    assert [row["symbol"] for row in r.lines] == ["echo.EchoServer", "grpc.reflection.v1alpha.ServerReflection"]


@pytest.mark.parametrize(
    ("symbol", "kind", "proto"),
    [
        ("echo.EchoRequest", "message", "message EchoRequest {\n  string name = 1;\n  int32 count = 2;\n  int32 fail_code = 3;\n  int32 fail_after = 4;\n}"),
        ("echo.EchoReply", "message", "message EchoReply {\n  string message = 1;\n}"),
        ("echo.EchoServer.SayHello", "method", "rpc SayHello(echo.EchoRequest) returns (echo.EchoReply);"),
        ("echo.EchoServer/SayHelloBidi", "method", "rpc SayHelloBidi(stream echo.EchoRequest) returns (stream echo.EchoReply);"),
    ],
)
def test_describe_symbols_json(server: str, symbol: str, kind: str, proto: str) -> None:
    r = run("describe", "--plaintext", server, symbol)
    assert r.code == 0, r
    [row] = r.lines
    assert (row["kind"], row["proto"]) == (kind, proto)


def test_describe_pretty_plain(server: str) -> None:
    r = run("describe", "--plaintext", server, "echo.EchoReply", "-o", "pretty")
    assert r.code == 0
    assert r.stdout == "echo.EchoReply is a message:\nmessage EchoReply {\n  string message = 1;\n}\n"


def test_describe_pretty_highlighted_on_terminal(server: str) -> None:
    r = run("describe", "--plaintext", server, "echo.EchoReply", tty=True, color="always")
    assert r.code == 0
    assert "\x1b[" in r.stdout  # Rich's syntax highlighting
    assert "EchoReply" in r.stdout


def test_describe_unknown_symbol_suggests(server: str) -> None:
    r = run("describe", "--plaintext", server, "echo.EchoRequets")
    assert r.code == 5
    assert "echo.EchoRequest" in r.stderr


def test_list_over_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with echo_server(tls=certs) as s:
        r = run("list", f"localhost:{s.port}", "--cacert", str(certs.ca), "--no-auth")
    assert (r.code, r.stderr) == (0, "")
    assert r.lines[0] == {"service": "echo.EchoServer"}


def test_list_without_reflection_exit_5() -> None:
    with echo_server(reflection=False) as s:
        r = run("list", "--plaintext", s.address)
    assert r.code == 5
    assert "--proto" in r.stderr and "--protoset" in r.stderr
