"""`crgrpc token print|show|decode [--verify]`: exact output and exit codes.

Tokens are minted by google-auth for real against the local issuer; --verify
fetches the issuer's certs (URL, PEM-map file, JWKS file).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.jwt import decode_jwt
from tests.support.cli import run
from tests.support.issuer import KEY_SA, Issuer, issuer_fixture, sign  # noqa: F401

AUD = "https://svc-abc-uc.a.run.app"
TRIED = "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server"
NO_CREDENTIALS = (
    "error: no Google credentials found\n"
    f"hint: tried: {TRIED}\n"
    "hint: pass --key-file or --impersonate-service-account, or run "
    "'gcloud auth application-default login'\n"
)


@pytest.fixture
def key(issuer: Issuer, tmp_path: Path) -> Path:
    return issuer.write_service_account_key(tmp_path / "sa.json")


def squash(text: str) -> str:
    return "".join(text.split())


def rows(text: str) -> list[list[str]]:
    """The non-blank lines of a Rich table, split into words."""
    return [ln.split() for ln in text.splitlines() if ln.strip()]


def utc(timestamp: int) -> str:
    """A claim's time as crgrpc prints it, "2026-01-02 03:04:05 UTC" (written here, not
    taken from crgrpc: the relative part beside it is spelled out in each test)."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- token print ------------------------------------------------------------------------------


def test_print_is_the_raw_token_and_a_newline(issuer: Issuer, key: Path) -> None:
    r = run("token", "print", AUD, "--key-file", str(key))
    assert (r.code, r.stderr) == (0, "")
    assert r.stdout == issuer.minted[-1] + "\n"
    claims = decode_jwt(r.stdout).claims
    assert (claims["aud"], claims["email"]) == (AUD, KEY_SA)


def test_print_audience_from_target_host_only(issuer: Issuer, key: Path) -> None:
    r = run("token", "print", f"{AUD}:8443/echo.EchoServer/SayHello", "--key-file", str(key))
    assert r.code == 0
    assert decode_jwt(r.stdout).claims["aud"] == AUD


def test_print_with_audience_flag(issuer: Issuer, key: Path) -> None:
    r = run("token", "print", "--audience", "https://custom.example.com", "--key-file", str(key))
    assert r.code == 0
    assert decode_jwt(r.stdout).claims["aud"] == "https://custom.example.com"


def test_print_twice_uses_the_cache(issuer: Issuer, key: Path) -> None:
    first = run("token", "print", AUD, "--key-file", str(key))
    second = run("token", "print", AUD, "--key-file", str(key))
    assert first.stdout == second.stdout
    assert issuer.count() == 1


def test_print_without_target_or_audience_is_a_usage_error(key: Path) -> None:
    r = run("token", "print", "--key-file", str(key))
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        "error: give a TARGET or --audience\n"
        "hint: crgrpc token print https://SERVICE.run.app, or --audience AUD\n"
    )


def test_show_without_target_or_audience_is_a_usage_error() -> None:
    assert run("token", "show").code == 2


def test_print_nothing_found(issuer: Issuer) -> None:
    r = run("token", "print", AUD)
    assert (r.code, r.stdout, r.stderr) == (3, "", NO_CREDENTIALS)


def test_print_source_fails_with_google_auths_reason(issuer: Issuer, key: Path) -> None:
    issuer.failures["/token"] = (
        400,
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )
    r = run("token", "print", AUD, "--key-file", str(key))
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        f"error: --key-file {key}: could not mint an ID token: "
        "invalid_grant: Invalid JWT Signature.\n"
        "hint: check that the key is still active (gcloud iam service-accounts keys list)\n"
        "hint: tried: --key-file\n"
    )


def test_print_adc_fails_lists_what_was_tried(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(issuer.write_service_account_key(tmp_path / "a.json"))
    )
    issuer.failures["/token"] = (400, {"error": "invalid_grant", "error_description": "nope"})
    r = run("token", "print", AUD)
    assert r.code == 3
    assert r.stderr.splitlines()[-1] == "hint: tried: GOOGLE_APPLICATION_CREDENTIALS"
    assert "invalid_grant: nope" in r.stderr.splitlines()[0]


def test_print_bad_static_token(issuer: Issuer) -> None:
    expired = issuer.id_token(AUD, lifetime=-120)
    r = run("token", "print", AUD, "--token", expired)
    assert r.code == 3
    assert r.stderr.startswith("error: --token: the token expired 2m ago (")


# --- token show -------------------------------------------------------------------------------


def test_show_json_fields(issuer: Issuer, key: Path) -> None:
    r = run("token", "show", AUD, "--key-file", str(key), "-o", "json")
    assert (r.code, r.stderr) == (0, "")
    doc = r.json
    claims = decode_jwt(issuer.minted[-1]).claims
    assert 3590 <= doc.pop("expires_in") <= 3600
    assert doc == {
        "source": f"service-account key {key}",
        "email": KEY_SA,
        "audience": AUD,
        "audience_bound": True,
        "issuer": "https://accounts.google.com",
        "subject": "1234567890",
        "issued_at": claims["iat"],
        "expires_at": claims["exp"],
        "claims": claims,
    }
    assert issuer.minted[-1] not in r.stdout


def test_show_pretty(issuer: Issuer, key: Path) -> None:
    r = run("token", "show", "--audience", AUD, "--key-file", str(key), "-o", "pretty")
    assert (r.code, r.stderr) == (0, "")
    iat = decode_jwt(issuer.minted[-1]).claims["iat"]
    # Rich folds the long key path at width 80: compare without whitespace. The run
    # may cross a second boundary after minting: "issued … (0s ago)" up to "(2s ago)".
    assert squash(r.stdout) in {
        squash(
            f"source service-account key {key}"
            f"email {KEY_SA}"
            f"audience {AUD}"
            "issuer https://accounts.google.com"
            f"issued {utc(iat)} {ago}"
            "expiry expires in 59m"
        )
        for ago in ("(0s ago)", "(1s ago)", "(2s ago)")
    }
    assert rows(r.stdout)[-1] == ["expiry", "expires", "in", "59m"]
    assert issuer.minted[-1] not in r.stdout


def test_show_gcloud_user_says_the_audience_is_not_chosen(
    issuer: Issuer, isolated_env: Path
) -> None:
    (isolated_env / "gcloud").mkdir(exist_ok=True)
    issuer.write_authorized_user(isolated_env / "gcloud" / "application_default_credentials.json")
    r = run("token", "show", AUD, "-o", "pretty")
    assert r.code == 0
    assert "(a gcloud user's token: its audience is the OAuth client, not chosen)" in " ".join(
        r.stdout.split()
    )


def test_show_rejects_full_output(key: Path) -> None:
    r = run("token", "show", AUD, "--key-file", str(key), "-o", "full")
    assert r.code == 2
    assert r.stderr == (
        "error: -o full is not available for this command\nhint: use one of: pretty, json\n"
    )


# --- token decode -----------------------------------------------------------------------------


def _decoded(token: str, now: float) -> dict[str, object]:
    d = decode_jwt(token)
    exp = d.claims["exp"]
    return {
        "header": d.header,
        "claims": d.claims,
        "expired": exp <= now,
        "expires_in": int(exp - now),
    }


@pytest.mark.parametrize("how", ["arg", "dash", "pipe", "bearer"])
def test_decode_json(issuer: Issuer, how: str) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    args, stdin = {
        "arg": ([token], ""),
        "dash": (["-"], token + "\n"),
        "pipe": ([], token + "\n"),
        "bearer": (["Bearer " + token], ""),
    }[how]
    r = run("token", "decode", *args, stdin=stdin)
    assert (r.code, r.stderr) == (0, "")
    doc = r.json
    expected = _decoded(token, time.time())
    assert doc.pop("expires_in") in (expected.pop("expires_in"), 3599, 3600)
    assert doc == expected
    assert doc["header"] == {"typ": "JWT", "alg": "RS256", "kid": "issuer-key-1"}
    assert doc["expired"] is False


def test_decode_without_token_on_a_terminal_is_a_usage_error() -> None:
    r = run("token", "decode", stdin_tty=True)
    assert (r.code, r.stderr) == (
        2,
        "error: give a TOKEN, or pipe one in\nhint: crgrpc token print TARGET | crgrpc token decode\n",
    )


def test_decode_pretty_humanises_times(issuer: Issuer) -> None:
    # issued 90 s ago, expiring 3600 s from now (less the part of this second gone):
    # "(1m ago)" and "(expires in 59m)" however the run falls across second boundaries
    now = int(time.time())
    token = issuer.id_token(AUD, email=KEY_SA, now=now - 90, lifetime=3690)
    claims = decode_jwt(token).claims
    assert (claims["iat"], claims["exp"]) == (now - 90, now + 3600)
    r = run("token", "decode", token, "-o", "pretty")
    assert (r.code, r.stderr) == (0, "")
    assert rows(r.stdout) == [
        ["header"],
        ["typ", "JWT"],
        ["alg", "RS256"],
        ["kid", "issuer-key-1"],
        ["claims"],
        ["iss", "https://accounts.google.com"],
        ["aud", AUD],
        ["azp", KEY_SA],
        ["sub", str(claims["sub"])],
        ["iat", *utc(now - 90).split(), "(1m", "ago)"],
        ["exp", *utc(now + 3600).split(), "(expires", "in", "59m)"],
        ["email", KEY_SA],
        ["email_verified", "True"],
        ["expires", "in", "59m"],
        ["signature", "not", "checked:", "--verify", "checks", "it"],
    ]


def test_decode_pretty_prints_fixed_times_as_utc(issuer: Issuer) -> None:
    """Fixed claims, long expired: the stamps are spelled out in full."""
    token = issuer.id_token(AUD, email=KEY_SA, now=1704164645, lifetime=3600)
    r = run("token", "decode", token, "-o", "pretty")
    assert (r.code, r.stderr) == (0, "")
    stamps = {row[0]: row[1:4] for row in rows(r.stdout) if row[0] in ("iat", "exp")}
    assert stamps == {
        "iat": ["2024-01-02", "03:04:05", "UTC"],
        "exp": ["2024-01-02", "04:04:05", "UTC"],
    }
    assert rows(r.stdout)[10][4] == "(EXPIRED"


def test_decode_expired_says_so_and_exits_0(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA, lifetime=-3 * 3600 - 120)
    r = run("token", "decode", token, "-o", "pretty")
    assert (r.code, r.stderr) == (0, "")
    exp_row = next(row for row in rows(r.stdout) if row[0] == "exp")
    assert exp_row[-4:] == ["(EXPIRED", "3h", "2m", "ago)"]
    assert ["EXPIRED", "3h", "2m", "ago"] in rows(r.stdout)
    j = run("token", "decode", token)
    assert j.code == 0
    assert j.json["expired"] is True
    assert j.json["expires_in"] in (-3 * 3600 - 120, -3 * 3600 - 121)


def test_decode_not_a_jwt() -> None:
    r = run("token", "decode", "not-a-token")
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        "error: not a JWT: 'not-a-to…' has 1 dot-separated part, not 3\n"
        "hint: an ID token is a JWT: three base64url parts separated by dots, starting with eyJ\n"
        "hint: -H 'authorization: Bearer …' sends an opaque token as is\n"
    )


def test_decode_garbage_in_three_parts() -> None:
    r = run("token", "decode", "abc.def.ghi")
    assert r.code == 3
    assert r.stderr.startswith(
        "error: not a JWT: the header of 'abc.def.…' is not base64url-encoded JSON\n"
    )


def test_decode_access_token() -> None:
    r = run("token", "decode", "ya29.a0AfH6SMBx-not-an-id-token")
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        "error: this is an OAuth access token (ya29.…), not an ID token: it cannot be decoded\n"
        "hint: mint an ID token: crgrpc token print TARGET\n"
    )


def test_decode_empty_stdin() -> None:
    r = run("token", "decode", "-", stdin="\n")
    assert (r.code, r.stderr) == (3, "error: no token given: the input is empty\n")


def test_decode_needs_no_google_auth(issuer: Issuer) -> None:
    """A process: decode without --verify loads neither google.auth nor grpc."""
    import subprocess
    import sys

    token = issuer.id_token(AUD, email=KEY_SA)
    code = (
        "import sys; from cloudrun_grpc_cli.cli.main import main; "
        f"rc = main(['token', 'decode', {token!r}]); "
        "print(rc, 'google.auth' in sys.modules, 'grpc' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.stderr.strip().splitlines()[-1] == "0 False False"


# --- token decode --verify --------------------------------------------------------------------


def _checks(r_json: dict[str, object]) -> list[tuple[str, bool, str]]:
    ver = r_json["verification"]
    assert isinstance(ver, dict)
    return [(c["check"], c["ok"], c["detail"]) for c in ver["checks"]]


@pytest.fixture
def certs_files(issuer: Issuer, tmp_path: Path) -> dict[str, str]:
    pem = tmp_path / "certs.json"
    pem.write_text(json.dumps(issuer.certs_pem_map()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(issuer.jwks()))
    return {"url": issuer.certs_url, "jwks-url": issuer.jwks_url, "pem": str(pem), "jwks": str(jwks)}


@pytest.mark.parametrize("where", ["url", "jwks-url", "pem", "jwks"])
def test_verify_ok(issuer: Issuer, certs_files: dict[str, str], where: str) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run("token", "decode", token, "--verify", "--certs", certs_files[where], "--audience", AUD)
    assert (r.code, r.stderr) == (0, "")
    assert _checks(r.json) == [
        ("signature", True, "RS256, kid issuer-key-1"),
        ("issuer", True, "https://accounts.google.com"),
        ("audience", True, AUD),
        ("expiry", True, "expires in 59m"),
    ]
    assert r.json["verification"]["ok"] is True


def test_verify_pretty_lists_each_check(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run(
        "token", "decode", token, "--verify", "--certs", issuer.certs_url,
        "--audience", AUD, "-o", "pretty",
    )
    assert (r.code, r.stderr) == (0, "")
    assert rows(r.stdout)[-4:] == [
        ["✓", "signature", "RS256,", "kid", "issuer-key-1"],
        ["✓", "issuer", "https://accounts.google.com"],
        ["✓", "audience", AUD],
        ["✓", "expiry", "expires", "in", "59m"],
    ]


def test_verify_without_audience_says_aud_not_checked(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run("token", "decode", token, "--verify", "--certs", issuer.certs_url)
    assert r.code == 0
    assert ("audience", None, "not checked: no --audience") in _checks(r.json)


def test_verify_certs_from_env(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRGRPC_CERTS_URL", issuer.certs_url)
    r = run("token", "decode", issuer.id_token(AUD), "--verify")
    assert r.code == 0
    assert issuer.count("/oauth2/v1/certs") == 1


def test_verify_wrong_audience(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run(
        "token", "decode", token, "--verify", "--certs", issuer.certs_url,
        "--audience", "https://other.run.app",
    )
    assert r.code == 3
    assert r.json["verification"]["ok"] is False
    assert ("audience", False, f"aud is '{AUD}', not 'https://other.run.app'") in _checks(r.json)
    assert r.stderr == (
        f"error: token verification failed: audience: aud is '{AUD}', "
        "not 'https://other.run.app'\n"
    )


def test_verify_expired(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA, lifetime=-600)
    r = run("token", "decode", token, "--verify", "--certs", issuer.certs_url)
    assert r.code == 3
    assert ("expiry", False, "expired 10m ago") in _checks(r.json)
    assert r.stderr == "error: token verification failed: expiry: expired 10m ago\n"


def test_verify_within_clock_skew_passes(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA, lifetime=-3)
    r = run("token", "decode", token, "--verify", "--certs", issuer.certs_url)
    assert r.code == 0
    assert ("expiry", True, "within the clock skew") in _checks(r.json)


def test_verify_bad_signature(issuer: Issuer) -> None:
    now = int(time.time())
    forged = sign(
        {"iss": "https://accounts.google.com", "aud": AUD, "iat": now, "exp": now + 3600},
        key_name="someone-else",
        kid="issuer-key-1",
    )
    r = run("token", "decode", forged, "--verify", "--certs", issuer.certs_url, "--audience", AUD)
    assert r.code == 3
    assert _checks(r.json)[0] == (
        "signature", False, "signature does not match the key with kid issuer-key-1"
    )
    assert r.stderr == (
        "error: token verification failed: signature: signature does not match the key "
        "with kid issuer-key-1\n"
    )


def test_verify_unknown_kid(issuer: Issuer) -> None:
    now = int(time.time())
    token = sign(
        {"iss": "https://accounts.google.com", "aud": AUD, "iat": now, "exp": now + 3600},
        kid="rotated-away",
    )
    r = run("token", "decode", token, "--verify", "--certs", issuer.certs_url)
    assert r.code == 3
    assert _checks(r.json)[0] == ("signature", False, "no certificate with kid rotated-away")


def test_verify_wrong_issuer(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, extra={"iss": "https://evil.example.com"})
    r = run("token", "decode", token, "--verify", "--certs", issuer.certs_url)
    assert r.code == 3
    assert (
        "issuer",
        False,
        "'https://evil.example.com' is not https://accounts.google.com or accounts.google.com",
    ) in _checks(r.json)


def test_verify_certs_fetch_fails(issuer: Issuer) -> None:
    token = issuer.id_token(AUD)
    url = f"{issuer.url}/missing"
    r = run("token", "decode", token, "--verify", "--certs", url)
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        f"error: could not fetch certs from {url}: HTTP 404\n"
        "hint: give --certs FILE (a PEM map or a JWKS), or another --certs URL\n"
    )


def test_verify_certs_unreachable(issuer: Issuer) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{s.getsockname()[1]}/certs"
    s.close()
    r = run("token", "decode", issuer.id_token(AUD), "--verify", "--certs", url)
    assert (r.code, r.stdout) == (3, "")
    assert r.stderr == (
        f"error: could not fetch certs from {url}: connection refused\n"
        "hint: give --certs FILE (a PEM map or a JWKS), or another --certs URL\n"
    )


def test_verify_certs_file_missing(issuer: Issuer, tmp_path: Path) -> None:
    r = run("token", "decode", issuer.id_token(AUD), "--verify", "--certs", str(tmp_path / "no"))
    assert r.code == 3
    assert r.stderr == f"error: cannot read certs file {tmp_path / 'no'}: No such file or directory\n"


def test_verify_not_a_jwt(issuer: Issuer) -> None:
    r = run("token", "decode", "x.y", "--verify", "--certs", issuer.certs_url)
    assert r.code == 3
    assert issuer.count() == 0
