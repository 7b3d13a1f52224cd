"""crgrpc as a real process: version, help, serve, demo, signals, closed pipes, quiet gRPC."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from cloudrun_grpc_cli import __version__
from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc

from .support.cli import run_process
from .support.servers import echo_server, make_certs


def _spawn(*argv: str, **kw: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,  # type: ignore[call-overload]
    )


def test_version() -> None:
    r = run_process("--version")
    assert (r.code, r.stdout, r.stderr) == (0, f"crgrpc {__version__}\n", "")


def test_help_lists_commands() -> None:
    r = run_process("--help")
    assert r.code == 0 and r.stderr == ""
    for command in ("list", "describe", "call", "token", "serve", "demo", "config"):
        assert f"  {command} " in r.stdout


def test_no_arguments_shows_help() -> None:
    r = run_process()
    assert r.code == 0
    assert r.stdout.startswith("Usage: crgrpc")


def test_every_command_help_has_examples() -> None:
    for argv in (["list"], ["describe"], ["call"], ["serve"], ["token", "print"], ["token", "show"], ["token", "decode"], ["config", "show"]):
        r = run_process(*argv, "--help")
        assert r.code == 0, argv
        assert "Examples:" in r.stdout, argv
        assert "crgrpc " in r.stdout.split("Examples:")[1], argv


@pytest.fixture
def served() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    proc = _spawn("serve", "--host", "127.0.0.1", "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield proc, line.split()[-1]
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_answers_calls(served: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, address = served
    r = run_process("call", "--plaintext", address, "SayHello", "-d", '{"name":"srv"}')
    assert (r.code, r.stdout) == (0, '{"message":"Hello srv from K_REVISION local"}\n')
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0


def test_serve_uses_port_env() -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = _spawn("serve", "--host", "127.0.0.1", env={**os.environ, "PORT": str(port), "K_REVISION": "rev-7"})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().decode() == f"listening on 127.0.0.1:{port}\n"
        r = run_process("call", "--plaintext", f"127.0.0.1:{port}", "SayHello", "-d", '{"name":"p"}')
        assert r.stdout == '{"message":"Hello p from K_REVISION rev-7"}\n'
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    proc = _spawn("serve", "--host", "127.0.0.1", "--port", "0", "--tls-cert", str(certs.cert), "--tls-key", str(certs.key))
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().decode().split()[-1]
        port = address.rsplit(":", 1)[1]
        r = run_process("call", f"localhost:{port}", "SayHello", "-d", '{"name":"tls"}', "--cacert", str(certs.ca), "--no-auth")
        assert (r.code, r.stdout, r.stderr) == (0, '{"message":"Hello tls from K_REVISION local"}\n', "")
    finally:
        proc.terminate()
        proc.wait(10)


def test_demo_runs_the_walkthrough() -> None:
    r = run_process("demo", timeout=120)
    assert r.code == 0, r
    out = r.stdout
    assert "== Mint an ID token for the service and show it" in out
    assert "email     echo-invoker@demo-project.iam.gserviceaccount.com" in out
    assert "audience  https://localhost" in out
    for i in range(1, 6):
        assert f'"message": "Hello demo-{i} from K_REVISION local"' in out
    for i in range(1, 4):
        assert f'"message": "Msg{i} Hello demo from K_REVISION local"' in out
    assert out.count("rpcheaderkey: val") == 6  # five unary calls, one through the proxy
    assert out.count("rpctrailerkey: val") == 6
    assert "streamheaderkey: val" in out and "streamtrailerkey: val" in out
    assert out.count("authorization: Bearer <redacted>") == 2  # the two -v calls
    assert "✗ UNAUTHENTICATED (16): missing bearer token" in out
    # bench: every request answered, with the demo's one token
    bench = out[out.index("== Load-test it: 200 calls, 8 at a time"):out.index("== Lend the token")]
    assert "\nok        200 (100.0%)\n" in bench and "\nerrors    0 (0.0%)\n" in bench
    assert "\nOK  200 (100.0%)\n" in bench
    # proxy: a call with no credentials goes through it; its log has one OK line a
    # call, reflection's too (crgrpc ends its reflection streams without a cancel)
    proxied = out[out.index("== Lend the token"):]
    assert '"message": "Hello via the proxy from K_REVISION local"' in proxied
    assert re.search(r"\n\d\d:\d\d:\d\d\.\d{3}  OK +echo\.EchoServer/SayHello  [\d.]+ ms  ↑1 ↓1\n", proxied), proxied
    assert re.search(r"\n\d\d:\d\d:\d\d\.\d{3}  OK +grpc\.reflection\.v1alpha\.ServerReflection/ServerReflectionInfo ", proxied)
    assert "CANCELLED" not in proxied and "stopped           no longer listening" in proxied
    assert out.rstrip().endswith(
        "demo finished: every step behaved as expected; the token was minted 1 time and reused from the cache"
    )
    assert r.stderr == "error: UNAUTHENTICATED: missing bearer token\nhint: no token was sent (--no-auth)\n"


def test_grpc_core_logs_are_silenced(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with echo_server(tls=certs) as s:
        r = run_process("call", f"localhost:{s.port}", "SayHello", "--no-auth", "--connect-timeout", "5")
    assert r.code == 4
    lines = r.stderr.splitlines()
    assert lines[0] == f"error: cannot connect to localhost:{s.port}: TLS certificate verification failed"
    assert all(line.startswith(("error: ", "hint: ")) for line in lines), r.stderr


class SlowStream(echo_pb2_grpc.EchoServerServicer):  # type: ignore[misc]
    """Streams forever, slowly; records when the client cancels."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def SayHelloStream(self, request, context):  # type: ignore[no-untyped-def]
        context.add_callback(self.cancelled.set)
        i = 0
        while context.is_active():
            i += 1
            yield echo_pb2.EchoReply(message=f"Msg{i}")
            time.sleep(0.05)


@pytest.fixture
def slow_server() -> Iterator[tuple[str, SlowStream]]:
    from grpc_reflection.v1alpha import reflection

    servicer = SlowStream()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    echo_pb2_grpc.add_EchoServerServicer_to_server(servicer, server)
    reflection.enable_server_reflection(("echo.EchoServer", reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0).wait()


def test_ctrl_c_during_stream_exits_130_and_cancels(slow_server: tuple[str, SlowStream]) -> None:
    address, servicer = slow_server
    proc = _spawn("call", "--plaintext", address, "SayHelloStream")
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == b'{"message":"Msg1"}\n'
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGINT  # it ends by SIGINT: a shell reports 130
    assert b"Traceback" not in err
    assert err.decode().splitlines() == ["error: interrupted"]
    assert servicer.cancelled.wait(10)


def test_closed_pipe_exits_141_quietly(slow_server: tuple[str, SlowStream]) -> None:
    address, servicer = slow_server
    proc = _spawn("call", "--plaintext", address, "SayHelloStream")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b'{"message":"Msg1"}\n'
    proc.stdout.close()  # like `| head -1`
    assert proc.wait(20) == 141
    assert proc.stderr.read() == b""
    assert servicer.cancelled.wait(10)


def test_demo_color_always_and_bad_color() -> None:
    r = run_process("demo", "--color", "always", timeout=120)
    assert r.code == 0
    assert "\x1b[" in r.stdout
    bad = run_process("demo", "--color", "sometimes")
    assert (bad.code, bad.stderr) == (2, "error: unknown --color 'sometimes'\nhint: use auto, always or never\n")


def test_process_exits_promptly_after_a_cancelled_bidi_stream() -> None:
    """A stream cancelled from gRPC's request thread once left the process hanging at exit
    (about 1 run in 60): the console entry point now ends with os._exit after flushing."""
    with echo_server() as s:
        for _ in range(40):
            r = run_process(
                "call", "--plaintext", s.address, "SayHelloBidi", "-d", "@-",
                input=b'{"name":"a"}\n{"name":"b"}\n\x95\xfa\xff\n', timeout=30,
            )
            assert r.code == 6, r
