"""demo/tokencheck.py: the server-side token check, on a real gRPC server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cloudrun_grpc_cli.core.auth import plan_auth
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from cloudrun_grpc_cli.demo.server import RunningServer, build_server
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from cloudrun_grpc_cli.settings import AuthSettings, ChannelSettings
from tests.support.issuer import KEY_SA, Issuer, issuer_fixture, sign  # noqa: F401

AUD = "https://svc-abc-uc.a.run.app"


Serve = Callable[[TokenCheck], Any]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start Echo with the given check; returns a stub on a plaintext channel to it."""
    servers: list[RunningServer] = []
    channels: list[grpc.Channel] = []

    def start(check: TokenCheck) -> Any:
        server = build_server(interceptors=[check])
        servers.append(server)
        channel = grpc.insecure_channel(server.address)
        channels.append(channel)
        return echo_pb2_grpc.EchoServerStub(channel)

    yield start
    for c in channels:
        c.close()
    for s in servers:
        s.stop()


def call(stub: Any, md: list[tuple[str, str]]) -> tuple[grpc.StatusCode, str]:
    try:
        reply = stub.SayHello(echo_pb2.EchoRequest(name="x"), metadata=md, timeout=10)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, reply.message


def bearer(token: str, header: str = "authorization") -> list[tuple[str, str]]:
    return [(header, f"Bearer {token}")]


def test_valid_token_passes(serve: Serve, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    code, msg = call(stub, bearer(issuer.id_token(AUD, email=KEY_SA)))
    assert code == grpc.StatusCode.OK
    assert msg.startswith("Hello x")


def test_minted_by_the_library_end_to_end(serve: Serve, issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    stub = serve(TokenCheck(AUD, certs=issuer.jwks_url, allowed_emails=[KEY_SA]))
    plan = plan_auth(
        parse_target("http://127.0.0.1:1"),
        ChannelSettings(),
        AuthSettings(key_file=key, audience=AUD),
    )
    assert call(stub, plan.metadata())[0] == grpc.StatusCode.OK
    # streams are checked too
    replies = list(stub.SayHelloStream(echo_pb2.EchoRequest(name="s"), metadata=plan.metadata()))
    assert len(replies) == 2
    with pytest.raises(grpc.RpcError) as e:
        list(stub.SayHelloStream(echo_pb2.EchoRequest(name="s")))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_serverless_header_is_checked_first(serve: Serve, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    good = bearer(issuer.id_token(AUD), "x-serverless-authorization")
    assert call(stub, good)[0] == grpc.StatusCode.OK
    # the app's own authorization header is passed through untouched
    assert call(stub, [*good, ("authorization", "Basic abc")])[0] == grpc.StatusCode.OK
    bad = bearer(issuer.id_token("https://x"), "x-serverless-authorization")
    assert call(stub, [*bad, *bearer(issuer.id_token(AUD))])[0] == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("md", "details"),
    [
        ([], "missing bearer token"),
        ([("authorization", "Basic dXNlcjpwYXNz")], "authorization is not a bearer token"),
        ([("authorization", "Bearer ya29.opaque")], "the bearer token is not a JWT"),
    ],
)
def test_missing_or_malformed(
    serve: Serve, issuer: Issuer, md: list[tuple[str, str]], details: str
) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    assert call(stub, md) == (grpc.StatusCode.UNAUTHENTICATED, details)


def test_wrong_audience(serve: Serve, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    assert call(stub, bearer(issuer.id_token("https://other"))) == (
        grpc.StatusCode.UNAUTHENTICATED,
        f"invalid token audience: aud is 'https://other', not '{AUD}'",
    )


def test_expired(serve: Serve, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    old = issuer.id_token(AUD, now=int(time.time()) - 7200)
    assert call(stub, bearer(old)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid token expiry: expired 1h ago",
    )


def test_bad_signature(serve: Serve, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    forged = sign(
        {"iss": "https://accounts.google.com", "aud": AUD, "exp": int(time.time()) + 600},
        key_name="attacker",
        kid=issuer.kid,
    )
    assert call(stub, bearer(forged)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid token signature: signature does not match the key with kid issuer-key-1",
    )


def test_wrong_issuer(serve: Serve, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    issuer.issuer = "https://evil.example"
    code, details = call(stub, bearer(issuer.id_token(AUD)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith("invalid token issuer: 'https://evil.example' is not ")


def test_allowed_emails(serve: Serve, issuer: Issuer) -> None:
    stub = serve(
        TokenCheck(AUD, certs=issuer.certs_url, allowed_emails=["Me@p.iam.gserviceaccount.com"])
    )
    assert call(stub, bearer(issuer.id_token(AUD, email="me@p.iam.gserviceaccount.com")))[0] == (
        grpc.StatusCode.OK
    )
    assert call(stub, bearer(issuer.id_token(AUD, email="other@p.iam"))) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "other@p.iam may not call this service",
    )
    assert call(stub, bearer(issuer.id_token(AUD))) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "a token without an email claim may not call this service",
    )


def test_certs_file_and_single_fetch(serve: Serve, issuer: Issuer, tmp_path: Path) -> None:
    stub = serve(TokenCheck(AUD, certs=issuer.certs_url))
    for _ in range(3):
        assert call(stub, bearer(issuer.id_token(AUD)))[0] == grpc.StatusCode.OK
    assert issuer.count("/oauth2/v1/certs") == 1
    f = tmp_path / "jwks.json"
    f.write_text(json.dumps(issuer.jwks()))
    stub = serve(TokenCheck(AUD, certs=str(f)))
    assert call(stub, bearer(issuer.id_token(AUD)))[0] == grpc.StatusCode.OK


def test_certs_unavailable(serve: Serve, tmp_path: Path, issuer: Issuer) -> None:
    stub = serve(TokenCheck(AUD, certs=str(tmp_path / "none.json")))
    code, details = call(stub, bearer(issuer.id_token(AUD)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith("cannot check the token: cannot read certs file ")


def test_reflection_is_checked_too(serve: Serve, issuer: Issuer) -> None:
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    check = TokenCheck(AUD, certs=issuer.certs_url)
    server = build_server(interceptors=[check])
    try:
        with grpc.insecure_channel(server.address) as ch:
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            req = reflection_pb2.ServerReflectionRequest(list_services="")
            with pytest.raises(grpc.RpcError) as e:
                list(stub.ServerReflectionInfo(iter([req]), timeout=10))
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answers = list(
                stub.ServerReflectionInfo(
                    iter([req]), metadata=bearer(issuer.id_token(AUD)), timeout=10
                )
            )
            names = [s.name for s in answers[0].list_services_response.service]
            assert "echo.EchoServer" in names
    finally:
        server.stop()


def test_the_issuers_key_is_made_once_when_threads_race_for_it() -> None:
    """A mint and the token check's first certs fetch run in two threads: both must
    see the one key for a name, or each would reject the other's tokens."""
    import threading

    from cloudrun_grpc_cli.demo.issuer import private_key_pem

    barrier = threading.Barrier(6)
    keys: list[bytes] = []

    def take() -> None:
        barrier.wait()
        keys.append(private_key_pem("race-for-one-key"))

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(keys) == 6
    assert len(set(keys)) == 1
    assert keys[0].startswith(b"-----BEGIN PRIVATE KEY-----")
