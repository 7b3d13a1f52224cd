"""verify_jwt: signature against PEM map / JWKS (URL or file), issuer, audience, expiry."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.verify import Verification, parse_certs, verify_jwt
from cloudrun_grpc_cli.errors import CredentialsError
from tests.support.issuer import Issuer, certificate_pem, issuer_fixture, sign  # noqa: F401

AUD = "https://svc-abc-uc.a.run.app"
EMAIL = "sa@test-project.iam.gserviceaccount.com"


def names(v: Verification) -> list[tuple[str, bool]]:
    return [(n, ok) for n, ok, _ in v.checks]


def test_pem_map_url_all_checks_pass(issuer: Issuer) -> None:
    tok = issuer.id_token(AUD, email=EMAIL, lifetime=3300)
    v = verify_jwt(tok, certs=issuer.certs_url, audience=AUD)
    assert v.ok
    assert v.checks[0] == ("signature", True, "RS256, kid issuer-key-1")
    assert v.checks[1] == ("issuer", True, "https://accounts.google.com")
    assert v.checks[2] == ("audience", True, AUD)
    assert v.checks[3][:2] == ("expiry", True)
    assert v.checks[3][2] in ("expires in 54m", "expires in 55m")
    assert issuer.count("/oauth2/v1/certs") == 1


def test_jwks_url(issuer: Issuer) -> None:
    v = verify_jwt(issuer.id_token(AUD), certs=issuer.jwks_url, audience=AUD)
    assert v.ok
    assert names(v) == [("signature", True), ("issuer", True), ("audience", True), ("expiry", True)]


@pytest.mark.parametrize("kind", ["pem", "jwks"])
def test_certs_file(issuer: Issuer, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "certs.json"
    path.write_text(json.dumps(issuer.certs_pem_map() if kind == "pem" else issuer.jwks()))
    v = verify_jwt(issuer.id_token(AUD), certs=str(path), audience=AUD)
    assert v.ok
    assert issuer.requests == []


def test_no_audience_is_said(issuer: Issuer) -> None:
    v = verify_jwt(issuer.id_token(AUD), certs=issuer.certs_url)
    assert v.ok
    assert v.checks[2] == ("audience", None, "not checked: no --audience")


def test_wrong_audience(issuer: Issuer) -> None:
    v = verify_jwt(issuer.id_token("https://other.example"), certs=issuer.certs_url, audience=AUD)
    assert not v.ok
    assert v.checks[2] == ("audience", False, f"aud is 'https://other.example', not '{AUD}'")
    assert names(v)[0] == ("signature", True)


def test_audience_list(issuer: Issuer) -> None:
    tok = issuer.id_token("x", extra={"aud": ["a", AUD]})
    assert verify_jwt(tok, certs=issuer.certs_url, audience=AUD).ok


def test_expired(issuer: Issuer) -> None:
    now = int(time.time())
    tok = issuer.id_token(AUD, now=now - 3700, lifetime=3600)
    v = verify_jwt(tok, certs=issuer.certs_url, audience=AUD)
    assert not v.ok
    assert v.checks[3] == ("expiry", False, "expired 1m ago")


def test_clock_skew_tolerated(issuer: Issuer) -> None:
    now = int(time.time())
    tok = issuer.id_token(AUD, now=now - 3603, lifetime=3600)
    assert verify_jwt(tok, certs=issuer.certs_url, audience=AUD, clock_skew=30).ok
    assert not verify_jwt(tok, certs=issuer.certs_url, audience=AUD, clock_skew=0).ok


def test_issued_in_the_future(issuer: Issuer) -> None:
    tok = issuer.id_token(AUD, now=int(time.time()) + 600)
    v = verify_jwt(tok, certs=issuer.certs_url, audience=AUD)
    assert v.checks[3][:2] == ("expiry", False)
    assert v.checks[3][2].startswith("issued ") and v.checks[3][2].endswith(" in the future")


def test_bad_signature(issuer: Issuer) -> None:
    forged = sign(
        {"iss": "https://accounts.google.com", "aud": AUD, "exp": int(time.time()) + 600},
        key_name="attacker",
        kid=issuer.kid,
    )
    v = verify_jwt(forged, certs=issuer.certs_url, audience=AUD)
    assert not v.ok
    assert v.checks[0] == (
        "signature",
        False,
        "signature does not match the key with kid issuer-key-1",
    )
    # the other checks are still reported
    assert names(v)[1:] == [("issuer", True), ("audience", True), ("expiry", True)]


def test_tampered_claims(issuer: Issuer) -> None:
    h, _, s = issuer.id_token(AUD).split(".")
    other = issuer.id_token("https://evil.example").split(".")[1]
    v = verify_jwt(f"{h}.{other}.{s}", certs=issuer.certs_url)
    assert v.checks[0][:2] == ("signature", False)


def test_unknown_kid(issuer: Issuer) -> None:
    tok = sign({"iss": "https://accounts.google.com", "exp": int(time.time()) + 60}, kid="nope")
    v = verify_jwt(tok, certs=issuer.certs_url)
    assert v.checks[0] == ("signature", False, "no certificate with kid nope")


def test_no_kid_tries_every_key(issuer: Issuer) -> None:
    tok = sign({"iss": "accounts.google.com", "exp": int(time.time()) + 60}, kid=None)
    v = verify_jwt(tok, certs=issuer.certs_url)
    assert v.checks[0] == ("signature", True, "RS256, kid issuer-key-1")


def test_wrong_algorithm(issuer: Issuer) -> None:
    tok = sign({"iss": "https://accounts.google.com"}, header={"alg": "HS256"})
    v = verify_jwt(tok, certs=issuer.certs_url)
    assert v.checks[0] == ("signature", False, "unsupported algorithm 'HS256' (RS256 expected)")


def test_wrong_issuer(issuer: Issuer) -> None:
    issuer.issuer = "https://evil.example"
    v = verify_jwt(issuer.id_token(AUD), certs=issuer.certs_url, audience=AUD)
    assert v.checks[1] == (
        "issuer",
        False,
        "'https://evil.example' is not https://accounts.google.com or accounts.google.com",
    )
    assert verify_jwt(
        issuer.id_token(AUD), certs=issuer.certs_url, issuers=["https://evil.example"]
    ).ok


def test_the_core_reads_no_certs_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # CRGRPC_CERTS_URL is the CLI's (--certs); the core's default is Google's.
    from cloudrun_grpc_cli.core.auth.verify import GOOGLE_CERTS_URL, certs_source

    monkeypatch.setenv("CRGRPC_CERTS_URL", "/nowhere")
    assert certs_source(None) == GOOGLE_CERTS_URL
    assert certs_source(" /some/file ") == "/some/file"


def test_fetch_failure_refused() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/certs"
    tok = sign({"iss": "https://accounts.google.com"})
    with pytest.raises(CredentialsError) as e:
        verify_jwt(tok, certs=url)
    assert e.value.message.startswith(f"could not fetch certs from {url}: ")
    assert e.value.hints == ("give --certs FILE (a PEM map or a JWKS), or another --certs URL",)


def test_fetch_failure_http_status(issuer: Issuer) -> None:
    url = f"{issuer.url}/missing"
    with pytest.raises(CredentialsError, match=r"could not fetch certs from .*/missing: HTTP 404"):
        verify_jwt(issuer.id_token(AUD), certs=url)


def test_certs_file_problems(tmp_path: Path, issuer: Issuer) -> None:
    tok = issuer.id_token(AUD)
    with pytest.raises(
        CredentialsError, match=r"cannot read certs file .*nope\.json: No such file"
    ):
        verify_jwt(tok, certs=str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CredentialsError, match="are not JSON"):
        verify_jwt(tok, certs=str(bad))
    bad.write_text('{"a": 1}')
    with pytest.raises(CredentialsError, match="holds neither a PEM map"):
        verify_jwt(tok, certs=str(bad))
    bad.write_text('{"keys": [{"kty": "EC"}]}')
    with pytest.raises(CredentialsError, match="has no usable RSA key"):
        verify_jwt(tok, certs=str(bad))


def test_not_a_jwt_is_credentials_error(issuer: Issuer) -> None:
    with pytest.raises(CredentialsError, match="not a JWT"):
        verify_jwt("nope", certs=issuer.certs_url)
    assert issuer.requests == []


def test_parse_certs_pem_map() -> None:
    pem = certificate_pem("issuer")
    assert parse_certs({"k": pem}, "x") == {"k": pem}
