"""DATA read as the call goes: -d @- and -d @FILE (a file or a FIFO) for client
and bidi streams, and output that reaches a pipe or a file while it runs.

A bad message still cancels the call at its exact index, with the count sent
(exit 6); a bidi call prints each reply before the next line is written; a
file of output shows each message about as it arrives (`tail -f`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run, run_process
from tests.support.servers import echo_server

HELLO = "Hello {} from K_REVISION local"


@pytest.fixture(scope="module")
def echo() -> Iterator[Any]:
    with echo_server() as srv:
        yield srv


def lines(*names: str) -> str:
    return "".join(json.dumps({"name": n}) + "\n" for n in names)


BAD_THIRD = lines("a", "b") + '{"count": "x"}\n' + lines("d")
SYNTAX_FOURTH = lines("a", "b", "c") + '{"name": }\n' + lines("e")


@pytest.mark.parametrize("source", ["file", "stdin", "process-stdin", "process-file"])
@pytest.mark.parametrize(("data", "sent", "error"), [
    (BAD_THIRD, 2, "request data: message 3: field count: "),
    (SYNTAX_FOURTH, 3, "request data: invalid JSON in message 4 at line 4 column 10: Expecting value"),
])
def test_a_bad_message_cancels_at_its_index(
    echo: Any, tmp_path: Path, source: str, data: str, sent: int, error: str
) -> None:
    args = ["call", "--plaintext", echo.address, "SayHelloBidi", "-o", "json"]
    path = tmp_path / "in.jsonl"
    path.write_text(data)
    if source == "file":
        r = run(*args, "-d", f"@{path}")
    elif source == "stdin":
        r = run(*args, "-d", "@-", stdin=data)
    elif source == "process-stdin":
        r = run_process(*args, "-d", "@-", input=data)
    else:
        r = run_process(*args, "-d", f"@{path}")
    assert r.code == 6, r
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"error: {error}"), r
    assert first.endswith(f"(call cancelled after {sent} messages sent)"), r
    # replies to what was sent may or may not have come back before the cancel
    assert len(r.stdout.splitlines()) <= sent


def test_not_utf8_in_the_middle_of_a_file(echo: Any, tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(lines("a", "b").encode() + b'{"name": "\xff"}\n')
    r = run("call", "--plaintext", echo.address, "SayHelloClientStream", "-d", f"@{path}")
    assert r.code == 6, r
    assert r.stderr.splitlines()[0] == (
        f"error: request data: {str(path)!r} is not UTF-8 text (call cancelled after 2 messages sent)"
    ), r


def test_a_large_file_is_streamed(echo: Any, tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    n = 5000
    path.write_text("".join(f'{{"name":"m{i}"}}\n' for i in range(n)))
    r = run_process("call", "--plaintext", echo.address, "SayHelloClientStream", "-d", f"@{path}")
    assert (r.code, r.stderr) == (0, ""), r
    assert json.loads(r.stdout) == {"message": HELLO.format(", ".join(f"m{i}" for i in range(n)))}


def test_a_unary_call_from_a_file_takes_one_message(echo: Any, tmp_path: Path) -> None:
    path = tmp_path / "two.jsonl"
    path.write_text(lines("a", "b"))
    r = run("call", "--plaintext", echo.address, "SayHello", "-d", f"@{path}")
    assert r.code == 6, r
    assert r.stderr.splitlines()[0] == (
        "error: request data: 2 messages for the unary method echo.EchoServer/SayHello, which takes one"
    )


def _spawn(*argv: str, stdout: Any = subprocess.PIPE, stdin: Any = subprocess.PIPE) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", *argv],
        stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
    )


def _read_line(proc: subprocess.Popen[bytes], timeout: float = 20) -> bytes:
    """One line of proc's stdout, waiting at most `timeout` (generous: not a speed test)."""
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(proc.stdout.readline() if proc.stdout else b""))
    t.daemon = True
    t.start()
    t.join(timeout)
    assert got, "no reply within the timeout: the reply was not written as it arrived"
    return got[0]


def test_interactive_bidi_prints_each_reply_before_the_next_line(echo: Any) -> None:
    proc = _spawn("call", "--plaintext", echo.address, "SayHelloBidi", "-d", "@-", "-o", "json")
    assert proc.stdin is not None
    try:
        for name in ("a", "b", "c"):
            proc.stdin.write(lines(name).encode())
            proc.stdin.flush()
            # the next line is written only once this reply is out
            assert json.loads(_read_line(proc)) == {"message": HELLO.format(name)}
        proc.stdin.close()
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_bidi_from_a_fifo_is_sent_as_it_is_read(echo: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    proc = _spawn("call", "--plaintext", echo.address, "SayHelloBidi", "-d", f"@{fifo}",
                  "-o", "json", stdin=subprocess.DEVNULL)
    try:
        with open(fifo, "w") as writer:
            for name in ("x", "y"):
                writer.write(lines(name))
                writer.flush()
                assert json.loads(_read_line(proc)) == {"message": HELLO.format(name)}
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_a_file_of_output_gets_each_message_while_the_call_runs(echo: Any, tmp_path: Path) -> None:
    """`tail -f out.jsonl`: a slow stream's messages reach a regular file as they come,
    not only when the call ends (here the call waits for more input)."""
    out = tmp_path / "out.jsonl"
    with out.open("wb") as f:
        proc = _spawn("call", "--plaintext", echo.address, "SayHelloBidi", "-d", "@-",
                      "-o", "json", stdout=f)
    assert proc.stdin is not None
    try:
        for i, name in enumerate(("p", "q"), 1):
            proc.stdin.write(lines(name).encode())
            proc.stdin.flush()
            deadline = time.monotonic() + 20
            while out.read_text().count("\n") < i and time.monotonic() < deadline:
                time.sleep(0.02)
            assert out.read_text().splitlines()[i - 1] == json.dumps(
                {"message": HELLO.format(name)}, separators=(",", ":"))
        proc.stdin.close()
        assert proc.wait(20) == 0
    finally:
        proc.kill()
        proc.wait()


def test_retries_read_a_file_again_from_the_start(tmp_path: Path) -> None:
    """A front end's 503 before any answer: with --retries a file is sent again,
    as often as data given whole; standard input cannot be read again."""
    from tests.support.frontend import FrontEnd

    path = tmp_path / "in.jsonl"
    path.write_text(lines("a", "b", "c"))
    counts = {}
    for how, data, stdin in (("text", lines("a", "b", "c"), ""), ("file", f"@{path}", ""),
                             ("stdin", "@-", lines("a", "b", "c"))):
        fe = FrontEnd(status=503).start()
        try:
            r = run("call", "--plaintext", fe.address, "--protoset", str(_protoset(tmp_path)),
                    "echo.EchoServer/SayHelloClientStream", "-d", data, "--retries", "1",
                    stdin=stdin)
        finally:
            fe.stop()
        assert r.code == 78, r
        counts[how] = len(fe.paths())
    assert counts["file"] == counts["text"] > counts["stdin"], counts


def _protoset(tmp: Path) -> Path:
    from google.protobuf import descriptor_pb2

    from cloudrun_grpc_cli.demo import echo_pb2

    fds = descriptor_pb2.FileDescriptorSet()
    echo_pb2.DESCRIPTOR.CopyToProto(fds.file.add())
    out = tmp / "echo.protoset"
    out.write_bytes(fds.SerializeToString())
    return out
