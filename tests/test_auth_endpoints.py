"""Token endpoints that misbehave (issue 10, item 2).

A 200 of HTML, JSON without the token, a 64 MiB body (with and without a
Content-Length), a connection that hangs, an answer trickled a byte at a
time, a refused connection: at a key's token_uri, an authorized_user's
token_uri, STS, IAM generateIdToken and the metadata server. Each gives a
CredentialsError (exit 3) within the bound — 10 s to connect, the whole mint
within AuthSettings.mint_timeout (30 s; 1.5 s here), answers cut at 1 MiB —
in one line naming the endpoint (its URL without the query) and what was
wrong, with a hint; never an internal error.

google-auth runs for real against tests/support/issuer (the endpoints that
work) and tests/support/hostile_http (the one that misbehaves).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth import build_provider, minting
from cloudrun_grpc_cli.core.auth.http import MAX_ANSWER_BYTES, BoundedSession, HttpBounds, endpoint
from cloudrun_grpc_cli.errors import CredentialsError, ExitCode
from cloudrun_grpc_cli.settings import AuthSettings
from tests.support.cli import run
from tests.support.hostile import free_port
from tests.support.hostile_http import (
    Behaviour,
    HostileHttp,
    answer,
    hang,
    huge,
    metadata_server,
    trickle,
)
from tests.support.issuer import TARGET_SA, Issuer, issuer_fixture  # noqa: F401
from tests.support.servers import echo_server

AUD = "https://svc-abc-uc.a.run.app"
GA = "GOOGLE_APPLICATION_CREDENTIALS"
BOUND = 1.5  # mint_timeout in the core-level tests
SLACK = 2.5  # what a loaded 2-core machine may add to it
NO_ID_TOKEN = {"access_token": "ya29.no-id-token-here", "expires_in": 3600, "token_type": "Bearer"}
TOKEN_URI_HINT = "the credentials file's token_uri names this endpoint (Google's is https://oauth2.googleapis.com/token)"
SOURCE_HINT = "the credentials file names this endpoint (token_uri, token_url or service_account_impersonation_url)"
IAM_HINT = "set the endpoint with --iam-endpoint"
METADATA_HINT = "GCE_METADATA_HOST names the metadata server; unset it to use the real one"

BEHAVIOURS: dict[str, Callable[[], Behaviour]] = {
    "html-200": lambda: answer(200, "text/html", "<html><body>Sign in to continue</body></html>"),
    "json-without-token": lambda: answer(200, "application/json", NO_ID_TOKEN),
    "json-without-access-token": lambda: answer(200, "application/json", {"token_type": "Bearer"}),
    "64-MiB": lambda: huge(64 << 20),
    "64-MiB-no-length": lambda: huge(64 << 20, declare_length=False),
    "hang": hang,
    "trickle": lambda: trickle(0.05),
}


@pytest.fixture(autouse=True)
def _forget_metadata_probes() -> Iterator[None]:
    """No later test inherits a metadata server found on a port it reuses."""
    yield
    minting._probed.clear()


@dataclass
class Setup:
    auth: AuthSettings
    prefix: str  # the message up to the endpoint
    url: str  # the endpoint the message names
    hint: str
    missing: str  # the field "json-without-token" lacks


def _key(issuer: Issuer, tmp_path: Path, token_uri: str | None = None) -> Path:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    if token_uri:
        info = json.loads(key.read_text())
        info["token_uri"] = token_uri
        key.write_text(json.dumps(info))
    return key


def setup_source(source: str, base: str, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """Credentials for `source` whose one misbehaving endpoint is at `base`."""
    adc = tmp_path / "adc.json"
    if source == "key-file":
        key = _key(issuer, tmp_path, base + "/token?x=1")  # the query is not named
        return Setup(AuthSettings(key_file=key), f"--key-file {key}: could not mint an ID token: ", base + "/token", TOKEN_URI_HINT, "id_token")
    if source == "adc-authorized-user":
        info = issuer.authorized_user_info()
        info["token_uri"] = base + "/token"
        adc.write_text(json.dumps(info))
        monkeypatch.setenv(GA, str(adc))
        return Setup(AuthSettings(), f"{GA} {adc}: could not mint an ID token: ", base + "/token", TOKEN_URI_HINT, "id_token")
    if source == "adc-external-sts":
        issuer.write_external_account(adc, tmp_path / "oidc-token")
        info = json.loads(adc.read_text())
        info["token_url"] = base + "/v1/token"
        adc.write_text(json.dumps(info))
        monkeypatch.setenv(GA, str(adc))
        return Setup(
            AuthSettings(),
            f"{GA} {adc} (STS exchange): could not get an access token to impersonate {TARGET_SA}: ",
            base + "/v1/token",
            SOURCE_HINT,
            "access_token",
        )
    if source == "iam-generate-id-token":
        key = _key(issuer, tmp_path)
        return Setup(
            AuthSettings(key_file=key, impersonate_service_account=TARGET_SA, iam_endpoint=base),
            f"generateIdToken for {TARGET_SA}: ",
            f"{base}/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken",
            IAM_HINT,
            "a token",
        )
    assert source == "metadata"
    host = base.removeprefix("http://")
    monkeypatch.setenv("GCE_METADATA_HOST", host)
    monkeypatch.setenv("GCE_METADATA_IP", host)
    return Setup(
        AuthSettings(),
        "metadata server: could not mint an ID token: ",
        f"{base}/computeMetadata/v1/instance/service-accounts/default/identity",
        METADATA_HINT,
        "",
    )


def expected_reason(behaviour: str, s: Setup, bound: float = BOUND) -> str:
    identity = s.url.endswith("/identity")  # the metadata server's token is text, not JSON
    return {
        "html-200": f"{s.url} answered 200 text/html, not " + ("an ID token" if identity else "JSON"),
        "json-without-token": f"{s.url} answered 200 application/json"
        + (", not an ID token" if identity else f" without {s.missing}"),
        "json-without-access-token": f"{s.url} answered 200 application/json without access_token",
        "64-MiB": f"{s.url}: answer larger than 1 MiB",
        "64-MiB-no-length": f"{s.url}: answer larger than 1 MiB",
        "hang": f"{s.url}: no answer within {bound:g} s",
        "trickle": f"{s.url}: no answer within {bound:g} s",
        "refused": f"{s.url}: connection refused",
    }[behaviour]


@contextmanager
def endpoint_doing(behaviour: str, source: str) -> Iterator[str]:
    """The base URL of an endpoint that misbehaves so (a closed port for "refused")."""
    if behaviour == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    b = BEHAVIOURS[behaviour]()
    with HostileHttp(metadata_server(b) if source == "metadata" else b) as h:
        yield h.url


SOURCES = ["key-file", "adc-authorized-user", "adc-external-sts", "iam-generate-id-token", "metadata"]
CASES = [
    (s, b)
    for s in SOURCES
    for b in [*BEHAVIOURS, "refused"]
    if not (s == "metadata" and b == "refused")  # no metadata source without a metadata server
    # STS answers access tokens, not ID tokens; the others need more than an access token
    and (b != "json-without-token" or s != "adc-external-sts")
    and (b != "json-without-access-token" or s == "adc-external-sts")
]
LOGIN_HINT = "run `gcloud auth application-default login` again (the openid scope is needed)"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("source", "behaviour"), CASES, ids=[f"{s}-{b}" for s, b in CASES])
def test_misbehaving_endpoint_is_a_credentials_error_within_the_bound(
    source: str, behaviour: str, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with endpoint_doing(behaviour, source) as base:
        s = setup_source(source, base, issuer, tmp_path, monkeypatch)
        auth = s.auth._replace(mint_timeout=BOUND, token_cache=False)
        provider, _ = build_provider(auth, AUD)
        assert provider is not None
        start = time.monotonic()
        with pytest.raises(CredentialsError) as e:
            provider.get()
        took = time.monotonic() - start
    assert e.value.exit_code == ExitCode.CREDENTIALS
    assert e.value.message == s.prefix + expected_reason(behaviour, s)
    # A gcloud user's grant without an id_token is what a refresh token without
    # the openid scope gets: that is what the hint says then.
    hint = LOGIN_HINT if (source, behaviour) == ("adc-authorized-user", "json-without-token") else s.hint
    assert e.value.hints == (hint,)
    assert took < BOUND + SLACK, took


# --- through the CLI, with the default bounds ------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", ["html-200", "json-without-token", "64-MiB", "64-MiB-no-length", "refused"])
def test_token_print_with_a_misbehaving_token_endpoint(
    behaviour: str, issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with endpoint_doing(behaviour, "key-file") as base:
        s = setup_source("key-file", base, issuer, tmp_path, monkeypatch)
        start = time.monotonic()
        r = run("token", "print", AUD, "--key-file", str(s.auth.key_file))
        took = time.monotonic() - start
    assert (r.code, r.stdout) == (3, ""), r
    assert r.stderr == (
        f"error: {s.prefix}{expected_reason(behaviour, s)}\n"
        f"hint: {TOKEN_URI_HINT}\n"
        "hint: tried: --key-file\n"
    )
    assert took < 10, took


@pytest.mark.timeout(60)
def test_call_with_a_token_endpoint_answering_html(issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with echo_server() as echo, endpoint_doing("html-200", "adc-authorized-user") as base:
        s = setup_source("adc-authorized-user", base, issuer, tmp_path, monkeypatch)
        r = run("call", "--plaintext", echo.address, "SayHello", "--audience", AUD, "--auth", "-o", "full")
    assert r.code == 3, r
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert line == f"error: {s.prefix}{expected_reason('html-200', s)}"
    assert f"hint: {TOKEN_URI_HINT}" in r.stderr.splitlines()
    assert "Traceback" not in r.stderr


# --- the transport itself --------------------------------------------------------------------


def test_bounds_defaults() -> None:
    assert HttpBounds() == HttpBounds(connect=10.0, total=30.0, max_bytes=1 << 20)
    assert MAX_ANSWER_BYTES == 1 << 20
    assert HttpBounds.within(2.0) == HttpBounds(connect=2.0, total=2.0)
    assert AuthSettings().mint_timeout == 30.0


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://oauth2.googleapis.com/token?a=b#f", "https://oauth2.googleapis.com/token"),
        ("http://user:pw@127.0.0.1:8080/v1/token?key=secret", "http://127.0.0.1:8080/v1/token"),
        ("http://[::1]:9/x", "http://[::1]:9/x"),
    ],
)
def test_endpoint_names_no_query_and_no_user_info(url: str, expected: str) -> None:
    assert endpoint(url) == expected


def test_an_answer_of_exactly_the_cap_is_read() -> None:
    body = b'{"a": "' + b"x" * (MAX_ANSWER_BYTES - 10) + b'"}'
    assert len(body) == MAX_ANSWER_BYTES - 1
    with HostileHttp(answer(200, "application/json", body)) as h:
        session = BoundedSession()
        try:
            resp = session.get(h.url + "/x")
        finally:
            session.close()
    assert resp.status_code == 200
    assert resp.content == body
    assert session.last is not None and session.last.problem is None
