"""list and describe (issue 11, items 9 and 10): the short unique names call accepts,
and the server's present answer, never a cached one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from .support.cli import run
from .support.servers import echo_server


class Switch(grpc.ServerInterceptor):  # type: ignore[misc]
    """Refuses reflection once `refuse` is set (a server that changed its mind)."""

    def __init__(self) -> None:
        self.refuse = False
        self.reflection_calls = 0

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        if "ServerReflection" not in details.method:
            return continuation(details)
        self.reflection_calls += 1
        if not self.refuse:
            return continuation(details)

        def deny(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "reflection is off now")

        return grpc.stream_stream_rpc_method_handler(deny)


@pytest.fixture()
def switched() -> Iterator[tuple[str, Switch]]:
    switch = Switch()
    with echo_server(interceptors=(switch,)) as s:
        yield s.address, switch


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


@pytest.mark.parametrize("name", ["EchoServer", "echo.EchoServer", ".echo.EchoServer"])
def test_list_takes_a_short_service_name(server: str, name: str) -> None:
    r = run("list", "--plaintext", server, name, "-o", "json")
    assert r.code == 0, r
    assert [row["method"] for row in r.lines] == [
        "echo.EchoServer/SayHello",
        "echo.EchoServer/SayHelloStream",
        "echo.EchoServer/SayHelloClientStream",
        "echo.EchoServer/SayHelloBidi",
    ]


@pytest.mark.parametrize(
    ("name", "symbol", "kind"),
    [
        ("SayHello", "echo.EchoServer.SayHello", "method"),
        ("EchoServer.SayHello", "echo.EchoServer.SayHello", "method"),
        ("EchoServer/SayHello", "echo.EchoServer.SayHello", "method"),
        ("EchoRequest", "echo.EchoRequest", "message"),
        ("EchoServer", "echo.EchoServer", "service"),
        ("echo.EchoReply", "echo.EchoReply", "message"),
    ],
)
def test_describe_takes_short_names(server: str, name: str, symbol: str, kind: str) -> None:
    r = run("describe", "--plaintext", server, name, "-o", "json")
    assert r.code == 0, r
    assert [(row["symbol"], row["kind"]) for row in r.lines] == [(symbol, kind)]


def test_describe_an_unknown_short_name(server: str) -> None:
    r = run("describe", "--plaintext", server, "Nope")
    assert r.code == 5
    assert r.stderr == (
        "error: symbol not found: Nope\n"
        f"hint: crgrpc list {server} --plaintext shows the services; add a SERVICE for its methods\n"
    )


def test_list_unknown_service_suggests(server: str) -> None:
    r = run("list", "--plaintext", server, "EchoServe")
    assert r.code == 5
    assert r.stderr.splitlines()[0] == "error: service not found: EchoServe"


@pytest.mark.parametrize("command", [["list"], ["describe", "EchoRequest"]])
def test_discovery_shows_the_servers_present_answer(switched: tuple[str, Switch], command: list[str]) -> None:
    address, switch = switched
    first = run(command[0], "--plaintext", address, *command[1:], "-o", "json")
    assert first.code == 0
    switch.refuse = True
    again = run(command[0], "--plaintext", address, *command[1:], "-o", "json")
    assert again.code == 71  # not the cached answer with exit 0
    assert again.stdout == ""
    assert again.stderr.splitlines()[0] == "error: PERMISSION_DENIED: reflection: reflection is off now"


def test_list_refreshes_the_cache_that_call_reads(switched: tuple[str, Switch]) -> None:
    address, switch = switched
    assert run("list", "--plaintext", address, "EchoServer").code == 0
    once = switch.reflection_calls
    assert once > 0
    assert run("list", "--plaintext", address, "EchoServer").code == 0
    assert switch.reflection_calls == 2 * once  # each list asked the server
    r = run("call", "--plaintext", address, "echo.EchoServer/SayHello", "-d", '{"name":"c"}')
    assert r.code == 0
    assert switch.reflection_calls == 2 * once  # call used what list stored
