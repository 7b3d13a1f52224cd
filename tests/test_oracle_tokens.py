"""Tokens crgrpc mints and sends, verified by google-auth rather than by crgrpc.

crgrpc's own verifier (core/auth/verify.py, behind the demo's TokenCheck and
`token decode --verify`) is code under test: it must not be the only judge
of "the token is valid" or "the server accepted it". Here google-auth's
google.oauth2.id_token.verify_token checks each token against the local
issuer's certs URL: `crgrpc token print` for a service-account key,
impersonation and a gcloud user (ADC authorized_user); the token a real
server received on a real call, which must be the verified one; and, so the
oracle is known to say no, tokens it must refuse. TokenCheck's verdicts are
checked against google-auth's on the same tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc
from cloudrun_grpc_cli.demo.server import build_server
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from tests.support.cli import run
from tests.support.issuer import (  # noqa: F401
    KEY_SA,
    TARGET_SA,
    USER_CLIENT_ID,
    USER_EMAIL,
    Issuer,
    issuer_fixture,
    sign,
)
from tests.support.oracle import bearer, google_verified
from tests.support.servers import echo_server
from tests.support.tls import CertFiles, make_certs

AUD = "https://localhost"
SAY_HELLO = "/echo.EchoServer/SayHello"
HELLO = '{"message":"Hello x from K_REVISION local"}\n'


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("oracle-tls"))


@pytest.fixture
def gcloud_adc(isolated_env: Path) -> Path:
    d = isolated_env / "gcloud"
    d.mkdir(exist_ok=True)
    return d / "application_default_credentials.json"


@dataclass
class Source:
    """How to point crgrpc at a credential, and what its tokens must say."""

    print_args: list[str]
    call_args: list[str]
    audience: str
    email: str


def _key_file(issuer: Issuer, tmp: Path, adc: Path) -> Source:
    key = issuer.write_service_account_key(tmp / "sa.json")
    return Source(["--key-file", str(key)], ["--key-file", str(key)], AUD, KEY_SA)


def _impersonation(issuer: Issuer, tmp: Path, adc: Path) -> Source:
    key = issuer.write_service_account_key(tmp / "sa.json")
    args = [
        "--key-file", str(key),
        "--impersonate-service-account", TARGET_SA,
        "--iam-endpoint", issuer.url,
        "--include-email",
    ]
    return Source(args, args, AUD, TARGET_SA)


def _adc_authorized_user(issuer: Issuer, tmp: Path, adc: Path) -> Source:
    issuer.write_authorized_user(adc)
    # a gcloud user's token is for the OAuth client, and sent only with --auth
    return Source([], ["--auth"], USER_CLIENT_ID, USER_EMAIL)


SOURCES: dict[str, Callable[[Issuer, Path, Path], Source]] = {
    "key file": _key_file,
    "impersonation": _impersonation,
    "ADC authorized_user": _adc_authorized_user,
}


# -- google-auth's verdict on what `crgrpc token print` mints -------------------------------


@pytest.mark.parametrize("name", list(SOURCES))
def test_printed_token_verifies_with_google_auth(
    name: str, issuer: Issuer, tmp_path: Path, gcloud_adc: Path
) -> None:
    src = SOURCES[name](issuer, tmp_path, gcloud_adc)
    r = run("token", "print", AUD, *src.print_args)
    assert (r.code, r.stderr) == (0, "")
    token = r.stdout.removesuffix("\n")
    assert r.stdout == token + "\n" and "\n" not in token
    claims = google_verified(token, audience=src.audience, certs_url=issuer.certs_url)
    assert (claims["iss"], claims["aud"], claims["email"]) == (
        "https://accounts.google.com",
        src.audience,
        src.email,
    )
    assert claims["exp"] - claims["iat"] == 3600
    with pytest.raises(ValueError) as info:
        google_verified(token, audience="https://another.example", certs_url=issuer.certs_url)
    assert str(info.value) == (
        f"Token has wrong audience {src.audience}, expected one of ['https://another.example']"
    )


# -- a real call: the server received the google-auth-verified token ------------------------


@dataclass
class GoogleAuthCheck(grpc.ServerInterceptor):  # type: ignore[misc]
    """Admits a call only if google-auth verifies its bearer token; records each one."""

    audience: str
    certs_url: str
    seen: list[tuple[str, str | None, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verdict(self, metadata: dict[str, Any]) -> tuple[str | None, bool]:
        value = metadata.get("authorization")
        if not isinstance(value, str) or not value.startswith("Bearer "):
            return None, False
        token = bearer(value)
        try:
            google_verified(token, audience=self.audience, certs_url=self.certs_url)
        except ValueError:
            return token, False
        return token, True

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        handler = continuation(details)
        if handler is None:
            return None  # no such method: gRPC answers UNIMPLEMENTED
        token, ok = self.verdict(dict(details.invocation_metadata or ()))
        with self.lock:
            self.seen.append((details.method, token, ok))
        if ok:
            return handler

        def refuse(request: Any, context: grpc.ServicerContext) -> Any:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "google-auth refused the token")

        if handler.request_streaming and handler.response_streaming:
            return grpc.stream_stream_rpc_method_handler(
                refuse, handler.request_deserializer, handler.response_serializer
            )
        return grpc.unary_unary_rpc_method_handler(
            refuse, handler.request_deserializer, handler.response_serializer
        )


@pytest.fixture
def checked(issuer: Issuer, certs: CertFiles) -> Callable[[str], Iterator[Any]]:
    """A TLS Echo server behind GoogleAuthCheck for an audience."""
    from contextlib import contextmanager

    @contextmanager
    def start(audience: str) -> Iterator[tuple[int, GoogleAuthCheck]]:
        check = GoogleAuthCheck(audience, issuer.certs_url)
        with echo_server(tls=certs, interceptors=(check,)) as srv:
            yield srv.port, check

    return start  # type: ignore[return-value]


@pytest.mark.parametrize("name", list(SOURCES))
def test_server_received_the_google_auth_verified_token(
    name: str,
    issuer: Issuer,
    tmp_path: Path,
    gcloud_adc: Path,
    certs: CertFiles,
    checked: Callable[[str], Any],
) -> None:
    src = SOURCES[name](issuer, tmp_path, gcloud_adc)
    printed = run("token", "print", AUD, *src.print_args)
    assert printed.code == 0
    token = printed.stdout.removesuffix("\n")
    google_verified(token, audience=src.audience, certs_url=issuer.certs_url)
    with checked(src.audience) as (port, check):
        r = run(
            "call", f"localhost:{port}", "SayHello", "-d", '{"name": "x"}',
            "--cacert", str(certs.ca), *src.call_args,
        )
    assert (r.code, r.stderr, r.stdout) == (0, "", HELLO)
    assert check.seen[-1] == (SAY_HELLO, token, True)
    # reflection carried the same token, and google-auth admitted each call
    assert {(t, ok) for _, t, ok in check.seen} == {(token, True)}
    assert len(check.seen) >= 2


def test_a_token_google_auth_refuses_is_refused_by_the_server(
    issuer: Issuer, certs: CertFiles, checked: Callable[[str], Any]
) -> None:
    """The server-side oracle can say no: a token for another audience is refused."""
    other = issuer.id_token("https://elsewhere.example", email=KEY_SA)
    with checked(AUD) as (port, check):
        r = run(
            "call", f"localhost:{port}", "SayHello", "-d", '{"name": "x"}',
            "--cacert", str(certs.ca), "--token", other, "--audience", "https://elsewhere.example",
            "--authority", "localhost",
        )
    assert r.code == 80
    assert r.stderr.splitlines()[0] == (
        "error: UNAUTHENTICATED: reflection: google-auth refused the token"
    )
    assert [(t, ok) for _, t, ok in check.seen] == [(other, False)]


# -- TokenCheck (crgrpc's verifier on the server) agrees with google-auth -------------------


def _tokens(issuer: Issuer) -> dict[str, tuple[str, bool]]:
    """Tokens and whether they are valid for AUD from the issuer's certs."""
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": AUD, "iat": now, "exp": now + 600}
    return {
        "valid": (issuer.id_token(AUD, email=KEY_SA), True),
        "valid, no email": (issuer.id_token(AUD, sub="42"), True),
        "other audience": (issuer.id_token("https://other.example", email=KEY_SA), False),
        "expired an hour ago": (issuer.id_token(AUD, now=now - 7200), False),
        "signed by another key": (sign(claims, key_name="intruder", kid=issuer.kid), False),
        "unknown kid": (sign(claims, kid="rotated-away"), False),
        "issued in the future": (issuer.id_token(AUD, now=now + 3600), False),
    }


CASES = [
    "valid",
    "valid, no email",
    "other audience",
    "expired an hour ago",
    "signed by another key",
    "unknown kid",
    "issued in the future",
]


@pytest.mark.parametrize("case", CASES)
def test_tokencheck_and_google_auth_agree(issuer: Issuer, case: str) -> None:
    token, valid = _tokens(issuer)[case]
    try:
        google_verified(token, audience=AUD, certs_url=issuer.certs_url)
        google_says = True
    except ValueError:
        google_says = False
    assert google_says is valid
    server = build_server(interceptors=[TokenCheck(AUD, certs=issuer.certs_url)])
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = echo_pb2_grpc.EchoServerStub(channel)
            try:
                stub.SayHello(
                    echo_pb2.EchoRequest(name="x"),
                    metadata=[("authorization", f"Bearer {token}")],
                    timeout=10,
                )
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
    finally:
        server.stop()
    assert code == (grpc.StatusCode.OK if valid else grpc.StatusCode.UNAUTHENTICATED)


def test_wrong_issuer_is_refused_by_both(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, extra={"iss": "https://evil.example"})
    with pytest.raises(ValueError) as info:
        google_verified(token, audience=AUD, certs_url=issuer.certs_url)
    assert str(info.value) == "wrong issuer 'https://evil.example'"
    check = TokenCheck(AUD, certs=issuer.certs_url)
    verdict = check.check([("authorization", f"Bearer {token}")])
    assert verdict is not None and verdict[0] == grpc.StatusCode.UNAUTHENTICATED
