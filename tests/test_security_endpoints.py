"""No request secret in any error (issue 10, item 1).

A careless endpoint quotes the request back in its error answer — the form or
JSON body, the Authorization header — in JSON, form-encoded, text/plain or
text/html, with 400 or 500. For every way crgrpc mints (a key file, ADC
authorized_user, impersonated_service_account and external_account, STS,
--impersonate-service-account through IAM generateIdToken, the metadata
server as a source), `token print` and `call -o full`, plain and with
--debug, must show none of the secrets planted in the credentials or sent on
the wire: client_secret, refresh_token, the JWT assertion, the subject token,
access tokens, private-key material, and ID tokens that are not JWTs.

google-auth runs for real against tests/support/issuer (the endpoints that
work) and tests/support/hostile_http (the one that quotes).
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth import minting, scrub
from tests.support.cli import Result, run, run_process
from tests.support.hostile_http import HostileHttp, answer, metadata_server, quote_back
from tests.support.issuer import (  # noqa: F401
    KEY_SA,
    TARGET_SA,
    USER_CLIENT_ID,
    USER_EMAIL,
    Issuer,
    issuer_fixture,
    private_key_pem,
)
from tests.support.servers import echo_server

AUD = "https://svc-abc-uc.a.run.app"
GA = "GOOGLE_APPLICATION_CREDENTIALS"
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "text/plain", "text/html"]
SOURCES = [
    "key-file",
    "adc-authorized-user",
    "adc-impersonated",
    "impersonate-adc-impersonated",
    "adc-external-sts",
    "adc-external-iam",
    "impersonate-key-file",
    "impersonate-metadata",
]
FINAL_SA = "final@test-project.iam.gserviceaccount.com"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    """Each test proves its own case: nothing remembered by an earlier one helps it;
    and no later test inherits a metadata server found on a port it reuses."""
    scrub.forget_all()
    yield
    scrub.forget_all()
    minting._probed.clear()


def _plant(kind: str) -> str:
    return f"{kind}-{secrets.token_urlsafe(18)}"


@dataclass
class Case:
    argv: list[str]  # the source's flags for `token print AUD ...`
    prefix: str  # how the error line starts
    secrets: list[str] = field(default_factory=list)


def _forms(secret: str) -> set[str]:
    return {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(json.dumps(secret)[1:-1])[1:-1],
    }


def leaks(text: str, planted: list[str]) -> list[str]:
    """The planted secrets of which any 12 consecutive characters show in text."""
    flat = ANSI.sub("", text)
    found = []
    for secret in planted:
        for form in _forms(secret):
            n = min(12, len(form))
            if any(form[i : i + n] in flat for i in range(len(form) - n + 1)):
                found.append(secret[:40])
                break
    return found


def _pem_lines(name: str) -> list[str]:
    return [ln for ln in private_key_pem(name).decode().splitlines() if "-----" not in ln]


def _user_info(issuer: Issuer, token_uri: str) -> tuple[dict[str, object], list[str]]:
    """An authorized_user the issuer knows, with planted client_secret and refresh_token."""
    client_secret = "GOCSPX-" + _plant("PlantedClientSecret")
    refresh = "1//0" + _plant("PlantedRefreshToken")
    issuer.refresh_tokens[refresh] = (USER_CLIENT_ID, client_secret, USER_EMAIL)
    info = {
        "type": "authorized_user",
        "client_id": USER_CLIENT_ID,
        "client_secret": client_secret,
        "refresh_token": refresh,
        "token_uri": token_uri,
    }
    return info, [client_secret, refresh]


def build_case(
    source: str, issuer: Issuer, hostile: HostileHttp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Case:
    """Credentials for `source` whose one quoting endpoint is `hostile`."""
    adc = tmp_path / "adc.json"
    if source in ("key-file", "impersonate-key-file"):
        key = issuer.write_service_account_key(tmp_path / "sa.json")
        planted = _pem_lines("sa")
        if source == "key-file":
            info = json.loads(key.read_text())
            info["token_uri"] = hostile.url + "/token"
            key.write_text(json.dumps(info))
            return Case(["--key-file", str(key)], f"error: --key-file {key}: could not mint an ID token: ", planted)
        return Case(
            ["--key-file", str(key), "--impersonate-service-account", TARGET_SA, "--iam-endpoint", hostile.url],
            f"error: generateIdToken for {TARGET_SA} failed: HTTP ",
            planted,
        )
    if source == "adc-authorized-user":
        info, planted = _user_info(issuer, hostile.url + "/token")
        adc.write_text(json.dumps(info))
        monkeypatch.setenv(GA, str(adc))
        return Case([], f"error: {GA} {adc}: could not mint an ID token: ", planted)
    if source in ("adc-impersonated", "impersonate-adc-impersonated"):
        src, planted = _user_info(issuer, issuer.token_uri)
        issuer.write_impersonated_adc(adc, source=src)
        info = json.loads(adc.read_text())
        info["service_account_impersonation_url"] = (
            f"{hostile.url}/v1/projects/-/serviceAccounts/{TARGET_SA}:generateAccessToken"
        )
        adc.write_text(json.dumps(info))
        monkeypatch.setenv(GA, str(adc))
        if source == "adc-impersonated":  # generateIdToken as the ADC's source user
            return Case([], f"error: generateIdToken for {TARGET_SA} failed: HTTP ", planted)
        # the ADC as the source of --impersonate-service-account: google-auth's
        # generateAccessToken for TARGET_SA meets the quoting endpoint
        return Case(
            ["--impersonate-service-account", FINAL_SA, "--iam-endpoint", issuer.url],
            f"error: {GA} {adc}: could not get an access token to impersonate {FINAL_SA}: ",
            planted,
        )
    if source in ("adc-external-sts", "adc-external-iam"):
        subject = _plant("PlantedSubjectToken")
        issuer.write_external_account(adc, tmp_path / "oidc-token", subject_token=subject)
        info = json.loads(adc.read_text())
        if source == "adc-external-sts":
            info["token_url"] = hostile.url + "/v1/token"
            prefix = f"error: {GA} {adc} (STS exchange): could not get an access token to impersonate {TARGET_SA}: "
        else:
            info["service_account_impersonation_url"] = (
                f"{hostile.url}/v1/projects/-/serviceAccounts/{TARGET_SA}:generateAccessToken"
            )
            prefix = f"error: generateIdToken for {TARGET_SA} failed: HTTP "
        adc.write_text(json.dumps(info))
        monkeypatch.setenv(GA, str(adc))
        return Case([], prefix, [subject])
    assert source == "impersonate-metadata"
    monkeypatch.setenv("GCE_METADATA_HOST", issuer.host)
    monkeypatch.setenv("GCE_METADATA_IP", issuer.host)
    return Case(
        ["--impersonate-service-account", TARGET_SA, "--iam-endpoint", hostile.url],
        f"error: generateIdToken for {TARGET_SA} failed: HTTP ",
    )


def wire_secrets(issuer: Issuer, hostile: HostileHttp) -> list[str]:
    """What went over the wire and must not come back: access tokens, ID tokens, assertions."""
    out = list(issuer.access_tokens) + list(issuer.minted)
    for req in [*issuer.requests, *hostile.requests]:
        fields = dict(urllib.parse.parse_qsl(req.body.decode(errors="replace")))
        out += [fields[k] for k in ("assertion", "subject_token", "refresh_token", "client_secret") if k in fields]
        auth = req.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            out.append(auth[7:])
    return [s for s in out if len(s) >= 12]


def check(r: Result, case: Case, issuer: Issuer, hostile: HostileHttp, *, debug: bool) -> None:
    planted = case.secrets + wire_secrets(issuer, hostile)
    assert r.code == 3, r
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r
    assert errors[0].startswith(case.prefix), r
    assert "internal error" not in r.stderr
    assert ("Traceback (most recent call last)" in r.stderr) is debug, r
    assert not leaks(r.stdout, planted), f"stdout leaks {leaks(r.stdout, planted)}: {r}"
    assert not leaks(r.stderr, planted), f"stderr leaks {leaks(r.stderr, planted)}: {r.stderr}"
    assert hostile.requests, "the quoting endpoint was never asked"


# Every content type with 400; two with 500, which google-auth retries for 3 s at token endpoints.
ANSWERS = [(400, c) for c in CONTENT_TYPES] + [(500, "text/html"), (500, "application/x-www-form-urlencoded")]


@pytest.mark.parametrize(("status", "content_type"), ANSWERS, ids=[f"{s}-{c}" for s, c in ANSWERS])
@pytest.mark.parametrize("source", SOURCES)
def test_quoted_request_secrets_never_printed_by_token_print(
    source: str, content_type: str, status: int, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HostileHttp(quote_back(status, content_type)) as hostile:
        case = build_case(source, issuer, hostile, tmp_path, monkeypatch)
        r = run("token", "print", AUD, *case.argv, "--debug")
        check(r, case, issuer, hostile, debug=True)
        if status == 500:
            return  # google-auth retries a 500 for 3 s: the plain run's line is shown with 400
        # The error line without --debug is the same line.
        plain = run("token", "print", AUD, *case.argv)
    check(plain, case, issuer, hostile, debug=False)
    assert [ln for ln in plain.stderr.splitlines() if ln.startswith("error:")] == [
        ln for ln in r.stderr.splitlines() if ln.startswith("error:")
    ]


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("source", SOURCES)
def test_quoted_request_secrets_never_printed_by_call_full(
    source: str, status: int, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with echo_server() as echo, HostileHttp(quote_back(status, "application/json")) as hostile:
        case = build_case(source, issuer, hostile, tmp_path, monkeypatch)
        argv = ["call", "--plaintext", echo.address, "echo.EchoServer/SayHello", "-d", '{"name":"x"}',
                "--audience", AUD, "--auth", *case.argv, "-o", "full"]
        for debug in (False, True) if status == 400 else (True,):
            r = run(*argv, *(["--debug", "-v"] if debug else []))
            check(r, case, issuer, hostile, debug=debug)


def test_quoted_request_secrets_never_printed_by_a_real_process(issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A process: stderr as a user sees it, gRPC and Python logging included.
    with HostileHttp(quote_back(400, "text/html")) as hostile:
        case = build_case("adc-authorized-user", issuer, hostile, tmp_path, monkeypatch)
        r = run_process("token", "print", AUD, "--debug")
    check(r, case, issuer, hostile, debug=True)


def test_authorized_user_quoted_in_full_is_cut_to_8_characters(issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What the user sees instead: the keys, and each secret's first 8 characters.
    with HostileHttp(quote_back(400, "application/x-www-form-urlencoded")) as hostile:
        case = build_case("adc-authorized-user", issuer, hostile, tmp_path, monkeypatch)
        r = run("token", "print", AUD)
        url = hostile.url
    client_secret, refresh = case.secrets
    assert r.code == 3, r
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert line == (
        f"{case.prefix}{url}/token answered 400 application/x-www-form-urlencoded: "
        f"error=invalid_request&grant_type=refresh_token&client_id={USER_CLIENT_ID}"
        f"&client_secret={client_secret[:8]}…&refresh_token={urllib.parse.quote(refresh, safe='')[:8]}…&authorization="
    )


# --- ID tokens that are not JWTs, from every kind of endpoint --------------------------------


NON_JWT = "PlantedNonJwtIdToken-" + secrets.token_urlsafe(24)


@pytest.mark.parametrize(
    "source",
    ["key-file", "adc-authorized-user", "impersonate-key-file", "metadata"],
)
def test_a_non_jwt_id_token_is_never_printed_whole(
    source: str, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if source == "metadata":
        behaviour = metadata_server(answer(200, "text/plain", NON_JWT))
    elif source == "impersonate-key-file":
        behaviour = answer(200, "application/json", {"token": NON_JWT})
    else:
        behaviour = answer(200, "application/json", {"access_token": "ya29." + NON_JWT, "id_token": NON_JWT, "expires_in": 3600})
    cut = f"'{NON_JWT[:8]}…'"
    not_a_jwt = f"the token minted is not a JWT: {cut} has 1 dot-separated part, not 3"
    with HostileHttp(behaviour) as hostile:
        if source == "metadata":
            monkeypatch.setenv("GCE_METADATA_HOST", hostile.host)
            monkeypatch.setenv("GCE_METADATA_IP", hostile.host)
            argv: list[str] = []
            planted = [NON_JWT]
            expected = (
                f"error: metadata server: could not mint an ID token: {hostile.url}"
                "/computeMetadata/v1/instance/service-accounts/default/identity "
                "answered 200 text/plain, not an ID token"
            )
        else:
            case = build_case(source, issuer, hostile, tmp_path, monkeypatch)
            argv, planted = case.argv, [*case.secrets, NON_JWT]
            expected = {
                "key-file": f"{case.prefix}{hostile.url}/token answered 200 application/json, "
                f"but Wrong number of segments in token: b{cut}",
                "adc-authorized-user": "error: ADC authorized_user (gcloud user; aud is the OAuth client, "
                f"not chosen): {not_a_jwt}",
                "impersonate-key-file": f"error: impersonating {TARGET_SA} (source: service-account key "
                f"{''.join(argv[1:2])}): {not_a_jwt}",
            }[source]
        for extra in ([], ["--debug"]):
            r = run("token", "print", AUD, *argv, *extra)
            assert (r.code, r.stdout) == (3, ""), r
            assert [ln for ln in r.stderr.splitlines() if ln.startswith("error:")] == [expected], r
            assert ("Traceback (most recent call last)" in r.stderr) == bool(extra), r
            assert not leaks(r.stderr, planted + wire_secrets(issuer, hostile)), r.stderr


# --- the rule itself ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("client_secret=GOCSPX-abcdefghijkl&x=1", "client_secret=GOCSPX-a…&x=1"),
        ('{"refresh_token": "1//0abcdefghijklmnop"}', '{"refresh_token": "1//0abcd…"}'),
        ("{'assertion': 'eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.c2ln'}", "{'assertion': 'eyJhbGci…'}"),
        ("{'id_token': b'not-a-jwt-at-all-0123'}", "{'id_token': b'not-a-jw…'}"),
        ('"{\\"subject_token\\": \\"subject-0123456789\\"}"', '"{\\"subject_token\\": \\"subject-…\\"}"'),
        ("Authorization: Bearer ya29.a0AfH6SMBx-0123456789", "Authorization: Bearer ya29.a0A…"),
        ("got eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.c2lnbmF0dXJl back", "got eyJhbGci… back"),
        ('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\n-----END PRIVATE KEY-----\\n"}', '{"private_key": "-----BEG…"}'),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END RSA PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----…-----END RSA PRIVATE KEY-----"),
        ("refresh_token=short", "refresh_token=…"),
        # Prose and what is already cut stay as they are.
        ("could not mint an ID token: invalid_grant: Invalid JWT Signature.", "could not mint an ID token: invalid_grant: Invalid JWT Signature."),
        ("'ya29.tes…' is an OAuth access token (ya29.…), not an ID token", "'ya29.tes…' is an OAuth access token (ya29.…), not an ID token"),
        ("--token-file /x/token: No such file", "--token-file /x/token: No such file"),
        ("bad credentials: Bearer <redacted>", "bad credentials: Bearer <redacted>"),
    ],
)
def test_scrub_rule(text: str, expected: str) -> None:
    assert scrub.scrub(text) == expected
    assert scrub.scrub(expected) == expected  # twice changes nothing


def test_scrub_cuts_remembered_secrets_in_any_encoding() -> None:
    secret = "opaque/secret+value=with?chars"
    scrub.remember(secret)
    for form in _forms(secret):
        assert scrub.scrub(f"x {form} y") == f"x {form[:8]}… y"
