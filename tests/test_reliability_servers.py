"""Faulty and hostile servers: crgrpc says what happened, with the right exit code,
in bounded time, and prints what it received before things went wrong.

(Ctrl-C during a stream and `| head -1` are in tests/test_process.py.)
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from cloudrun_grpc_cli.demo import echo_pb2

from .support.cli import run, run_process
from .support.hostile import (
    Blackhole,
    DroppingServer,
    echo_protoset,
    spawn_serve,
    stop_process,
    types_server,
)
from .support.reflection_servers import ReflectionServer, start_files_server
from .support.servers import echo_server, make_certs


def _spawn(*argv: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


# -- the connection goes away mid-stream -------------------------------------------------------


def test_connection_reset_mid_stream_prints_what_came_then_78(tmp_path: Path) -> None:
    replies = [echo_pb2.EchoReply(message=f"Msg{i}").SerializeToString() for i in (1, 2)]
    server = DroppingServer(replies)
    protoset = echo_protoset(tmp_path / "echo.protoset")
    try:
        proc = _spawn("call", "--plaintext", server.address, "SayHelloStream", "--protoset", str(protoset))
        assert proc.stdout is not None
        assert proc.stdout.readline() == b'{"message":"Msg1"}\n'
        assert proc.stdout.readline() == b'{"message":"Msg2"}\n'
        server.drop()  # RST: no trailers, no status
        out, err = proc.communicate(timeout=30)
    finally:
        server.close()
    assert proc.returncode == 64 + 14, err
    assert out == b""  # nothing more, and nothing half-written
    text = err.decode()
    assert "Traceback" not in text
    assert _error_line(text).startswith("error: UNAVAILABLE: ")


def test_server_process_killed_mid_stream() -> None:
    server, port = spawn_serve()
    try:
        proc = _spawn("call", "--plaintext", f"127.0.0.1:{port}", "SayHelloStream", "-d", '{"name":"k","count":10000000}')
        assert proc.stdout is not None
        first = [proc.stdout.readline() for _ in range(3)]
        server.send_signal(signal.SIGKILL)
        # Read on through the same buffered reader: communicate() reads the pipe's fd
        # directly and would lose what readline() had already buffered.
        out = proc.stdout.read()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        stop_process(server)
    assert proc.returncode == 64 + 14, err
    lines = (b"".join(first) + out).decode().splitlines()
    assert 3 <= len(lines) < 10000000
    # Every line printed is a whole message, in order.
    assert [json.loads(ln)["message"].split()[0] for ln in lines] == [f"Msg{i}" for i in range(1, len(lines) + 1)]
    text = err.decode()
    assert "Traceback" not in text
    assert _error_line(text).startswith("error: UNAVAILABLE: ")


# -- a response over --max-msg-size -------------------------------------------------------------


def test_large_message_after_small_ones_is_72_naming_the_flag() -> None:
    with types_server() as s:
        r = run("call", "--plaintext", s.address, "hostile.Types/Grow", "-d", '{"small": 2, "big_bytes": 5000}', "--max-msg-size", "1000")
        full = run("call", "--plaintext", s.address, "hostile.Types/Grow", "-d", '{"small": 1, "big_bytes": 5000}', "--max-msg-size", "1000", "-o", "full")
        ok = run("call", "--plaintext", s.address, "hostile.Types/Grow", "-d", '{"small": 1, "big_bytes": 5000}', "--max-msg-size", "6000")
    assert r.code == 72, r
    assert [json.loads(ln)["seq"] for ln in r.stdout.splitlines()] == [1, 2]
    assert _error_line(r.stderr).startswith("error: RESOURCE_EXHAUSTED: ")
    assert "--max-msg-size" in r.stderr
    assert full.code == 72
    doc = full.json
    assert doc["status"]["code"] == 8 and len(doc["messages"]) == 1
    assert (ok.code, len(ok.stdout.splitlines())) == (0, 2)


# -- reflection that answers nonsense ------------------------------------------------------------


def _service_file(name: str, deps: tuple[str, ...] = ()) -> descriptor_pb2.FileDescriptorProto:
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name=name, package="t", syntax="proto3", dependency=list(deps))
    msg = fdp.message_type.add(name="A" if name == "a.proto" else "B")
    msg.field.add(name="x", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    if name == "a.proto":
        svc = fdp.service.add(name="S")
        svc.method.add(name="Do", input_type=".t.A", output_type=".t.A")
    return fdp


@pytest.fixture
def files_servers() -> Iterator[list[ReflectionServer]]:
    started: list[ReflectionServer] = []
    yield started
    for s in started:
        s.stop()


@pytest.mark.parametrize("shape", ["garbage", "cyclic", "self-import"])
@pytest.mark.parametrize("command", [["call", "t.S/Do"], ["list", "t.S"], ["describe", "t.A"]])
def test_malformed_reflection_is_exit_5_without_hanging(
    shape: str, command: list[str], files_servers: list[ReflectionServer]
) -> None:
    a = _service_file("a.proto", deps=("b.proto",))
    if shape == "garbage":
        srv = start_files_server(["t.S"], {"t.S": [b"\xff\xff\xff\x01garbage"], "t.A": [b"\x0a\xff"]})
    elif shape == "cyclic":
        b = _service_file("b.proto", deps=("a.proto",))
        srv = start_files_server(["t.S"], {"t.S": [a], "t.A": [a]}, {"b.proto": [b, a], "a.proto": [a, b]})
    else:
        selfish = _service_file("a.proto", deps=("a.proto",))
        srv = start_files_server(["t.S"], {"t.S": [selfish], "t.A": [selfish]}, {"a.proto": [selfish]})
    files_servers.append(srv)
    cmd, *rest = command
    start = time.monotonic()
    r = run_process(cmd, "--plaintext", srv.address, *rest, "--no-schema-cache", timeout=60)
    elapsed = time.monotonic() - start
    assert r.code == 5, r
    assert elapsed < 30
    assert "Traceback" not in r.stderr
    _error_line(r.stderr)
    assert r.stdout == ""


# -- TLS that never happens, or goes wrong --------------------------------------------------------


@pytest.mark.parametrize("extra", [[], ["--insecure"]], ids=["verify", "insecure"])
@pytest.mark.parametrize("command", ["call", "list"])
def test_tcp_accepted_but_tls_never_completes(extra: list[str], command: str) -> None:
    hole = Blackhole()
    try:
        argv = ["call", f"127.0.0.1:{hole.port}", "SayHello"] if command == "call" else ["list", f"127.0.0.1:{hole.port}"]
        start = time.monotonic()
        r = run(*argv, "--connect-timeout", "1.5", "--no-auth", *extra)
        elapsed = time.monotonic() - start
    finally:
        hole.close()
    assert r.code == 4, r
    assert elapsed < 12, elapsed
    assert hole.accepted, "the client never connected"
    assert _error_line(r.stderr) == f"error: cannot connect to 127.0.0.1:{hole.port}: connect timeout"
    assert "--connect-timeout" in r.stderr


@pytest.mark.parametrize("command", ["list", "describe"])
def test_certificate_for_another_name_on_reflection(tmp_path: Path, command: str) -> None:
    certs = make_certs(tmp_path, names=("echo.internal",))
    with echo_server(tls=certs) as s:
        r = run(command, f"127.0.0.1:{s.port}", "--cacert", str(certs.ca), "--connect-timeout", "5", "--no-auth")
        good = run(command, f"127.0.0.1:{s.port}", "--cacert", str(certs.ca), "--authority", "echo.internal", "--no-auth")
    assert r.code == 4, r
    assert _error_line(r.stderr) == f"error: cannot connect to 127.0.0.1:{s.port}: TLS certificate is for another name"
    hints = [ln for ln in r.stderr.splitlines() if ln.startswith("hint: ")]
    assert any("--authority" in h for h in hints) and any("--cacert" in h for h in hints), r.stderr
    assert good.code == 0, good


def test_expired_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, expired=True)
    with echo_server(tls=certs) as s:
        start = time.monotonic()
        r = run("call", f"localhost:{s.port}", "SayHello", "--cacert", str(certs.ca), "--connect-timeout", "5", "--no-auth")
        elapsed = time.monotonic() - start
    assert r.code == 4, r
    assert elapsed < 8
    assert _error_line(r.stderr) == f"error: cannot connect to localhost:{s.port}: TLS certificate has expired"
    assert "hint: the server's certificate is outside its validity period" in r.stderr


def test_garbage_cacert_is_a_usage_error(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with echo_server(tls=certs) as s:
        r = run("call", f"localhost:{s.port}", "SayHello", "--cacert", str(bad), "--no-auth")
    assert r.code == 2, r
    assert _error_line(r.stderr) == f"error: --cacert {str(bad)!r} holds no PEM certificate"


# -- slow servers ----------------------------------------------------------------------------------


def test_slow_server_with_timeout_is_68_and_cancelled() -> None:
    with types_server() as s:
        start = time.monotonic()
        r = run("call", "--plaintext", s.address, "hostile.Types/Slow", "-d", '{"seconds": 30}', "--timeout", "0.5")
        elapsed = time.monotonic() - start
        assert s.cancelled.wait(10), "the server never saw the deadline"
    assert r.code == 68, r
    assert elapsed < 10
    assert _error_line(r.stderr).startswith("error: DEADLINE_EXCEEDED: ")
    assert "--timeout" in r.stderr
    assert r.stdout == ""


def test_timeout_does_not_cut_reflection_short() -> None:
    # --timeout is the call's deadline and each reflection request's: 5 s leaves room for both.
    with types_server() as s:
        r = run("call", "--plaintext", s.address, "Slow", "-d", '{"seconds": 0.05}', "--timeout", "5", "--no-schema-cache")
    assert (r.code, r.stdout) == (0, '{"data":"bGF0ZQ=="}\n'), r


# -- a bidi server that says nothing until the client is done --------------------------------------


def test_bidi_server_silent_until_input_ends_from_a_slow_pipe() -> None:
    n = 3000
    with types_server() as s:
        proc = _spawn("call", "--plaintext", s.address, "hostile.Types/Gather", "-d", "@-")
        assert proc.stdin is not None
        for part in range(3):  # input trickles in while no headers came back
            proc.stdin.write("".join(f'{{"seq": {i}}}\n' for i in range(part * n // 3 + 1, (part + 1) * n // 3 + 1)).encode())
            proc.stdin.flush()
            time.sleep(0.3)
        out, err = proc.communicate(timeout=60)  # closes stdin: the end of the input
        gathered = list(s.gathered)
    assert proc.returncode == 0, err
    assert err == b""
    assert gathered == [n]
    assert [json.loads(ln)["seq"] for ln in out.decode().splitlines()] == list(range(1, n + 1))


def test_bidi_server_silent_until_input_ends_from_data() -> None:
    with types_server() as s:
        data = "".join(f'{{"seq": {i}}}' for i in range(1, 2001))
        r = run("call", "--plaintext", s.address, "Gather", "-d", data, "-o", "events")
    assert r.code == 0, r.stderr
    events = r.lines
    assert events[0] == {"event": "headers", "metadata": {}}
    assert [e["message"]["seq"] for e in events if e["event"] == "message"] == list(range(1, 2001))
    assert events[-1]["event"] == "status" and events[-1]["code"] == 0
