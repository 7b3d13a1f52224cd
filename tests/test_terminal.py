"""crgrpc in a person's terminal: an interactive bash on a pseudo-terminal.

Ctrl-C is typed (the terminal sends SIGINT to the foreground job, as it does
for a person), `$?` is what the shell reports, and what crgrpc prints is read
from the terminal itself. Every wait is on something printed or on the server
seeing the call, never on time alone.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cloudrun_grpc_cli.cli.main import main
from cloudrun_grpc_cli.render.env import Environment

from .support.hostile import types_server
from .support.servers import echo_server
from .support.shells import PROMPT, Shell, crgrpc_script, need

pytest.importorskip("pexpect")


class CallsSeen(grpc.ServerInterceptor):  # type: ignore[misc]
    """Counts the calls of one method as the server receives them."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.count = 0
        self.arrived = threading.Event()

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        if details.method == self.method:
            self.count += 1
            self.arrived.set()
        return continuation(details)


@pytest.fixture
def bash(tmp_path: Path) -> Iterator[Shell]:
    crgrpc_script()
    need("bash")
    shell = Shell("bash", tmp_path / "home")
    try:
        yield shell
    finally:
        shell.close()


def last_status(shell: Shell) -> int:
    """`$?` of the command line before, as the shell reports it."""
    _, rc = shell.run("(exit $?)")
    return rc


# --- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_stops_a_shell_loop_like_grpcurl(bash: Shell) -> None:
    """A loop of three slow calls; Ctrl-C during the first: no second call, `$?` is 130."""
    seen = CallsSeen("/hostile.Types/Slow")
    with types_server(interceptors=(seen,)) as server:
        bash.child.send(
            f"for i in 1 2 3; do echo \"iteration $i\"; crgrpc call http://{server.address} "
            "hostile.Types/Slow -d '{\"seconds\": 60}'; done\r"
        )
        bash.child.expect_exact("iteration 1\r\n")
        assert seen.arrived.wait(20), "the first call never reached the server"
        bash.child.send("\x03")  # Ctrl-C, from the terminal
        bash.child.expect_exact(PROMPT)
        printed = bash.child.before
        assert "error: interrupted\r\n" in printed
        assert "Traceback" not in printed
        assert last_status(bash) == 130
        assert "iteration 2" not in printed
        assert server.cancelled.wait(10), "the server never saw the call cancelled"
        assert seen.count == 1


def test_ctrl_c_in_a_script_loop_stops_the_script(tmp_path: Path) -> None:
    """`bash script.sh` in the foreground of a terminal: the loop ends, so does the script."""
    seen = CallsSeen("/hostile.Types/Slow")
    script = tmp_path / "calls.sh"
    with types_server(interceptors=(seen,)) as server:
        script.write_text(
            "for i in 1 2 3; do\n"
            f"  crgrpc call http://{server.address} hostile.Types/Slow -d '{{\"seconds\": 60}}' -o json\n"
            "done\n"
            "echo after the loop\n"
        )
        crgrpc_script()
        shell = Shell("bash", tmp_path / "home")
        try:
            shell.child.send(f"bash {script}\r")
            assert seen.arrived.wait(20), "the first call never reached the server"
            shell.child.send("\x03")
            shell.child.expect_exact(PROMPT)
            printed = shell.child.before
            assert last_status(shell) == 130
        finally:
            shell.close()
        assert "error: interrupted" in printed and "after the loop" not in printed
        assert seen.count == 1


class _Interrupting(io.StringIO):
    """Standard input that a Ctrl-C interrupts while crgrpc reads it."""

    def read(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt

    def readline(self, size: int | None = -1) -> str:
        raise KeyboardInterrupt


def test_main_in_process_still_returns_130() -> None:
    """Only the console entry point ends by SIGINT: main() returns 130 to its caller."""
    out, err = io.StringIO(), io.StringIO()
    env = Environment(stdout=out, stderr=err, stdin=_Interrupting(), stdout_isatty=False, stderr_isatty=False, stdin_isatty=False, color="never")
    with echo_server() as s:
        code = main(["call", "--plaintext", s.address, "echo.EchoServer/SayHello", "-d", "@-"], env=env)
    assert (code, out.getvalue(), err.getvalue()) == (130, "", "error: interrupted\n")


# --- interactive bidi -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def echo_address() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


def test_interactive_bidi_says_how_to_type_and_end(bash: Shell, echo_address: str) -> None:
    bash.child.send(f"crgrpc call --plaintext {echo_address} SayHelloBidi -d @-\r")
    bash.child.expect_exact("type JSON messages; Ctrl-D ends\r\n")
    assert bash.child.before.endswith(f"\r\n→ echo.EchoServer/SayHelloBidi (bidi) at {echo_address}\r\n")
    bash.child.send('{"name": "a"}\r')
    bash.child.expect_exact('"message": "Hello a from K_REVISION local"\r\n}\r\n')
    bash.child.send("\x04")  # Ctrl-D: the end of the request stream
    bash.child.expect(r"✓ OK  1 message · [0-9.]+ ms\r\n")
    bash.child.expect_exact(PROMPT)
    assert last_status(bash) == 0


def test_client_stream_from_the_terminal_says_it_too(bash: Shell, echo_address: str) -> None:
    bash.child.send(f"crgrpc call --plaintext {echo_address} SayHelloClientStream -d @- -o json\r")
    bash.child.expect_exact("type JSON messages; Ctrl-D ends\r\n")
    bash.child.send('{"name": "a"}\r{"name": "b"}\r\x04')
    bash.child.expect_exact(PROMPT)
    assert bash.child.before.endswith('{"name": "b"}\r\n{"message":"Hello a, b from K_REVISION local"}\r\n')
    assert last_status(bash) == 0


def test_no_typing_hint_when_stdin_is_not_a_terminal(bash: Shell, echo_address: str) -> None:
    out, rc = bash.run(f"printf '{{\"name\":\"a\"}}\\n' | crgrpc call --plaintext {echo_address} SayHelloBidi -d @- -o json")
    assert rc == 0
    assert out.endswith('\r\n{"message":"Hello a from K_REVISION local"}\r\n')
    assert "Ctrl-D" not in out


def test_no_typing_hint_for_a_unary_method(bash: Shell, echo_address: str) -> None:
    bash.child.send(f"crgrpc call --plaintext {echo_address} SayHello -d @- -o json\r")
    bash.child.send('{"name": "a"}\r\x04')
    bash.child.expect_exact('{"message":"Hello a from K_REVISION local"}\r\n')
    assert "Ctrl-D" not in bash.child.before
    bash.child.expect_exact(PROMPT)


# --- serve ------------------------------------------------------------------------------------


def test_serve_ends_quietly_on_ctrl_c_with_130_even_with_a_call_in_flight(bash: Shell) -> None:
    import queue

    from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc

    bash.child.send("crgrpc serve --host 127.0.0.1 --port 0\r")
    bash.child.expect(r"listening on (127\.0\.0\.1:\d+)\r\n")
    address = bash.child.match.group(1)
    requests: queue.Queue[Any] = queue.Queue()
    with grpc.insecure_channel(address) as channel:
        stub = echo_pb2_grpc.EchoServerStub(channel)
        replies = stub.SayHelloBidi(iter(requests.get, None), timeout=30)
        requests.put(echo_pb2.EchoRequest(name="a"))
        assert next(replies).message == "Hello a from K_REVISION local"  # serving, a call open
        bash.child.send("\x03")
        bash.child.expect_exact(PROMPT)
        assert bash.child.before == "^C\r\n"  # the terminal's echo of Ctrl-C; no traceback, no error
        with pytest.raises(grpc.RpcError) as stopped:
            next(replies)
        assert stopped.value.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE)
        requests.put(None)
    assert last_status(bash) == 130
