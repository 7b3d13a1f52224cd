"""A closed pipe exits 141, with nothing on stderr, in every output mode.

Real processes writing into real pipes: either one whose reader is gone
before crgrpc writes a byte (deterministic for outputs of any size), or
`| head -1` in bash, reading PIPESTATUS, for streams long enough to fill the
pipe after head has left.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.hostile import mint_jwt
from .support.servers import RunningServer, echo_server
from .support.shells import BIN

CRGRPC = [sys.executable, "-m", "cloudrun_grpc_cli"]  # the console script's run(), as installed


def into_closed_pipe(*argv: str, stderr_too: bool = False) -> tuple[int, bytes]:
    """crgrpc's stdout (and stderr) into a pipe nobody reads any more: (exit code, stderr)."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before crgrpc writes
    try:
        proc = subprocess.run(
            [*CRGRPC, *argv], stdin=subprocess.DEVNULL, stdout=write_end,
            stderr=write_end if stderr_too else subprocess.PIPE, timeout=120, check=False,
        )
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr or b""


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    with echo_server() as s:
        yield s


STREAM = ["SayHelloStream", "-d", '{"count": 5}']
UNARY = ["SayHello", "-d", '{"name": "a"}']


@pytest.mark.parametrize("mode", ["pretty", "json", "full", "events"])
@pytest.mark.parametrize("call", [STREAM, UNARY], ids=["stream", "unary"])
def test_call_into_a_closed_pipe(server: RunningServer, mode: str, call: list[str]) -> None:
    assert into_closed_pipe("call", "--plaintext", server.address, *call, "-o", mode) == (141, b"")


@pytest.mark.parametrize("mode", ["pretty", "json"])
@pytest.mark.parametrize("what", [[], ["echo.EchoServer"]], ids=["services", "methods"])
def test_list_into_a_closed_pipe(server: RunningServer, mode: str, what: list[str]) -> None:
    assert into_closed_pipe("list", "--plaintext", server.address, *what, "-o", mode) == (141, b"")


@pytest.mark.parametrize("mode", ["pretty", "json"])
def test_describe_into_a_closed_pipe(server: RunningServer, mode: str) -> None:
    assert into_closed_pipe("describe", "--plaintext", server.address, "-o", mode) == (141, b"")


@pytest.mark.parametrize("mode", ["pretty", "json"])
def test_token_decode_into_a_closed_pipe(mode: str) -> None:
    assert into_closed_pipe("token", "decode", mint_jwt("https://echo.example.com"), "-o", mode) == (141, b"")


@pytest.mark.parametrize("mode", ["pretty", "json"])
def test_token_show_into_a_closed_pipe(mode: str) -> None:
    token = mint_jwt("https://echo.example.com")
    assert into_closed_pipe("token", "show", "https://echo.example.com", "--token", token, "-o", mode) == (141, b"")


def test_demo_into_a_closed_pipe() -> None:
    assert into_closed_pipe("demo") == (141, b"")


@pytest.mark.parametrize("mode", ["pretty", "full", "events"])
def test_a_failed_call_whose_document_meets_a_closed_pipe(server: RunningServer, mode: str) -> None:
    """The failure's document (or pretty's status line) cannot be written: 141, no error line."""
    argv = ("call", "--plaintext", server.address, "SayHello", "-d", '{"fail_code": 5}', "-o", mode)
    assert into_closed_pipe(*argv) == (141, b"")


def test_a_failed_call_with_nothing_for_stdout_keeps_its_code(server: RunningServer) -> None:
    """-o json writes no message for a refused call: no pipe was met, the status is the answer."""
    argv = ("call", "--plaintext", server.address, "SayHello", "-d", '{"fail_code": 5}', "-o", "json")
    assert into_closed_pipe(*argv) == (69, b"error: NOT_FOUND: fail_code 5 requested before replying\n")


@pytest.mark.parametrize("mode", ["pretty", "json", "full"])
def test_stdout_and_stderr_into_one_closed_pipe(server: RunningServer, mode: str) -> None:
    """`2>&1 | head`: the error line cannot be written either."""
    argv = ("call", "--plaintext", server.address, "SayHello", "-d", '{"fail_code": 5}', "-o", mode)
    assert into_closed_pipe(*argv, stderr_too=True) == (141, b"")


# --- | head -1 in bash ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "first"),
    [
        ("pretty", "→ echo.EchoServer/SayHelloStream (server) at {address}"),
        ("json", '{{"message":"Msg1 Hello  from K_REVISION local"}}'),
        ("events", '{{"event":"headers","metadata":{{"streamheaderkey":"val"}}}}'),
    ],
)
def test_a_long_stream_into_head(server: RunningServer, mode: str, first: str, tmp_path: Path) -> None:
    if not (BIN / "crgrpc").exists():
        pytest.skip("crgrpc is not installed as a console script in this environment")
    command = (
        f"{shlex.quote(str(BIN / 'crgrpc'))} call --plaintext {server.address} SayHelloStream "
        f"-d '{{\"count\": 20000}}' -o {mode} 2>stderr.txt | head -1; echo \"status ${{PIPESTATUS[0]}}\""
    )
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert proc.stdout.splitlines() == [first.format(address=server.address), "status 141"]
    assert (tmp_path / "stderr.txt").read_text() == ""


def test_demo_into_head(tmp_path: Path) -> None:
    """head leaves after the first line; the demo writes on for seconds (steps printed by Rich
    and by the demo itself): whichever write meets the closed pipe, 141 and nothing said."""
    if not (BIN / "crgrpc").exists():
        pytest.skip("crgrpc is not installed as a console script in this environment")
    command = f"{shlex.quote(str(BIN / 'crgrpc'))} demo 2>stderr.txt | head -1; echo \"status ${{PIPESTATUS[0]}}\""
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    first, status = proc.stdout.splitlines()
    assert first.startswith("Echo service on https://localhost:") and status == "status 141"
    assert (tmp_path / "stderr.txt").read_text() == ""
