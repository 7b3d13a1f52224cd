"""`crgrpc proxy` and tokens (issue 14, points 3 and 4): minted once and shared,
refreshed in the background before it expires with no call failed or delayed,
in the header chosen as for `call`, minting failures answered UNAUTHENTICATED,
the plaintext-token rule on the upstream side, and the token never in the log.

Every token the upstream received is verified with google-auth's verifier
(signature, audience, issuer) and checked unexpired at the moment it arrived;
the upstream's own check allows no clock skew.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from tests.support.cli import run
from tests.support.issuer import KEY_SA, Issuer
from tests.support.load import SlowIssuer
from tests.support.proxy import ProxyProcess, Upstream, proxy_certs_fixture, upstream, verify_later  # noqa: F401
from tests.support.tls import CertFiles

SAY_HELLO = "/echo.EchoServer/SayHello"
HELLO = "Hello x from K_REVISION local"


@contextmanager
def bench(issuer: Issuer, certs: CertFiles, home: Path, *args: str) -> Iterator[tuple[Upstream, ProxyProcess]]:
    """The guarded upstream and a proxy minting from a key file of issuer."""
    key = issuer.write_service_account_key(home / "sa.json")
    with upstream(issuer, certs) as up, ProxyProcess(*up.args(key), "--port", "0", "-o", "json", *args, home=home) as proxy:
        assert proxy.address, proxy.stderr
        yield up, proxy


def hello(stub: echo_pb2_grpc.EchoServerStub, **kw: Any) -> str:
    return str(stub.SayHello(echo_pb2.EchoRequest(name="x"), timeout=10, **kw).message)


# --- refresh during a run of calls ---------------------------------------------------------


def test_a_token_expiring_during_a_run_of_calls_is_refreshed_with_no_failure(
    certs: CertFiles, tmp_path: Path
) -> None:
    """Tokens live 8 s (refresh margin: a quarter, 2 s) and take 0.5 s to mint. Three
    clients call without pause for 8.5 s, across a refresh and the first token's
    expiry: every call succeeds; each token is minted once and shared; no call that
    began while the mint was running waited for it."""
    issuer = SlowIssuer(lifetime=8, delay=0.5).start()
    try:
        with bench(issuer, certs, tmp_path) as (up, proxy):
            stop = time.monotonic() + 8.5
            results: list[tuple[float, float, str]] = []  # (start, end, outcome)
            lock = threading.Lock()

            def client() -> None:
                with grpc.insecure_channel(proxy.address) as ch:
                    stub = echo_pb2_grpc.EchoServerStub(ch)
                    while time.monotonic() < stop:
                        began = time.time()
                        try:
                            outcome = hello(stub)
                        except grpc.RpcError as e:
                            outcome = f"{e.code().name}: {e.details()}"
                        with lock:
                            results.append((began, time.time(), outcome))

            threads = [threading.Thread(target=client) for _ in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            failures = [r for r in results if r[2] != HELLO]
            assert failures == []
            assert len(results) > 100
            tokens = proxy.events("token")
            assert [t["refreshed"] for t in tokens][:2] == [False, True]
            assert issuer.count("/token") == len(tokens)  # one mint per token, shared by all calls
            # the first token expired during the run, and calls went on after it
            first_exp = verify_later(issuer.minted[0], issuer)["exp"]
            assert results[0][0] < first_exp < results[-1][1]
            # calls that began in the first half of a refresh's mint (0.5 s before each
            # new token) ended before the token arrived: nothing waited for the mint
            refreshed = [t for t in tokens[1:] if _epoch(t["time"]) < results[-1][0]]
            assert refreshed
            for t in refreshed:
                arrived = _epoch(t["time"])
                during = [r for r in results if arrived - 0.45 < r[0] < arrived - 0.2]
                assert during, "no call ran during the mint"
                assert all(end < arrived for _, end, _ in during), [(round(b - arrived, 3), round(e - arrived, 3)) for b, e, _ in during]
            distinct = up.verify_tokens(SAY_HELLO)
            assert distinct == set(issuer.minted)
    finally:
        issuer.stop()


def _epoch(iso: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc).timestamp()


def test_a_minting_failure_answers_unauthenticated_and_recovers(certs: CertFiles, tmp_path: Path) -> None:
    """The issuer starts refusing; once the token has expired, calls are answered
    UNAUTHENTICATED with the reason (never a dropped connection), and the log says so;
    when the issuer comes back, the next call mints and succeeds."""
    issuer = Issuer(lifetime=3).start()
    try:
        with bench(issuer, certs, tmp_path) as (up, proxy), grpc.insecure_channel(proxy.address) as ch:
            stub = echo_pb2_grpc.EchoServerStub(ch)
            assert hello(stub) == HELLO
            issuer.failures["/token"] = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            proxy.wait_for(lambda: [e for e in proxy.events("token_error") if e["expired"]], timeout=20)
            with pytest.raises(grpc.RpcError) as e:
                hello(stub)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            details = e.value.details()
            assert details.startswith("crgrpc proxy: cannot get a token for https://localhost: "), details
            assert "Invalid JWT Signature" in details
            failed = proxy.wait_for(lambda: [c for c in proxy.calls("echo.EchoServer/SayHello") if c["code"] == 16])
            assert (failed[-1]["status"], failed[-1]["message"], failed[-1]["requests"]) == ("UNAUTHENTICATED", details, 0)
            error = proxy.events("token_error")[0]
            assert error["message"] == details.removeprefix("crgrpc proxy: ")
            assert error["retry_in_s"] == 1.0
            calls_before = len(up.recorder.of(SAY_HELLO))
            assert len(up.recorder.of(SAY_HELLO)) == calls_before  # refused calls never went upstream
            del issuer.failures["/token"]
            time.sleep(1.1)  # at most one attempt a second
            assert hello(stub) == HELLO
            assert proxy.events("token")[-1]["refreshed"] is True
            up.verify_tokens(SAY_HELLO)
    finally:
        issuer.stop()


def test_a_given_token_that_expires_is_answered_unauthenticated(certs: CertFiles, tmp_path: Path) -> None:
    issuer = Issuer().start()
    try:
        token = issuer.id_token("https://localhost", email=KEY_SA, lifetime=6)
        with upstream(issuer, certs) as up, ProxyProcess(*up.args(), "--token", token, "--port", "0", "-o", "json", home=tmp_path) as proxy, grpc.insecure_channel(proxy.address) as ch:
            assert proxy.address, proxy.stderr
            stub = echo_pb2_grpc.EchoServerStub(ch)
            assert hello(stub) == HELLO
            proxy.wait_for(lambda: proxy.events("token_error"), timeout=10)
            with pytest.raises(grpc.RpcError) as e:
                hello(stub)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert re.fullmatch(
                r"crgrpc proxy: the token of --token expired \d+s ago; a token you give is never "
                r"refreshed \(give credentials to mint from instead, e\.g\. --key-file\)",
                e.value.details(),
            ), e.value.details()
            error = proxy.events("token_error")[0]
            assert (error["expired"], error["retry_in_s"]) == (True, None)
            assert token not in proxy.stderr
    finally:
        issuer.stop()


# --- which header, and the client's own ----------------------------------------------------------


def test_serverless_auth_and_header_options(certs: CertFiles, tmp_path: Path) -> None:
    """--serverless-auth: the token goes in x-serverless-authorization (Cloud Run checks it
    first) and the client's own authorization passes through to the app unchanged.
    -H headers go on every call, replacing the client's header of the same name."""
    issuer = Issuer().start()
    try:
        args = ("--serverless-auth", "-H", "x-team: blue", "-H", "x-key-bin: AAE=")
        with bench(issuer, certs, tmp_path, *args) as (up, proxy), grpc.insecure_channel(proxy.address) as ch:
            stub = echo_pb2_grpc.EchoServerStub(ch)
            sent = (("authorization", "Bearer for-the-app"), ("x-serverless-authorization", "Bearer stale"), ("x-team", "red"), ("x-other", "o"))
            assert hello(stub, metadata=sent) == HELLO
            seen = up.recorder.of(SAY_HELLO)[-1]
            assert [(k, v) for k, v in seen.metadata if k != "user-agent"] == [
                ("authorization", "Bearer for-the-app"),
                ("x-other", "o"),
                ("x-team", "blue"),
                ("x-key-bin", b"\x00\x01"),
                ("x-serverless-authorization", f"Bearer {issuer.minted[0]}"),
            ]
            assert up.verify_tokens(SAY_HELLO, header="x-serverless-authorization") == {issuer.minted[0]}
            assert proxy.events("listening")[0]["token_header"] == "x-serverless-authorization"
    finally:
        issuer.stop()


# --- the plaintext-token rule on the upstream side ----------------------------------------------


def test_no_token_over_plaintext_to_a_remote_host(tmp_path: Path) -> None:
    """As for call: refused (exit 3) before anything is dialed or bound."""
    issuer = Issuer().start()
    try:
        key = issuer.write_service_account_key(tmp_path / "sa.json")
        with ProxyProcess("http://service.invalid:8080", "--key-file", str(key), "--port", "0", home=tmp_path) as proxy:
            code = proxy.proc.wait(30)
            proxy._reader.join(5)
            assert (code, proxy.first_line) == (3, "")
            assert proxy.stderr == (
                "error: refusing to send a token over plaintext to service.invalid: anyone on the "
                "path could replay it\n"
                "hint: use TLS, or --allow-plaintext-token if the network is trusted\n"
            )
        same = run("call", "http://service.invalid:8080", "M", "--key-file", str(key))
        assert same.stderr == proxy.stderr
        assert issuer.count("/token") == 0
    finally:
        issuer.stop()


def test_a_plaintext_loopback_target_gets_no_token_unless_asked(tmp_path: Path) -> None:
    """A plaintext target on loopback: no token (as for call), and then the client's
    authorization passes through untouched."""
    from tests.support.servers import echo_server

    with echo_server() as srv, ProxyProcess(f"http://127.0.0.1:{srv.port}", "--port", "0", "-o", "json", home=tmp_path) as proxy, grpc.insecure_channel(proxy.address) as ch:
        stub = echo_pb2_grpc.EchoServerStub(ch)
        assert hello(stub, metadata=(("authorization", "Bearer mine"),)) == HELLO
        listening = proxy.wait_for(lambda: proxy.events("listening"))[0]
        assert listening["token_header"] is None
        assert listening["no_token"] == "a plaintext target gets a token only when asked (--auth or a token source)"
        assert proxy.events("token") == []
