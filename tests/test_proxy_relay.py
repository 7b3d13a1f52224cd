"""`crgrpc proxy`'s HTTP/2 relay (core/h2conn.py, core/relay.py) against peers that
test HTTP/2 itself: an upstream that takes two streams per connection or sends
GOAWAY, a connection cut under a call, a Cloud Run front end's HTTP refusal, and
clients that split headers into CONTINUATION frames, pad their DATA, ignore flow
control or do not speak HTTP/2 at all.

The upstream is a plaintext grpcio server on 127.0.0.1 (a loopback target gets no
token); the clients are grpcio, h2 (python-hyper's, an independent HTTP/2 stack)
and frames written by hand from RFC 9113, read back with hyperframe.
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import hpack
import pytest
from hyperframe.frame import Frame, GoAwayFrame
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudrun_grpc_cli.core.h2conn import Stream
from cloudrun_grpc_cli.core.proxy import grpc_timeout, parse_grpc_timeout
from tests.support.connectproxy import connect_proxy
from tests.support.frontend import front_end
from tests.support.proxy import ProxyProcess
from tests.support.rawgrpc import HttpAnswer, Refuse, Reply, Silent, raw_grpc
from tests.support.rawgrpc import frame as grpc_message
from tests.support.tls import CertFiles, make_certs

ECHO, SLEEP, STALL = "/t.T/Echo", "/t.T/Sleep", "/t.T/Stall"


class Plain:
    """A plaintext gRPC upstream: Echo (the request back), Sleep (for float(request) s),
    Stall (a stream that never reads). It records each call's peer and metadata."""

    def __init__(self, options: list[tuple[str, Any]], address: str = "127.0.0.1:0",
                 tls: CertFiles | None = None, client_ca: Path | None = None) -> None:
        self.peers: list[str] = []
        self.metadata: list[dict[str, str | bytes]] = []
        self.release = threading.Event()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=options)
        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(self._echo),
            "Sleep": grpc.unary_unary_rpc_method_handler(self._sleep),
            "Stall": grpc.stream_stream_rpc_method_handler(self._stall),
            "Big": grpc.unary_unary_rpc_method_handler(lambda request, context: b"b" * int(request)),
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", handlers),))
        if tls is None:
            self.port = self.server.add_insecure_port(address)
        else:
            creds = grpc.ssl_server_credentials(
                [(tls.key.read_bytes(), tls.cert.read_bytes())],
                root_certificates=client_ca.read_bytes() if client_ca else None,
                require_client_auth=client_ca is not None,
            )
            self.port = self.server.add_secure_port(address, creds)

    def _seen(self, context: grpc.ServicerContext) -> None:
        self.peers.append(context.peer())
        self.metadata.append(dict(context.invocation_metadata()))

    def _echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._seen(context)
        return request

    def _sleep(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._seen(context)
        time.sleep(float(request))
        return b"ok"

    def _stall(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        self._seen(context)
        yield b"stalled"
        self.release.wait(30)


@contextmanager
def plain(
    options: list[tuple[str, Any]] | None = None, address: str = "127.0.0.1:0", tls: CertFiles | None = None,
    client_ca: Path | None = None,
) -> Iterator[Plain]:
    up = Plain(options or [], address, tls, client_ca)
    up.server.start()
    try:
        yield up
    finally:
        up.release.set()
        up.server.stop(0)


@contextmanager
def proxy_to(address: str, home: Path) -> Iterator[ProxyProcess]:
    with ProxyProcess(address, "--plaintext", "--port", "0", "-o", "json", home=home) as proxy:
        assert proxy.first_line.startswith("listening on 127.0.0.1:"), proxy.stderr
        yield proxy


def echo(address: str, payload: bytes = b"hi") -> bytes:
    with grpc.insecure_channel(address) as ch:
        return bytes(ch.unary_unary(ECHO)(payload, timeout=10))


# --- upstream connections -----------------------------------------------------------------


def test_calls_beyond_the_upstreams_stream_limit_open_more_connections(tmp_path: Path) -> None:
    """An upstream that takes two streams per connection: six calls at once go over three
    connections, as the relay reads the limit from the server's SETTINGS; none is refused."""
    with plain([("grpc.max_concurrent_streams", 2)]) as up, proxy_to(f"127.0.0.1:{up.port}", tmp_path) as proxy:
        with grpc.insecure_channel(proxy.address) as ch:
            calls = [ch.unary_unary(SLEEP).future(b"1.0", timeout=30) for _ in range(6)]
            assert [c.result() for c in calls] == [b"ok"] * 6
        assert len(set(up.peers)) == 3, up.peers
        logged = proxy.wait_for(lambda: len(proxy.calls("t.T/Sleep")) == 6 and proxy.calls("t.T/Sleep"))
        assert [c["status"] for c in logged] == ["OK"] * 6


def test_an_upstream_goaway_moves_new_calls_to_a_new_connection(tmp_path: Path) -> None:
    """grpcio ends each connection after 0.3 s (GOAWAY, max_connection_age): a call after
    that goes over a new connection and succeeds."""
    options = [("grpc.max_connection_age_ms", 300), ("grpc.max_connection_age_grace_ms", 60_000)]
    with plain(options) as up, proxy_to(f"127.0.0.1:{up.port}", tmp_path) as proxy:
        assert echo(proxy.address, b"one") == b"one"
        time.sleep(1.5)
        assert echo(proxy.address, b"two") == b"two"
        assert len(set(up.peers)) == 2, up.peers
        logged = proxy.wait_for(lambda: len(proxy.calls("t.T/Echo")) == 2 and proxy.calls("t.T/Echo"))
        assert [(c["status"], c["requests"], c["responses"]) for c in logged] == [("OK", 1, 1), ("OK", 1, 1)]


@pytest.mark.parametrize("how", ["authority", "insecure"])
def test_tls_upstreams_with_authority_or_insecure(tmp_path: Path, how: str) -> None:
    """The relay's own TLS: a certificate only for svc.example, dialed at 127.0.0.1 with
    --authority svc.example (verified against --cacert), or self-signed with --insecure."""
    certs = make_certs(tmp_path / "tls", ("svc.example",), self_signed=how == "insecure")
    args = ("--cacert", str(certs.ca), "--authority", "svc.example") if how == "authority" else ("--insecure",)
    with plain(tls=certs) as up:
        with ProxyProcess(f"127.0.0.1:{up.port}", *args, "--no-auth", "--port", "0", home=tmp_path) as proxy:
            assert proxy.first_line.startswith("listening on "), proxy.stderr
            assert echo(proxy.address, b"over TLS") == b"over TLS"


def test_mutual_tls_upstream(tmp_path: Path) -> None:
    """A service that requires a client certificate: the relay presents --cert/--key."""
    server = make_certs(tmp_path / "server")
    client = make_certs(tmp_path / "client", ("crgrpc-proxy",), prefix="client")
    with plain(tls=server, client_ca=client.ca) as up:
        args = ("--cacert", str(server.ca), "--cert", str(client.cert), "--key", str(client.key), "--no-auth")
        with ProxyProcess(f"localhost:{up.port}", *args, "--port", "0", home=tmp_path) as proxy:
            assert proxy.first_line.startswith("listening on "), proxy.stderr
            assert echo(proxy.address, b"with a client certificate") == b"with a client certificate"


def test_a_unix_socket_upstream(tmp_path: Path) -> None:
    path = tmp_path / "up.sock"
    with plain(address=f"unix://{path}") as up, proxy_to(f"unix://{path}", tmp_path) as proxy:
        assert echo(proxy.address, b"over a unix socket") == b"over a unix socket"
        assert up.peers == ["unix:"]


def test_the_upstream_connection_goes_through_an_egress_proxy(tmp_path: Path) -> None:
    """--proxy: the relay's upstream connection is a CONNECT tunnel, as gRPC's is (the
    start-up check's channel makes the first CONNECT, the relay the second)."""
    with plain() as up, connect_proxy() as egress:
        target = f"localhost:{up.port}"
        with ProxyProcess(target, "--plaintext", "--proxy", egress.url, "--port", "0", home=tmp_path) as proxy:
            assert proxy.first_line.startswith("listening on "), proxy.stderr
            assert echo(proxy.address, b"through the tunnel") == b"through the tunnel"
        assert egress.methods() == [("CONNECT", target), ("CONNECT", target)]
        assert egress.log[1].bytes_up > 0 and egress.log[1].bytes_down > 0


def test_insecure_through_an_egress_proxy_fetches_the_certificate_once_through_it(tmp_path: Path) -> None:
    """--insecure --proxy: the server's certificate is fetched through the tunnel too (it
    went direct before), once for the start-up check and the relay: three CONNECTs in
    all (the certificate, the check's channel, the relay's connection)."""
    certs = make_certs(tmp_path / "tls", ("svc.example",), self_signed=True)
    with plain(tls=certs) as up, connect_proxy() as egress:
        wire = Cuttable(up.port)  # counts the connections the service gets
        try:
            target = f"localhost:{wire.address.rsplit(':', 1)[1]}"
            args = ("--insecure", "--no-auth", "--proxy", egress.url, "--port", "0")
            with ProxyProcess(target, *args, home=tmp_path) as proxy:
                assert proxy.first_line.startswith("listening on "), proxy.stderr
                assert echo(proxy.address, b"pinned") == b"pinned"
            assert egress.methods() == [("CONNECT", target)] * 3
            assert len(wire.open) == 2 * 3  # no connection of its own beside the tunnels
        finally:
            wire.close()


class Cuttable:
    """A TCP forwarder on 127.0.0.1 whose connections can be cut at once."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.sock.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.port))
            self.open += [down, up]
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        with suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)

    def cut(self) -> None:
        for s in self.open:
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.sock.close()
        self.cut()


def test_a_cut_upstream_connection_answers_unavailable(tmp_path: Path) -> None:
    with plain() as up:
        wire = Cuttable(up.port)
        try:
            with proxy_to(wire.address, tmp_path) as proxy, grpc.insecure_channel(proxy.address) as ch:
                call = ch.stream_stream(STALL)(iter([b"one"]), timeout=30)
                assert next(call) == b"stalled"
                wire.cut()
                with pytest.raises(grpc.RpcError) as e:
                    next(call)
                assert (e.value.code(), e.value.details()) == (
                    grpc.StatusCode.UNAVAILABLE, "crgrpc proxy: the upstream connection closed"
                )
                logged = proxy.wait_for(lambda: proxy.calls("t.T/Stall"))[-1]
                assert (logged["status"], logged["message"], logged["responses"]) == (
                    "UNAVAILABLE", "crgrpc proxy: the upstream connection closed", 1
                )
        finally:
            wire.close()


@pytest.mark.parametrize(("http", "code", "status"), [(401, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
                                                      (503, grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE")])
def test_a_front_ends_http_refusal_reaches_the_client_as_grpc_maps_it(
    tmp_path: Path, http: int, code: grpc.StatusCode, status: str
) -> None:
    """Cloud Run's front end refuses with a bare HTTP status (no grpc-status): the client
    gets it as it would directly (its gRPC maps it), and the log names the HTTP status."""
    with front_end(http) as fe, proxy_to(fe.address, tmp_path) as proxy:
        with pytest.raises(grpc.RpcError) as e:
            echo(proxy.address)
        assert e.value.code() == code
        logged = proxy.wait_for(lambda: proxy.calls("t.T/Echo"))[-1]
        assert (logged["status"], logged["message"]) == (status, f"the upstream answered HTTP {http}")


# --- deadlines ----------------------------------------------------------------------------


def test_timeout_gives_a_deadline_and_the_proxy_keeps_it(tmp_path: Path) -> None:
    """--timeout 1 and a client with no deadline: the upstream gets grpc-timeout 1 s; a
    service that never answers (nor minds its deadline) is answered DEADLINE_EXCEEDED by
    the proxy itself at that deadline, and its stream is cancelled."""
    with raw_grpc(Reply(messages=[b"late"]), script=[Silent()]) as up:
        with ProxyProcess(up.address, "--plaintext", "--port", "0", "-o", "json", "--timeout", "1", home=tmp_path) as proxy:
            with grpc.insecure_channel(proxy.address) as ch, pytest.raises(grpc.RpcError) as e:
                t0 = time.monotonic()
                ch.unary_unary(ECHO)(b"x")
            took = time.monotonic() - t0
            logged = proxy.wait_for(lambda: proxy.calls("t.T/Echo"))[-1]
    assert (e.value.code(), e.value.details()) == (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    assert 0.9 < took < 10
    assert (logged["status"], logged["message"]) == ("DEADLINE_EXCEEDED", "Deadline Exceeded")
    sent = up.requests[0]["grpc-timeout"]
    assert sent.endswith("m") and 900 <= int(sent[:-1]) <= 1000, sent


def test_max_msg_size_limits_both_ways(tmp_path: Path) -> None:
    with plain() as up:
        with ProxyProcess(f"127.0.0.1:{up.port}", "--plaintext", "--max-msg-size", "1000", "--port", "0", "-o", "json",
                          home=tmp_path) as proxy, grpc.insecure_channel(proxy.address) as ch:
            assert ch.unary_unary(ECHO)(b"s" * 1000, timeout=10) == b"s" * 1000
            for method, request, way in ((ECHO, b"s" * 1001, "sent"), ("/t.T/Big", b"1001", "received")):
                with pytest.raises(grpc.RpcError) as e:
                    ch.unary_unary(method)(request, timeout=10)
                text = f"crgrpc proxy: a message {way} is larger than --max-msg-size (1000 bytes)"
                assert (e.value.code(), e.value.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, text)
            logged = proxy.wait_for(lambda: len(proxy.calls()) >= 3 and proxy.calls())
    assert [(c["method"], c["status"]) for c in logged] == [
        ("t.T/Echo", "OK"), ("t.T/Echo", "RESOURCE_EXHAUSTED"), ("t.T/Big", "RESOURCE_EXHAUSTED")
    ]


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "outcome"), [((), ("UNAVAILABLE", "down", 1)), (("--retries", "2"), ("OK", "", 3))])
def test_retries_replay_the_request_on_unavailable(
    tmp_path: Path, args: tuple[str, ...], outcome: tuple[str, str, int]
) -> None:
    """The upstream answers UNAVAILABLE twice (as gRPC answers an error: trailers only;
    then a front end's bare 503), then the answer: with --retries 2 the client gets the
    answer and the upstream got the same request three times; with none, the client
    gets the first UNAVAILABLE."""
    script: list[Reply | HttpAnswer | Refuse] = [Reply(status=14, message="down", trailers_only=True), HttpAnswer(503)]
    with raw_grpc(Reply(messages=[b"answer"]), script=script) as up:
        with ProxyProcess(up.address, "--plaintext", "--port", "0", "-o", "json", *args, home=tmp_path) as proxy:
            with grpc.insecure_channel(proxy.address) as ch:
                try:
                    got: tuple[str, str] = ("OK", "") if ch.unary_unary(ECHO)(b"request", timeout=30) == b"answer" else ("?", "")
                except grpc.RpcError as e:
                    got = (e.code().name, e.details())
            logged = proxy.wait_for(lambda: proxy.calls("t.T/Echo"))[-1]
        assert (*got, len(up.requests)) == outcome
        assert (logged["status"], logged["message"], logged["requests"]) == (outcome[0], outcome[1], 1)
        assert up.bodies == [b"\x00\x00\x00\x00\x07request"] * outcome[2]


@pytest.mark.parametrize(("first", "size"), [(Reply(status=14, message="down"), 7),
                                           (Reply(status=14, message="down", trailers_only=True), 70_000)])
def test_no_retry_once_answered_or_for_a_large_request(tmp_path: Path, first: Reply, size: int) -> None:
    """An UNAVAILABLE after response headers (the call is committed, as gRPC's policy
    has it), or for a request over the 64 KiB kept for a retry, goes to the client."""
    with raw_grpc(Reply(messages=[b"answer"]), script=[first]) as up:
        with ProxyProcess(up.address, "--plaintext", "--port", "0", "--retries", "2", home=tmp_path) as proxy:
            with grpc.insecure_channel(proxy.address) as ch, pytest.raises(grpc.RpcError) as e:
                ch.unary_unary(ECHO)(b"r" * size, timeout=30)
    assert (e.value.code(), e.value.details(), len(up.requests)) == (grpc.StatusCode.UNAVAILABLE, "down", 1)


def test_a_refused_stream_is_tried_once_more_without_retries(tmp_path: Path) -> None:
    """REFUSED_STREAM says the upstream never processed the stream: the proxy sends it
    again once (as gRPC's transparent retry), with no --retries; refused twice, the
    client is refused (its own retries off here, so it says so)."""
    script: list[Reply | Refuse] = [Refuse(), Reply(messages=[b"answer"]), Refuse(), Refuse()]
    with raw_grpc(Reply(messages=[b"never"]), script=script) as up:
        with proxy_to(up.address, tmp_path) as proxy:
            with grpc.insecure_channel(proxy.address, options=[("grpc.enable_retries", 0)]) as ch:
                assert ch.unary_unary(ECHO)(b"first", timeout=30) == b"answer"
                with pytest.raises(grpc.RpcError) as e:
                    ch.unary_unary(ECHO)(b"second", timeout=30)
            logged = proxy.wait_for(lambda: len(proxy.calls("t.T/Echo")) == 2 and proxy.calls("t.T/Echo"))
        assert len(up.requests) == 4
        assert up.bodies == [b"\x00\x00\x00\x00\x05first"] * 2 + [b"\x00\x00\x00\x00\x06second"] * 2
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [(c["status"], c["message"]) for c in logged] == [("OK", ""), ("UNAVAILABLE", "the upstream refused the stream")]


def test_an_answer_that_ends_without_a_status(tmp_path: Path) -> None:
    """A response stream that ends after its message with no trailers: the client's gRPC
    refuses it as it would directly, and the log says what was missing."""
    body = b"\x00\x00\x00\x00\x02ok"
    answer = HttpAnswer(200, body, "application/grpc")
    with raw_grpc(Reply(), script=[answer, answer]) as up:
        with grpc.insecure_channel(up.address) as ch, pytest.raises(grpc.RpcError) as direct:
            ch.unary_unary(ECHO)(b"x", timeout=10)
        with proxy_to(up.address, tmp_path) as proxy, grpc.insecure_channel(proxy.address) as ch:
            with pytest.raises(grpc.RpcError) as e:
                ch.unary_unary(ECHO)(b"x", timeout=10)
            logged = proxy.wait_for(lambda: proxy.calls("t.T/Echo"))[-1]
    assert e.value.code() == direct.value.code() == grpc.StatusCode.UNKNOWN, (e.value.details(), direct.value.details())
    assert (logged["status"], logged["message"], logged["responses"]) == (
        "INTERNAL", "the upstream ended the stream without a status", 1
    )


# --- clients ------------------------------------------------------------------------------


def _h2_client(address: str) -> tuple[socket.socket, h2.connection.H2Connection]:
    host, port = address.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def test_headers_in_continuation_frames_and_padded_data(tmp_path: Path) -> None:
    """h2 as the client: a 40 kB header value (HEADERS + CONTINUATION frames: the relay
    takes 16 kB frames) and a padded DATA frame reach the upstream whole."""
    big = "v" * 40_000
    payload = b"padded request"
    with plain([("grpc.max_metadata_size", 1 << 20)]) as up, proxy_to(f"127.0.0.1:{up.port}", tmp_path) as proxy:
        sock, conn = _h2_client(proxy.address)
        with sock:
            headers = [(":method", "POST"), (":scheme", "http"), (":path", ECHO), (":authority", "x"),
                       ("te", "trailers"), ("content-type", "application/grpc"), ("x-big", big)]
            conn.send_headers(1, headers)
            conn.send_data(1, grpc_message(payload), end_stream=True, pad_length=40)
            sock.sendall(conn.data_to_send())
            body, trailers, ended = b"", {}, False
            while not ended:
                data = sock.recv(65536)
                assert data, "the proxy closed the connection"
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.DataReceived):
                        body += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, 1)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        trailers = dict(ev.headers)
                    elif isinstance(ev, h2.events.StreamEnded):
                        ended = True
                sock.sendall(conn.data_to_send())
        assert body == grpc_message(payload)
        assert trailers[b"grpc-status"] == b"0"
        assert up.metadata[-1]["x-big"] == big


def _frames(data: bytes) -> list[Frame]:
    out = []
    while len(data) >= 9:
        f, length = Frame.parse_frame_header(memoryview(data[:9]))
        if len(data) < 9 + length:
            break
        f.parse_body(memoryview(data[9:9 + length]))
        out.append(f)
        data = data[9 + length:]
    return out


def _read_all(sock: socket.socket, timeout: float = 20) -> bytes:
    sock.settimeout(timeout)
    got = b""
    with suppress(OSError):
        while chunk := sock.recv(65536):
            got += chunk
    return got


def _frame(kind: int, flags: int, sid: int, payload: bytes) -> bytes:
    """An HTTP/2 frame written out from RFC 9113 section 4.1."""
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", sid) + payload


def test_a_client_that_ignores_flow_control_is_cut_off_and_others_go_on(tmp_path: Path) -> None:
    """Frames by hand: a stream to an upstream that never reads, then 24 MiB of DATA
    without waiting for a window (the relay gives 1 MiB a stream, 16 MiB a connection).
    The relay holds at most its window, then ends the connection with GOAWAY
    FLOW_CONTROL_ERROR; the next client is served."""
    with plain() as up, proxy_to(f"127.0.0.1:{up.port}", tmp_path) as proxy:
        host, port = proxy.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            block = hpack.Encoder().encode([(":method", "POST"), (":scheme", "http"), (":path", STALL),
                                            (":authority", "x"), ("te", "trailers"),
                                            ("content-type", "application/grpc")])
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 4, 1, block))
            chunk = _frame(0, 0, 1, b"\x00" * 16_384)
            with suppress(OSError):  # the proxy may close before all is written
                for _ in range(24 * 64):
                    sock.sendall(chunk)
            frames = _frames(_read_all(sock))
        goaways = [f for f in frames if isinstance(f, GoAwayFrame)]
        assert [g.error_code for g in goaways] == [3], frames  # FLOW_CONTROL_ERROR
        assert echo(proxy.address) == b"hi"
        assert proxy.proc.poll() is None


def test_a_client_that_does_not_speak_http2_gets_goaway(tmp_path: Path) -> None:
    with plain() as up, proxy_to(f"127.0.0.1:{up.port}", tmp_path) as proxy:
        host, port = proxy.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
            frames = _frames(_read_all(sock))
        assert [f.error_code for f in frames if isinstance(f, GoAwayFrame)] == [1]  # PROTOCOL_ERROR
        assert echo(proxy.address) == b"hi"


# --- the parts ----------------------------------------------------------------------------


@settings(deadline=None, max_examples=200)
@given(st.lists(st.binary(max_size=40), max_size=12), st.lists(st.integers(min_value=0, max_value=600), max_size=8))
def test_messages_are_counted_however_frames_split_them(messages: list[bytes], cuts: list[int]) -> None:
    wire = b"".join(grpc_message(m) for m in messages)
    points = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    stream = Stream(SimpleNamespace(peer_initial_window=0), 1, None)  # type: ignore[arg-type]
    seen = sum(stream.count(wire[a:b]) for a, b in itertools.pairwise(points))
    assert (seen, stream.messages, stream.msg_left) == (len(messages), len(messages), 0)


def test_a_message_over_the_limit_is_seen() -> None:
    stream = Stream(SimpleNamespace(peer_initial_window=0), 1, None)  # type: ignore[arg-type]
    stream.limit = 10
    assert stream.count(grpc_message(b"0123456789")) == 1
    assert stream.count(grpc_message(b"0123456789a")[:3]) == 0
    assert stream.count(grpc_message(b"0123456789a")[3:]) == -1


def test_grpc_timeout_headers() -> None:
    assert [parse_grpc_timeout(v) for v in (b"1H", b"2M", b"3S", b"250m", b"7u", b"9n")] == [
        3600.0, 120.0, 3.0, 0.25, 7e-06, 9e-09
    ]
    assert [parse_grpc_timeout(v) for v in (b"", b"S", b"1x", b"123456789S", b"-1S", b"1.5S")] == [None] * 6
    assert [grpc_timeout(s) for s in (0.0, 0.25, 30.0, 99_999.999, 100_000.0, 1e12)] == [
        b"1m", b"250m", b"30000m", b"99999999m", b"100000S", b"99999999S"
    ]


class _Transport:
    """Where a connection's writes go in an in-process test (no socket)."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 5000) if name == "peername" else None


def test_a_bug_in_the_relay_ends_that_connection_with_goaway_and_says_so() -> None:
    """A router that raises (standing in for a bug): the client's connection gets GOAWAY
    INTERNAL_ERROR and the error reaches on_error, not the event loop's traceback."""
    import asyncio

    from cloudrun_grpc_cli.core.relay import Downstream

    class Broken:
        def open(self, link: Any, headers: Any) -> None:
            raise RuntimeError("a bug")

    async def main() -> tuple[_Transport, list[Exception]]:
        errors: list[Exception] = []
        down = Downstream(Broken(), lambda _: None)  # type: ignore[arg-type]
        down.on_error = errors.append  # type: ignore[method-assign]
        transport = _Transport()
        down.connection_made(transport)  # type: ignore[arg-type]
        block = hpack.Encoder().encode([(":method", "POST"), (":scheme", "http"), (":path", ECHO), (":authority", "x")])
        down.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0, b"") + _frame(1, 5, 1, block))
        return transport, errors

    transport, errors = asyncio.run(main())
    assert [str(e) for e in errors] == ["a bug"]
    goaways = [f for f in _frames(transport.written) if isinstance(f, GoAwayFrame)]
    assert [(g.error_code, g.additional_data) for g in goaways] == [(2, b"internal error")]
    assert transport.closed
