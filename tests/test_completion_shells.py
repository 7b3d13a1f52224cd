"""Tab in the shells people use: bash, zsh and fish on a pseudo-terminal.

Completion is installed the way the README says (`crgrpc --install-completion`,
then a new shell), and every line is typed and completed by the shell itself:
bash splits `host:port` at COMP_WORDBREAKS before crgrpc sees it, zsh autoloads
the function on the first Tab, fish passes its own command line. The servers
are real Echo servers on 127.0.0.1 (plaintext, TLS with a CA made here, a unix
socket) and hostile.Types, whose schema has an enum.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.hostile import types_server
from .support.servers import RunningServer, echo_server, make_certs, unix_echo_server
from .support.shells import Shell, crgrpc_script, need

pytest.importorskip("pexpect")

ECHO_SYMBOLS = [
    "echo.EchoReply",
    "echo.EchoRequest",
    "echo.EchoServer",
    "echo.EchoServer.SayHello",
    "echo.EchoServer.SayHelloBidi",
    "echo.EchoServer.SayHelloClientStream",
    "echo.EchoServer.SayHelloStream",
]


class Servers:
    def __init__(self, plain: RunningServer, tls: RunningServer, ca: Path, unix: str, types_port: int) -> None:
        self.plain = plain
        self.tls = tls
        self.ca = ca
        self.unix = unix
        self.types = f"http://127.0.0.1:{types_port}"

    @property
    def port(self) -> int:
        return self.plain.port


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    crgrpc_script()
    tmp = tmp_path_factory.mktemp("servers")
    certs = make_certs(tmp / "tls")
    with echo_server() as plain, echo_server(tls=certs) as tls, unix_echo_server(tmp / "echo.sock") as unix, types_server() as types:
        yield Servers(plain, tls, certs.ca, unix, types.port)


@pytest.fixture(scope="module")
def bash(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    need("bash")
    shell = Shell("bash", tmp_path_factory.mktemp("bash-home"))
    try:
        shell.install_completion()
        yield shell
    finally:
        shell.close()


# --- bash ------------------------------------------------------------------------------------


def test_bash_completes_a_method_after_host_port(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc call --plaintext 127.0.0.1:{servers.port} echo.EchoServer/SayHelloB"
    assert bash.complete(typed, "idi") == typed + "idi"


def test_bash_completes_a_bare_method_after_http_url(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc call http://127.0.0.1:{servers.port} SayHelloC"
    assert bash.complete(typed, "lientStream") == typed + "lientStream"


def test_bash_completes_after_https_url(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc call https://localhost:{servers.tls.port} --cacert {servers.ca} echo.EchoServer/SayHelloS"
    assert bash.complete(typed, "tream") == typed + "tream"


def test_bash_completes_after_unix_url(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc call {servers.unix} SayHelloB"
    assert bash.complete(typed, "idi") == typed + "idi"


def test_bash_lists_services_after_a_target_with_a_port(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc list http://127.0.0.1:{servers.port} "
    assert bash.listing(typed) == ["echo.EchoServer", "grpc.reflection.v1alpha.ServerReflection"]


def test_bash_describe_lists_messages_too(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc describe 127.0.0.1:{servers.port} --plaintext echo."
    assert bash.listing(typed) == ECHO_SYMBOLS


def test_bash_describe_completes_a_nested_enum(bash: Shell, servers: Servers) -> None:
    typed = f"crgrpc describe {servers.types} hostile.Scalars.Co"
    assert bash.complete(typed, "lor") == typed + "lor"


def test_bash_without_colon_in_comp_wordbreaks(bash: Shell, servers: Servers) -> None:
    """Some users take `:` out of COMP_WORDBREAKS: bash then keeps host:port whole."""
    _, rc = bash.run('saved=$COMP_WORDBREAKS; COMP_WORDBREAKS=${COMP_WORDBREAKS//:/}')
    assert rc == 0
    try:
        typed = f"crgrpc call http://127.0.0.1:{servers.port} SayHelloC"
        assert bash.complete(typed, "lientStream") == typed + "lientStream"
    finally:
        bash.run('COMP_WORDBREAKS=$saved')


# --- zsh and fish: one shell each, from the install to the first Tab and on --------------------


@pytest.mark.parametrize("kind", ["zsh", "fish"])
def test_zsh_and_fish_complete_every_target_form(kind: str, servers: Servers, tmp_path: Path) -> None:
    need(kind)
    shell = Shell(kind, tmp_path / f"{kind}-home")
    try:
        shell.install_completion()
        # The first Tab of a new shell (zsh autoloads the function from ~/.zfunc on it).
        typed = f"crgrpc call --plaintext 127.0.0.1:{servers.port} echo.EchoServer/SayHelloB"
        assert shell.complete(typed, "idi") == typed + "idi"
        typed = f"crgrpc call http://127.0.0.1:{servers.port} SayHelloC"
        assert shell.complete(typed, "lientStream") == typed + "lientStream"
        typed = f"crgrpc call https://localhost:{servers.tls.port} --cacert {servers.ca} SayHelloS"
        assert shell.complete(typed, "tream") == typed + "tream"
        typed = f"crgrpc call {servers.unix} SayHelloB"
        assert shell.complete(typed, "idi") == typed + "idi"
        typed = f"crgrpc describe {servers.types} hostile.Scalars.Co"
        assert shell.complete(typed, "lor") == typed + "lor"
        typed = f"crgrpc describe http://127.0.0.1:{servers.port} echo.EchoRep"
        assert shell.complete(typed, "ly") == typed + "ly"
    finally:
        shell.close()
