"""`crgrpc call --each`: one call per input message, over one session.

Against real servers on 127.0.0.1: the Echo server, a slow Echo (each reply
waits `count` ms, and it counts the calls in flight), and a TLS Echo guarded
by TokenCheck with the local token issuer. Order, concurrency, failures in
the middle, every output mode, and one mint and one reflection for the whole
run (counted at the issuer and at the server).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_reflection.v1alpha import reflection as refl

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from cloudrun_grpc_cli.demo.echo import EchoServicer
from cloudrun_grpc_cli.demo.server import ECHO_SERVICE
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from tests.support.cli import run, run_process
from tests.support.issuer import KEY_SA, Issuer, issuer_fixture  # noqa: F401
from tests.support.recorder import MetadataRecorder
from tests.support.servers import echo_server
from tests.support.tls import CertFiles, make_certs

SAY = "echo.EchoServer/SayHello"
HELLO = "Hello {} from K_REVISION local"
REFLECTION = "ServerReflectionInfo"


def jsonl(*objs: dict[str, Any]) -> str:
    return "".join(json.dumps(o) + "\n" for o in objs)


@pytest.fixture(scope="module")
def echo() -> Iterator[Any]:
    with echo_server() as srv:
        yield srv


class SlowEcho(EchoServicer):
    """SayHello waits request.count ms; records the most calls in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.order: list[str] = []

    def SayHello(self, request: Any, context: Any) -> Any:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.order.append(request.name)
        try:
            time.sleep(request.count / 1000)
            return echo_pb2.EchoReply(message=f"Hello {request.name}")
        finally:
            with self.lock:
                self.in_flight -= 1


@pytest.fixture
def slow() -> Iterator[tuple[str, SlowEcho]]:
    servicer = SlowEcho()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    echo_pb2_grpc.add_EchoServerServicer_to_server(servicer, server)
    refl.enable_server_reflection((ECHO_SERVICE, refl.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0).wait()


def each(address: str, *args: str, stdin: str = "") -> Any:
    return run("call", "--plaintext", address, *args, stdin=stdin)


# --- order, concurrency -------------------------------------------------------------------


def test_one_call_per_message_in_input_order(echo: Any, tmp_path: Path) -> None:
    names = [f"n{i}" for i in range(12)]
    req = tmp_path / "requests.jsonl"
    req.write_text(jsonl(*({"name": n} for n in names)))
    r = each(echo.address, SAY, "--each", "-d", f"@{req}", "-o", "json")
    assert (r.code, r.stderr) == (0, ""), r
    assert r.lines == [{"message": HELLO.format(n)} for n in names]


def test_concurrency_keeps_n_in_flight_and_the_input_order(slow: tuple[str, SlowEcho]) -> None:
    address, servicer = slow
    # the first calls are the slowest: they finish last, yet are written first
    reqs = [{"name": f"n{i}", "count": 300 - 30 * i} for i in range(8)]
    r = each(address, SAY, "--each", "--concurrency", "4", "-d", "@-", "-o", "json", stdin=jsonl(*reqs))
    assert (r.code, r.stderr) == (0, ""), r
    assert r.lines == [{"message": f"Hello n{i}"} for i in range(8)]
    assert servicer.most == 4


def test_concurrency_one_is_one_at_a_time(slow: tuple[str, SlowEcho]) -> None:
    address, servicer = slow
    reqs = [{"name": f"n{i}", "count": 20} for i in range(5)]
    r = each(address, SAY, "--each", "-d", "@-", "-o", "json", stdin=jsonl(*reqs))
    assert r.code == 0, r
    assert servicer.most == 1
    assert servicer.order == [f"n{i}" for i in range(5)]


def test_server_streaming_each(echo: Any) -> None:
    r = each(echo.address, "SayHelloStream", "--each", "--concurrency", "2", "-o", "json",
             "-d", jsonl({"name": "a", "count": 2}, {"name": "b", "count": 3}))
    assert (r.code, r.stderr) == (0, ""), r
    assert [line["message"] for line in r.lines] == [
        f"Msg{i} {HELLO.format('a')}" for i in (1, 2)
    ] + [f"Msg{i} {HELLO.format('b')}" for i in (1, 2, 3)]


# --- failures -----------------------------------------------------------------------------

FAILING = [{"name": "a"}, {"name": "b"}, {"name": "c", "fail_code": 5}, {"name": "d"},
           {"name": "e", "fail_code": 7}, {"name": "f"}]
NOT_FOUND = "fail_code 5 requested before replying"


@pytest.mark.parametrize("concurrency", ["1", "3"])
def test_a_failing_call_in_the_middle(echo: Any, concurrency: str) -> None:
    r = each(echo.address, SAY, "--each", "--concurrency", concurrency, "-o", "json",
             "-d", jsonl(*FAILING))
    assert r.code == 64 + 5, r  # the first failure's code, though a later one is 7
    assert r.lines == [
        {"message": HELLO.format("a")},
        {"message": HELLO.format("b")},
        {"error": {"code": 5, "name": "NOT_FOUND", "message": NOT_FOUND}, "index": 2},
        {"message": HELLO.format("d")},
        {"error": {"code": 7, "name": "PERMISSION_DENIED",
                   "message": "fail_code 7 requested before replying"}, "index": 4},
        {"message": HELLO.format("f")},
    ]
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [f"error: NOT_FOUND: {NOT_FOUND} (index 2; 2 of 6 calls failed)"], r


def test_full_is_one_document_per_call(echo: Any) -> None:
    r = each(echo.address, SAY, "--each", "--concurrency", "2", "-o", "full",
             "-d", jsonl(*FAILING[:4]))
    assert r.code == 69, r
    docs = r.lines
    assert [d["index"] for d in docs] == [0, 1, 2, 3]
    assert [d["method"] for d in docs] == [SAY] * 4
    assert [d["status"]["name"] for d in docs] == ["OK", "OK", "NOT_FOUND", "OK"]
    assert [d["messages"] for d in docs] == [
        [{"message": HELLO.format(n)}] for n in "ab"
    ] + [[]] + [[{"message": HELLO.format("d")}]]
    assert [d["error"] for d in docs[:2]] == [None, None]
    assert docs[2]["error"]["exit_code"] == 69
    assert docs[2]["error"]["message"] == f"NOT_FOUND: {NOT_FOUND}"
    assert docs[2]["headers"] == {"rpcheaderkey": "val"}
    assert docs[2]["trailers"] == {"rpctrailerkey": "val"}
    assert set(docs[0]) == {"method", "request_metadata", "token", "headers", "messages",
                            "trailers", "status", "elapsed_ms", "error", "index"}


def test_events_carry_the_index(echo: Any) -> None:
    r = each(echo.address, SAY, "--each", "-o", "events", "-d", jsonl(*FAILING[1:3]))
    assert r.code == 69, r
    kinds = [(ln["event"], ln["index"]) for ln in r.lines]
    assert kinds == [
        ("headers", 0), ("message", 0), ("trailers", 0), ("status", 0),
        ("headers", 1), ("trailers", 1), ("status", 1), ("error", 1),
    ]
    assert r.lines[1]["message"] == {"message": HELLO.format("b")}
    assert r.lines[6]["name"] == "NOT_FOUND"
    assert r.lines[7]["exit_code"] == 69


def test_pretty_shows_each_call(echo: Any) -> None:
    r = run("call", "--plaintext", echo.address, SAY, "--each", "-o", "pretty",
            "-d", jsonl(*FAILING[1:4]))
    assert r.code == 69, r
    out = r.stdout
    assert out.count(f"→ {SAY} (unary) at {echo.address}") == 3
    assert out.count("✓ OK  1 message") == 2
    assert out.count("✗ NOT_FOUND (5): " + NOT_FOUND) == 1
    assert out.index(HELLO.format("b")) < out.index("NOT_FOUND") < out.index(HELLO.format("d"))


def test_a_bad_message_stops_the_run_after_the_calls_before_it(echo: Any, tmp_path: Path) -> None:
    req = tmp_path / "r.jsonl"
    req.write_text(jsonl({"name": "a"}, {"name": "b"}, {"count": "x"}, {"name": "d"}))
    for concurrency in ("1", "2"):
        r = each(echo.address, SAY, "--each", "--concurrency", concurrency, "-o", "json",
                 "-d", f"@{req}")
        assert r.code == 6, r
        assert r.lines == [{"message": HELLO.format("a")}, {"message": HELLO.format("b")}]
        assert r.stderr.splitlines()[0].startswith("error: request data: message 3: field count: "), r


def test_each_takes_unary_and_server_streaming_methods_only(echo: Any) -> None:
    r = each(echo.address, "SayHelloBidi", "--each", "-d", "{}")
    assert r.code == 2, r
    assert r.stderr.splitlines()[0] == (
        "error: --each makes one unary or server-streaming call per message; "
        "echo.EchoServer/SayHelloBidi is a bidi-streaming method"
    )


@pytest.mark.parametrize("value", ["0", "257", "x"])
def test_concurrency_range(echo: Any, value: str) -> None:
    r = each(echo.address, SAY, "--each", "--concurrency", value, "-d", "{}")
    assert r.code == 2, r
    assert "--concurrency" in r.stderr.splitlines()[0]


def test_concurrency_needs_each(echo: Any) -> None:
    r = each(echo.address, SAY, "--concurrency", "4", "-d", "{}")
    assert r.code == 2, r
    assert r.stderr.splitlines()[0] == "error: --concurrency goes with --each"


def test_no_data_is_no_call(echo: Any) -> None:
    r = each(echo.address, SAY, "--each", "-o", "json", "-d", "@-", stdin="")
    assert (r.code, r.stdout, r.stderr) == (0, "", ""), r


# --- one session: one mint, one reflection --------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("each-tls"))


def test_one_mint_and_one_reflection_for_the_whole_run(
    issuer: Issuer, certs: CertFiles, tmp_path: Path
) -> None:
    recorder = MetadataRecorder()
    check = TokenCheck("https://localhost", certs=issuer.certs_url, allowed_emails=(KEY_SA,))
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with echo_server(tls=certs, interceptors=(recorder, check)) as srv:
        target = f"localhost:{srv.port}"
        args = ("call", target, SAY, "--cacert", str(certs.ca), "--key-file", str(key),
                "--no-schema-cache", "-o", "json")
        one = run(*args, "-d", '{"name": "x"}')
        assert one.code == 0, one
        reflection_per_call = recorder.methods().count(f"/grpc.reflection.v1alpha.ServerReflection/{REFLECTION}")
        assert reflection_per_call >= 1
        recorder.calls.clear()
        before = issuer.count("/token")
        names = [f"n{i}" for i in range(20)]
        r = run(*args, "--each", "--concurrency", "4", "--no-token-cache",
                "-d", jsonl(*({"name": n} for n in names)))
        assert (r.code, r.stderr) == (0, ""), r
        assert r.lines == [{"message": HELLO.format(n)} for n in names]
        assert issuer.count("/token") - before == 1  # one mint for 20 calls
        methods = recorder.methods()
        assert methods.count(f"/grpc.reflection.v1alpha.ServerReflection/{REFLECTION}") == reflection_per_call
        assert methods.count(f"/{SAY}") == 20
        tokens = {md.get("authorization") for m, md in recorder.calls}
        assert tokens == {f"Bearer {issuer.minted[-1]}"}


def test_each_as_a_process_from_a_file(echo: Any, tmp_path: Path) -> None:
    req = tmp_path / "r.jsonl"
    req.write_text(jsonl(*({"name": f"p{i}"} for i in range(50))))
    r = run_process("call", "--plaintext", echo.address, SAY, "--each", "--concurrency", "8",
                    "-d", f"@{req}", "-o", "json")
    assert (r.code, r.stderr) == (0, ""), r
    assert [json.loads(ln) for ln in r.stdout.splitlines()] == [
        {"message": HELLO.format(f"p{i}")} for i in range(50)
    ]


# --- the channel: single-threaded unary-stream calls, for the session's channel only ------------


def test_the_session_channel_drives_unary_stream_calls_on_the_callers_thread() -> None:
    """crgrpc's sync channel takes SingleThreadedUnaryStream (bench/RESULTS.md: about 2x
    less CPU per streamed message); the options every channel shares (dial_parts, used
    for the proxy's and the load tester's asyncio channels too) do not carry it."""
    import grpc.experimental

    from cloudrun_grpc_cli.core.channel import Connection, dial_parts
    from cloudrun_grpc_cli.core.target import parse_target
    from cloudrun_grpc_cli.settings import ChannelSettings

    target = parse_target("127.0.0.1:1", plaintext=True)
    settings = ChannelSettings(plaintext=True)
    option = grpc.experimental.ChannelOptions.SingleThreadedUnaryStream
    _, opts = dial_parts(target, settings)
    assert option not in [k for k, _ in opts]
    conn = Connection(target, settings)
    try:
        assert conn.channel._single_threaded_unary_stream is True
    finally:
        conn.close()
