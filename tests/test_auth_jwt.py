"""decode_jwt, looks_like_access_token, humanize_delta and redaction (core/auth/jwt.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudrun_grpc_cli.core.auth.jwt import (
    OPAQUE_HINT,
    decode_jwt,
    humanize_delta,
    looks_like_access_token,
    redact,
)
from cloudrun_grpc_cli.errors import CredentialsError, ExitCode


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make(header: object, claims: object, sig: bytes = b"\x01\x02sig") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(sig)])


def test_decode_returns_parts() -> None:
    tok = make({"alg": "RS256", "kid": "k1"}, {"aud": "https://x", "exp": 5})
    d = decode_jwt(tok)
    assert d.header == {"alg": "RS256", "kid": "k1"}
    assert d.claims == {"aud": "https://x", "exp": 5}
    assert d.signature == b"\x01\x02sig"
    assert d.signing_input == tok.rsplit(".", 1)[0].encode()
    assert d.raw == tok


def test_decode_strips_bearer_and_space() -> None:
    tok = make({"alg": "none"}, {"a": 1})
    assert decode_jwt(f"  Bearer {tok}\n").raw == tok


def test_access_token_is_named() -> None:
    with pytest.raises(CredentialsError) as e:
        decode_jwt("ya29.a0AfB_byC-secret-part")
    assert e.value.message == "'ya29.a0A…' is an OAuth access token (ya29.…), not an ID token"
    assert OPAQUE_HINT in e.value.hints
    assert e.value.exit_code == ExitCode.CREDENTIALS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a JWT: the token is empty"),
        ("opaque-token-value", "not a JWT: 'opaque-t…' has 1 dot-separated part, not 3"),
        ("aaaaaaaaa.bbbb", "not a JWT: 'aaaaaaaa…' has 2 dot-separated parts, not 3"),
        ("eyJhbGciOi.e30.x", "not a JWT: the header of 'eyJhbGci…' is not base64url-encoded JSON"),
        (make([1], {}), None),
        (make({}, "str"), None),
    ],
)
def test_not_a_jwt(text: str, message: str | None) -> None:
    with pytest.raises(CredentialsError) as e:
        decode_jwt(text)
    if message is not None:
        assert e.value.message == message
    assert e.value.message.startswith("not a JWT")
    assert e.value.hints


def test_non_object_parts_are_named() -> None:
    with pytest.raises(CredentialsError, match=r"the header of .* is not a JSON object"):
        decode_jwt(make([1], {}))
    with pytest.raises(CredentialsError, match=r"the claims of .* is not a JSON object"):
        decode_jwt(make({}, "str"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ya29.abc", True),
        ("Bearer ya29.abc", True),
        ("  ya29.x ", True),
        ("eyJ.a.b", False),
        ("ya30.x", False),
        ("", False),
    ],
)
def test_looks_like_access_token(text: str, expected: bool) -> None:
    assert looks_like_access_token(text) is expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (12, "12s"),
        (59.9, "59s"),
        (60, "1m"),
        (3299, "54m"),
        (3599, "59m"),
        (3600, "1h"),
        (7380, "2h 3m"),
        (86399, "23h 59m"),
        (86400, "1d"),
        (3 * 86400 + 4 * 3600 + 59, "3d 4h"),
        (-3240, "54m"),
    ],
)
def test_humanize_delta(seconds: float, text: str) -> None:
    assert humanize_delta(seconds) == text


def test_redact() -> None:
    assert redact("eyJhbGciOiJSUzI1NiJ9.payload.sig") == "eyJhbGci…"
    assert redact("short") == "…"


def test_jwt_module_imports_no_google_auth() -> None:
    code = (
        "import sys\n"
        "from cloudrun_grpc_cli.core.auth.jwt import decode_jwt\n"
        "import cloudrun_grpc_cli.core.auth\n"
        "bad = [m for m in sys.modules if m.startswith(('google.auth', 'google.oauth2', "
        "'typer', 'rich'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(deadline=None, max_examples=60)
@given(
    header=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
    claims=st.dictionaries(st.text(max_size=10), json_values, max_size=6),
    sig=st.binary(max_size=64),
)
def test_decode_roundtrip(header: dict[str, object], claims: dict[str, object], sig: bytes) -> None:
    d = decode_jwt(make(header, claims, sig))
    assert (d.header, d.claims, d.signature) == (header, claims, sig)


@settings(deadline=None, max_examples=150)
@given(st.text(max_size=80))
def test_decode_garbage_only_raises_credentials_error_without_the_token(text: str) -> None:
    # a marker keeps the secret from being a substring of the fixed wording by chance
    secret = "Zq9\u2603" + text.strip()
    try:
        decode_jwt(secret)
    except CredentialsError as e:
        if len(secret.strip()) > 8:
            assert secret.strip() not in e.message
            assert all(secret.strip() not in h for h in e.hints)
