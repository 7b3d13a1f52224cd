"""`crgrpc proxy` as a process (issue 14, points 1, 4, 5 and 7): where it listens and
what it refuses, its first stdout line, its log (pretty and JSON Lines, -v redacted),
start-up failures, grpcurl as a native client, and stopping with Ctrl-C or SIGTERM
within --grace. Only loopback addresses are ever bound.
"""

from __future__ import annotations

import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cloudrun_grpc_cli.core.proxy import exposure_warning, is_loopback_bind, parse_bind
from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from cloudrun_grpc_cli.errors import UsageError
from tests.support.cli import run, run_process
from tests.support.issuer import KEY_SA, Issuer
from tests.support.proxy import (  # noqa: F401  (the fixtures)
    PROBE,
    ProxyProcess,
    Upstream,
    isolated,
    proxy_certs_fixture,
    proxy_issuer_fixture,
    proxy_upstream_fixture,
)

HELLO = "Hello x from K_REVISION local"


@pytest.fixture(scope="module")
def key(issuer: Issuer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return issuer.write_service_account_key(tmp_path_factory.mktemp("proxy-key") / "sa.json")


def start(up: Upstream, key: Path, home: Path, *args: str, env: dict[str, str] | None = None) -> ProxyProcess:
    return ProxyProcess(*up.args(key), *args, home=home, env=env)


def finished(proxy: ProxyProcess, timeout: float = 30) -> int:
    code = proxy.proc.wait(timeout)
    proxy._reader.join(5)
    return code


def _proc_address(text: str) -> str:
    """An address as /proc/net/tcp* writes it (32-bit words in host order), as text;
    an IPv4-mapped IPv6 address as its IPv4 address."""
    import ipaddress

    raw = b"".join(bytes.fromhex(text[i : i + 8])[::-1] for i in range(0, len(text), 8))
    ip = ipaddress.ip_address(raw)
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)


def listening_sockets(port: int) -> list[str]:
    """Local addresses of the sockets listening on port."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                out.append(_proc_address(address))
    return out


def hello(address: str) -> str:
    with grpc.insecure_channel(address) as ch:
        return str(echo_pb2_grpc.EchoServerStub(ch).SayHello(echo_pb2.EchoRequest(name="x"), timeout=10).message)


# --- where it listens ----------------------------------------------------------------------


def test_it_listens_on_loopback_and_logs_json_lines_into_a_pipe(up: Upstream, key: Path, tmp_path: Path) -> None:
    with start(up, key, tmp_path, "--port", "0") as proxy:
        assert re.fullmatch(r"listening on 127\.0\.0\.1:\d+\n", proxy.first_line), proxy.stderr
        port = int(proxy.address.rsplit(":", 1)[1])
        assert listening_sockets(port) == ["127.0.0.1"]  # and nothing else
        assert hello(proxy.address) == HELLO
        proxy.wait_for(proxy.calls)
        assert proxy.stop() == 0
    kinds = [r["event"] for r in proxy.records()]
    assert kinds == ["listening", "token", "call", "stopping", "stopped"]
    assert len(proxy.records()) == len(proxy.lines)  # every line is JSON: no -o, stderr is a pipe
    call = proxy.calls()[0]
    assert "metadata" not in call  # only with -v
    assert set(call) == {"time", "event", "method", "code", "status", "message", "duration_ms", "requests", "responses", "peer"}


def test_a_non_loopback_address_from_the_variable_is_refused(up: Upstream, key: Path, tmp_path: Path) -> None:
    """CRGRPC_PROXY_BIND may name loopback addresses only: exposing your identity takes --bind."""
    with start(up, key, tmp_path, "--port", "0", env={"CRGRPC_PROXY_BIND": "0.0.0.0"}) as proxy:
        assert (finished(proxy), proxy.first_line) == (2, "")
        assert proxy.stderr == (
            "error: CRGRPC_PROXY_BIND names 0.0.0.0, not a loopback address: anyone who can "
            "reach it would call the service as you\n"
            "hint: to mean it, give --bind 0.0.0.0 on the command line\n"
        )


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
def test_bind_ipv6_loopback(up: Upstream, key: Path, tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 here")
    with start(up, key, tmp_path, "--port", "0", "--bind", "::1") as proxy:
        assert re.fullmatch(r"listening on \[::1\]:\d+\n", proxy.first_line), proxy.stderr
        assert hello(proxy.address) == HELLO


def test_which_binds_are_loopback() -> None:
    assert [is_loopback_bind(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost")] == [True] * 4
    assert [is_loopback_bind(h) for h in ("0.0.0.0", "::", "10.1.2.3", "192.168.1.20", "fe80::1")] == [False] * 5
    assert parse_bind("[::1]") == "::1"
    with pytest.raises(UsageError) as e:
        parse_bind("127.0.0.1:8080")
    assert (e.value.message, e.value.hints) == (
        "invalid --bind '127.0.0.1:8080': give an address or host name without a port",
        ("the port is --port: --bind 0.0.0.0 --port 8080",),
    )


def test_the_exposure_warning_names_who_calls_as_whom() -> None:
    """Said, after binding, for a --bind on a non-loopback address (not bound in tests)."""
    assert exposure_warning("0.0.0.0", 8080, "echo.run.app:443", KEY_SA, token=True) == (
        "--bind 0.0.0.0 is not a loopback address: anyone who can reach port 8080 here calls "
        f"echo.run.app:443 with your token as {KEY_SA}"
    )


def test_a_busy_port_is_refused(up: Upstream, key: Path, tmp_path: Path) -> None:
    """(The first proxy takes its loopback address from CRGRPC_PROXY_BIND: allowed.)"""
    with start(up, key, tmp_path / "a", "--port", "0", env={"CRGRPC_PROXY_BIND": "127.0.0.1"}) as first:
        assert first.first_line.startswith("listening on 127.0.0.1:"), first.stderr
        port = first.address.rsplit(":", 1)[1]
        with start(up, key, tmp_path / "b", "--port", port) as second:
            assert (finished(second), second.first_line) == (2, "")
            assert second.stderr == (
                f"error: cannot listen on 127.0.0.1:{port}: address already in use\n"
                "hint: --port 0 picks a free port\n"
            )
        assert hello(first.address) == HELLO  # the first one keeps its port to itself


def test_the_default_port_is_8080() -> None:
    from cloudrun_grpc_cli.cli.options import ROWS

    assert (ROWS["proxy_port"].default, ROWS["grace"].default) == (8080, 5.0)
    r = run_process("proxy", "--help")
    assert r.code == 0
    flat = " ".join(r.stdout.split())
    assert "--port PORT Port to listen on; 0 picks a free one (the first line on stdout names it) (0-65535). [env var: CRGRPC_PROXY_PORT; default: 8080]" in flat
    assert "--grace SECONDS" in flat and "--bind ADDR" in flat and "--key-file FILE" in flat
    assert "--proto " not in flat and "--show-token" not in flat
    assert "-v, --verbose Log the metadata each call sends upstream (secrets redacted)." in flat


# --- start-up failures, said as call says them ---------------------------------------------


def test_an_unreachable_target_is_exit_4(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ProxyProcess(f"localhost:{port}", "--plaintext", "--port", "0", home=tmp_path) as proxy:
        assert (finished(proxy), proxy.first_line) == (4, "")
        assert proxy.stderr.splitlines()[0] == f"error: cannot connect to localhost:{port}: connection refused"


def test_a_bad_key_file_is_exit_3_before_listening(up: Upstream, tmp_path: Path) -> None:
    bad = tmp_path / "sa.json"
    bad.write_text("{}")
    with start(up, bad, tmp_path, "--port", "0") as proxy:
        assert (finished(proxy), proxy.first_line) == (3, "")
    same = run("call", *up.args(bad), "SayHello")
    assert (same.code, proxy.stderr) == (3, same.stderr)


def test_a_method_in_the_target_is_refused(tmp_path: Path) -> None:
    r = run("proxy", "https://echo.run.app/echo.EchoServer/SayHello")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        "error: the target 'https://echo.run.app/echo.EchoServer/SayHello' names a method: the proxy forwards every method\n"
        "hint: give the service alone, e.g. https://echo-abc-uc.a.run.app\n"
    )


# --- the log ---------------------------------------------------------------------------------


def test_pretty_log_lines(up: Upstream, key: Path, tmp_path: Path, issuer: Issuer) -> None:
    with start(up, key, tmp_path, "--port", "0", "-o", "pretty", "-v") as proxy:
        assert hello(proxy.address) == HELLO
        with grpc.insecure_channel(proxy.address) as ch, pytest.raises(grpc.RpcError):
            ch.unary_unary(PROBE + "Details")(b"x")
        proxy.wait_for(lambda: "test.Probe/Details" in proxy.stderr)
        assert proxy.stop(signal.SIGINT) == 0
    lines = proxy.stderr.splitlines()
    clock = r"\d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(rf"{clock}  proxy {' ' * 12}{re.escape(proxy.address)} → {up.target} \(TLS\), token in authorization", lines[0]), lines
    assert lines[1] == f"{' ' * 14}point a tool at it: grpcurl -plaintext {proxy.address} list"
    assert re.fullmatch(rf"{clock}  token {' ' * 12}for https://localhost as {KEY_SA} from service-account key {re.escape(str(key))}, valid until \d\d:\d\d:\d\d \(for 59m\)", lines[2]), lines[2]
    assert re.fullmatch(rf"{clock}  OK {' ' * 15}echo\.EchoServer/SayHello  \d+\.\d ms  ↑1 ↓1", lines[3]), lines[3]
    assert lines[4] == " " * 14 + "authorization: Bearer <redacted>"
    assert re.fullmatch(rf"{clock}  RESOURCE_EXHAUSTED test\.Probe/Details  \d+\.\d ms  ↑1 ↓0  quota exhausted: x", lines[5]), lines[5]
    assert re.fullmatch(rf"{clock}  stopping {' ' * 9}SIGINT: 0 calls in flight", lines[-2]), lines[-2]
    assert re.fullmatch(rf"{clock}  stopped {' ' * 10}no longer listening", lines[-1]), lines[-1]
    assert "\x1b[" not in proxy.stderr
    for token in issuer.minted:
        assert token not in proxy.stderr


def _hold(address: str, tag: str) -> tuple[threading.Event, list[object]]:
    """A bidi call to Hold that stays open (one message answered); its outcome lands in the list."""
    gate, outcome = threading.Event(), []
    started = threading.Event()

    def requests() -> Iterator[bytes]:
        yield b"one"
        gate.wait(30)

    def go() -> None:
        with grpc.insecure_channel(address) as ch:
            call = ch.stream_stream(PROBE + "Hold")(requests(), metadata=(("probe-tag", tag),))
            try:
                for _ in call:
                    started.set()
                outcome.append("ended OK")
            except grpc.RpcError as e:
                outcome.append((e.code(), e.details()))

    threading.Thread(target=go, daemon=True).start()
    assert started.wait(10)
    return gate, outcome


def test_sigterm_lets_calls_finish_within_grace_then_cancels(up: Upstream, key: Path, tmp_path: Path) -> None:
    with start(up, key, tmp_path, "--port", "0", "-o", "json", "--grace", "2") as proxy:
        gate, held = _hold(proxy.address, "grace")
        with grpc.insecure_channel(proxy.address) as ch:
            sleeping = ch.unary_unary(PROBE + "Sleep").future(b"1.0", timeout=20)
            proxy.wait_for(lambda: up.recorder.of(PROBE + "Sleep"))
            t0 = time.monotonic()
            proxy.proc.send_signal(signal.SIGTERM)
            proxy.wait_for(lambda: proxy.events("stopping"))
            # no new calls: the port is closed
            with pytest.raises(grpc.RpcError) as refused:
                hello(proxy.address)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert sleeping.result() == b"slept 1.0"  # in flight: finished within grace
        code = finished(proxy)
        elapsed = time.monotonic() - t0
        gate.set()
        assert code == 0
        assert 1.5 < elapsed < 8
        assert up.probes.ended["grace"].wait(5)  # the held call was cancelled upstream too
        # UNAVAILABLE, as gRPC's own servers say it when they stop: the client may retry
        assert held == [(grpc.StatusCode.UNAVAILABLE, "the proxy stopped: --grace 2s ran out")]
        stopping = {k: v for k, v in proxy.events("stopping")[0].items() if k != "time"}
        assert stopping == {"event": "stopping", "signal": "SIGTERM", "in_flight": 2, "grace_s": 2.0}
        assert proxy.events("stopped")[0]["cancelled"] == 1
        outcomes = {c["method"]: (c["status"], c["message"]) for c in proxy.calls()}
        assert outcomes["test.Probe/Sleep"] == ("OK", "")
        assert outcomes["test.Probe/Hold"] == ("UNAVAILABLE", "the proxy stopped: --grace 2s ran out")


def test_ctrl_c_with_nothing_in_flight_stops_at_once(up: Upstream, key: Path, tmp_path: Path) -> None:
    with start(up, key, tmp_path, "--port", "0", "-o", "json") as proxy:
        t0 = time.monotonic()
        assert proxy.stop(signal.SIGINT) == 0
        assert time.monotonic() - t0 < 3
        assert [r["event"] for r in proxy.records()][-2:] == ["stopping", "stopped"]


def test_a_second_signal_cancels_at_once(up: Upstream, key: Path, tmp_path: Path) -> None:
    with start(up, key, tmp_path, "--port", "0", "-o", "json", "--grace", "60") as proxy:
        gate, _held = _hold(proxy.address, "second")
        t0 = time.monotonic()
        proxy.proc.send_signal(signal.SIGINT)
        proxy.wait_for(lambda: proxy.events("stopping"))
        proxy.proc.send_signal(signal.SIGINT)
        assert finished(proxy) == 0
        gate.set()
        assert time.monotonic() - t0 < 8
        assert up.probes.ended["second"].wait(5)
        assert proxy.events("stopped")[0]["cancelled"] == 1


def test_the_process_environment_is_isolated(tmp_path: Path) -> None:
    env = isolated(tmp_path)
    assert env["HOME"] == str(tmp_path) and not any(k.startswith("CRGRPC_") for k in env)
