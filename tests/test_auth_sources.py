"""Every token source end to end against the local issuer, with google-auth for real."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth import IdToken, build_provider
from cloudrun_grpc_cli.core.auth.minting import (
    endpoint_of_impersonation_url,
    target_from_impersonation_url,
)
from cloudrun_grpc_cli.core.auth.token import MintingProvider, StaticProvider
from cloudrun_grpc_cli.errors import CredentialsError, ExitCode, UsageError
from cloudrun_grpc_cli.settings import AuthSettings
from tests.support.issuer import (  # noqa: F401
    DEFAULT_SA,
    JWT_BEARER,
    KEY_SA,
    TARGET_SA,
    TOKEN_EXCHANGE,
    USER_CLIENT_ID,
    USER_EMAIL,
    WIF_AUDIENCE,
    Issuer,
    issuer_fixture,
    sign,
)

AUD = "https://svc-abc-uc.a.run.app"
GA = "GOOGLE_APPLICATION_CREDENTIALS"
TRIED_ALL = ["GOOGLE_APPLICATION_CREDENTIALS", "gcloud ADC file", "metadata server"]


@pytest.fixture
def gcloud_adc(isolated_env: Path) -> Path:
    """Where gcloud keeps the ADC file ($CLOUDSDK_CONFIG set by the autouse fixture)."""
    d = isolated_env / "gcloud"
    d.mkdir(exist_ok=True)
    return d / "application_default_credentials.json"


@pytest.fixture
def on_gce(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> Issuer:
    monkeypatch.setenv("GCE_METADATA_HOST", issuer.host)
    monkeypatch.setenv("GCE_METADATA_IP", issuer.host)
    return issuer


def provide(auth: AuthSettings, audience: str = AUD) -> tuple[MintingProvider, list[str]]:
    provider, tried = build_provider(auth, audience)
    assert isinstance(provider, MintingProvider)
    return provider, tried


# --- --key-file ---------------------------------------------------------------------------


def test_key_file(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    provider, tried = provide(AuthSettings(key_file=key))
    assert tried == ["--key-file"]
    assert provider.source == f"service-account key {key}"
    assert provider.audience_bound is True
    assert issuer.requests == []  # building mints nothing
    tok = provider.get()
    assert isinstance(tok, IdToken)
    assert tok.audience == AUD
    assert tok.email == KEY_SA
    assert tok.issuer == "https://accounts.google.com"
    assert tok.source == f"service-account key {key}"
    assert tok.header["alg"] == "RS256"
    assert tok.expiry is not None and 3590 < tok.expiry - time.time() <= 3600
    assert tok.value == issuer.minted[-1]
    [req] = issuer.requests
    assert (req.method, req.path) == ("POST", "/token")
    assert req.form["grant_type"] == JWT_BEARER
    assert tok.value not in repr(tok)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{nope", "--key-file {p} is not JSON (Expecting property name enclosed in double quotes)"),
        ("[1]", "--key-file {p} is not a JSON object"),
        (
            '{"type": "authorized_user"}',
            "--key-file {p} is not a service-account key (type 'authorized_user')",
        ),
        (
            '{"type": "service_account", "client_email": "a@b", "token_uri": "x"}',
            "--key-file {p} has no private_key",
        ),
    ],
)
def test_key_file_checked_before_minting(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "k.json"
    p.write_text(content)
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(key_file=p), AUD)
    assert e.value.message == message.format(p=p)
    assert e.value.exit_code == ExitCode.CREDENTIALS


def test_key_file_wrong_type_hint(tmp_path: Path) -> None:
    p = tmp_path / "k.json"
    p.write_text('{"type": "authorized_user"}')
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(key_file=p), AUD)
    assert e.value.hints == ("point GOOGLE_APPLICATION_CREDENTIALS at it to use it as ADC",)


def test_key_file_missing(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(key_file=tmp_path / "none.json"), AUD)
    assert (
        e.value.message
        == f"cannot read --key-file {tmp_path / 'none.json'}: No such file or directory"
    )


def test_key_file_broken_private_key(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    info = json.loads(key.read_text())
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    key.write_text(json.dumps(info))
    provider, _ = provide(AuthSettings(key_file=key))
    with pytest.raises(CredentialsError) as e:
        provider.get()
    assert e.value.message.startswith(f"--key-file {key}: cannot load the service-account key: ")
    assert issuer.requests == []


def test_key_file_refused_by_token_endpoint(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    issuer.failures["/token"] = (
        400,
        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
    )
    provider, _ = provide(AuthSettings(key_file=key))
    with pytest.raises(CredentialsError) as e:
        provider.get()
    assert e.value.message == (
        f"--key-file {key}: could not mint an ID token: invalid_grant: Invalid JWT Signature."
    )
    assert e.value.hints == (
        "check that the key is still active (gcloud iam service-accounts keys list)",
    )


def test_key_file_needs_an_audience(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with pytest.raises(CredentialsError, match=r"no audience to mint a token for \(--key-file\)"):
        build_provider(AuthSettings(key_file=key), "")


# --- --impersonate-service-account -----------------------------------------------------------


def test_impersonation_with_key_file_source(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    auth = AuthSettings(
        key_file=key,
        impersonate_service_account=TARGET_SA,
        include_email=True,
        iam_endpoint=issuer.url,
    )
    provider, tried = provide(auth)
    assert tried == ["--key-file", "--impersonate-service-account"]
    assert provider.source == f"impersonating {TARGET_SA} (source: service-account key {key})"
    tok = provider.get()
    assert (tok.audience, tok.email) == (AUD, TARGET_SA)
    paths = [(r.method, r.path) for r in issuer.requests]
    gen = f"/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken"
    assert paths == [("POST", "/token"), ("POST", gen)]
    token_req, gen_req = issuer.requests
    assert token_req.form["grant_type"] == JWT_BEARER  # the key's access token
    assert gen_req.json == {"audience": AUD, "includeEmail": True}
    bearer = gen_req.headers["authorization"].removeprefix("Bearer ")
    assert issuer.access_tokens[bearer] == KEY_SA


def test_impersonation_without_email(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    auth = AuthSettings(
        key_file=key, impersonate_service_account=TARGET_SA, iam_endpoint=issuer.url
    )
    tok = provide(auth)[0].get()
    assert tok.email is None
    assert issuer.last("/v1/projects").json == {"audience": AUD, "includeEmail": False}


def test_impersonation_with_adc_source(
    issuer: Issuer, gcloud_adc: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer.write_authorized_user(gcloud_adc)
    provider, _ = provide(
        AuthSettings(impersonate_service_account=TARGET_SA, iam_endpoint=issuer.url)
    )
    assert provider.source == f"impersonating {TARGET_SA} (source: ADC authorized_user)"
    assert provider.audience_bound is True
    tok = provider.get()
    assert tok.audience == AUD
    token_req, gen_req = issuer.requests
    assert token_req.form["grant_type"] == "refresh_token"
    assert issuer.access_tokens[gen_req.headers["authorization"][7:]] == USER_EMAIL


def test_impersonation_with_metadata_source(on_gce: Issuer) -> None:
    provider, _ = provide(
        AuthSettings(impersonate_service_account=TARGET_SA, iam_endpoint=on_gce.url)
    )
    assert provider.source == f"impersonating {TARGET_SA} (source: metadata server)"
    provider.get()
    gen_req = on_gce.last("/v1/projects")
    assert on_gce.access_tokens[gen_req.headers["authorization"][7:]] == DEFAULT_SA


def test_impersonation_denied(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    issuer.denied.add(KEY_SA)
    provider, _ = provide(
        AuthSettings(key_file=key, impersonate_service_account=TARGET_SA, iam_endpoint=issuer.url)
    )
    with pytest.raises(CredentialsError) as e:
        provider.get()
    assert e.value.message == (
        f"generateIdToken for {TARGET_SA} failed: HTTP 403: Permission "
        "'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist)."
    )
    assert e.value.hints == (
        f"the caller needs roles/iam.serviceAccountOpenIdTokenCreator on {TARGET_SA}",
    )


def test_impersonation_without_source() -> None:
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(impersonate_service_account=TARGET_SA), AUD)
    assert e.value.message == (
        f"--impersonate-service-account {TARGET_SA} needs source credentials; none found "
        "(tried: GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server)"
    )


def test_impersonation_endpoint_unreachable(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    provider, _ = provide(
        AuthSettings(
            key_file=key, impersonate_service_account=TARGET_SA, iam_endpoint="http://127.0.0.1:9"
        )
    )
    with pytest.raises(CredentialsError) as e:
        provider.get()
    assert e.value.message == (
        f"generateIdToken for {TARGET_SA}: "
        f"http://127.0.0.1:9/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken: "
        "connection refused"
    )
    assert e.value.hints == ("set the endpoint with --iam-endpoint",)


# --- ADC ----------------------------------------------------------------------------------


def test_adc_service_account_from_env(
    issuer: Issuer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    monkeypatch.setenv(GA, str(key))
    provider, tried = provide(AuthSettings())
    assert tried == ["GOOGLE_APPLICATION_CREDENTIALS"]
    assert provider.source == f"ADC service_account {KEY_SA}"
    tok = provider.get()
    assert (tok.audience, tok.email) == (AUD, KEY_SA)
    assert [r.path for r in issuer.requests] == ["/token"]


def test_adc_gcloud_file(issuer: Issuer, gcloud_adc: Path) -> None:
    issuer.write_service_account_key(gcloud_adc)
    provider, tried = provide(AuthSettings())
    assert tried == ["GOOGLE_APPLICATION_CREDENTIALS", "gcloud ADC file"]
    assert provider.get().email == KEY_SA


def test_adc_env_beats_gcloud_file(
    issuer: Issuer, gcloud_adc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer.write_authorized_user(gcloud_adc)
    monkeypatch.setenv(GA, str(issuer.write_service_account_key(tmp_path / "sa.json")))
    assert provide(AuthSettings())[0].source == f"ADC service_account {KEY_SA}"


def test_adc_authorized_user(issuer: Issuer, gcloud_adc: Path) -> None:
    issuer.write_authorized_user(gcloud_adc)
    provider, _ = provide(AuthSettings())
    assert provider.audience_bound is False
    assert provider.source == (
        "ADC authorized_user (gcloud user; aud is the OAuth client, not chosen)"
    )
    tok = provider.get()
    assert tok.audience_bound is False
    assert tok.audience == USER_CLIENT_ID
    assert tok.email == USER_EMAIL
    [req] = issuer.requests
    assert req.form["grant_type"] == "refresh_token"
    assert req.form["client_id"] == USER_CLIENT_ID


def test_adc_authorized_user_revoked(issuer: Issuer, gcloud_adc: Path) -> None:
    info = issuer.authorized_user_info()
    info["refresh_token"] = "revoked"
    gcloud_adc.write_text(json.dumps(info))
    with pytest.raises(CredentialsError) as e:
        provide(AuthSettings())[0].get()
    assert e.value.message == (
        f"gcloud ADC file {gcloud_adc}: could not mint an ID token: "
        "invalid_grant: Token has been expired or revoked."
    )
    assert e.value.hints == ("run `gcloud auth application-default login` again",)


def test_adc_impersonated_service_account(issuer: Issuer, gcloud_adc: Path) -> None:
    issuer.write_impersonated_adc(gcloud_adc)
    provider, _ = provide(AuthSettings(include_email=True))
    assert provider.source == (f"ADC impersonated_service_account (impersonating {TARGET_SA})")
    tok = provider.get()
    assert (tok.audience, tok.email) == (AUD, TARGET_SA)
    # the endpoint comes from the file's service_account_impersonation_url
    assert [(r.path, r.form.get("grant_type")) for r in issuer.requests[:1]] == [
        ("/token", "refresh_token")
    ]
    gen = issuer.requests[1]
    assert gen.path == f"/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken"
    assert gen.json == {"audience": AUD, "includeEmail": True}
    assert issuer.access_tokens[gen.headers["authorization"][7:]] == USER_EMAIL


def test_adc_impersonated_with_service_account_source(
    issuer: Issuer, gcloud_adc: Path, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    issuer.write_impersonated_adc(gcloud_adc, source=json.loads(key.read_text()))
    assert provide(AuthSettings())[0].get().audience == AUD
    gen = issuer.last("/v1/projects")
    assert issuer.access_tokens[gen.headers["authorization"][7:]] == KEY_SA


def test_adc_iam_endpoint_setting_beats_file(issuer: Issuer, gcloud_adc: Path) -> None:
    other = Issuer().start()
    try:
        info = json.loads(issuer.write_impersonated_adc(gcloud_adc).read_text())
        info["service_account_impersonation_url"] = other.impersonation_url(TARGET_SA)
        gcloud_adc.write_text(json.dumps(info))
        provide(AuthSettings(iam_endpoint=issuer.url))[0].get()
        assert issuer.count("/v1/projects") == 1
        assert other.requests == []
    finally:
        other.stop()


def test_adc_external_account(issuer: Issuer, gcloud_adc: Path, tmp_path: Path) -> None:
    issuer.write_external_account(gcloud_adc, tmp_path / "oidc-token")
    provider, _ = provide(AuthSettings(include_email=True))
    assert provider.source == (
        f"ADC external_account (workload identity federation as {TARGET_SA})"
    )
    tok = provider.get()
    assert (tok.audience, tok.email) == (AUD, TARGET_SA)
    sts, gen = issuer.requests
    assert sts.path == "/v1/token"
    assert sts.form["grant_type"] == TOKEN_EXCHANGE
    assert sts.form["subject_token"] == "github-oidc-subject-token"
    assert sts.form["audience"] == WIF_AUDIENCE
    assert gen.path == f"/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken"
    assert issuer.access_tokens[gen.headers["authorization"][7:]].startswith("principal://")
    assert issuer.count(method="GET") == 0  # no project lookup, no metadata


def test_adc_external_account_bad_subject(issuer: Issuer, gcloud_adc: Path, tmp_path: Path) -> None:
    issuer.write_external_account(gcloud_adc, tmp_path / "oidc-token")
    issuer.subject_token = "something else"
    with pytest.raises(CredentialsError) as e:
        provide(AuthSettings())[0].get()
    assert "The subject token is invalid." in e.value.message
    assert issuer.count("/v1/projects") == 0


def test_adc_external_account_without_impersonation(
    issuer: Issuer, gcloud_adc: Path, tmp_path: Path
) -> None:
    issuer.write_external_account(gcloud_adc, tmp_path / "oidc-token", target=None)
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(), AUD)
    assert e.value.message == (
        f"gcloud ADC file {gcloud_adc}: external_account credentials without "
        "service_account_impersonation_url cannot mint an ID token"
    )


def test_adc_env_points_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GA, str(tmp_path / "gone.json"))
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(), AUD)
    assert e.value.message == (
        f"GOOGLE_APPLICATION_CREDENTIALS is {tmp_path / 'gone.json'}, which does not exist"
    )


def test_adc_unsupported_type(gcloud_adc: Path) -> None:
    gcloud_adc.write_text('{"type": "gdch_service_account"}')
    with pytest.raises(
        CredentialsError, match="has type 'gdch_service_account', which cannot mint ID tokens"
    ):
        build_provider(AuthSettings(), AUD)


def test_adc_broken_json(gcloud_adc: Path) -> None:
    gcloud_adc.write_text("{")
    with pytest.raises(CredentialsError, match=r"gcloud ADC file .* is not JSON"):
        build_provider(AuthSettings(), AUD)


# --- metadata server, nothing found --------------------------------------------------------


def test_metadata_server(on_gce: Issuer) -> None:
    provider, tried = provide(AuthSettings())
    assert tried == TRIED_ALL
    assert provider.source == "metadata server"
    tok = provider.get()
    assert (tok.audience, tok.email) == (AUD, DEFAULT_SA)
    reqs = [(r.path, r.query) for r in on_gce.requests]
    assert reqs == [
        ("/", {}),
        ("/computeMetadata/v1/instance/service-accounts/default/", {"recursive": "true"}),
        (
            "/computeMetadata/v1/instance/service-accounts/default/identity",
            {"audience": AUD, "format": "full"},
        ),
    ]
    assert all(r.headers["metadata-flavor"] == "Google" for r in on_gce.requests)


def test_metadata_probed_once(on_gce: Issuer) -> None:
    build_provider(AuthSettings(), AUD)
    build_provider(AuthSettings(), AUD)
    assert on_gce.count("/", "GET") == 1 and on_gce.requests[0].path == "/"


def test_adc_beats_metadata(on_gce: Issuer, gcloud_adc: Path) -> None:
    on_gce.write_service_account_key(gcloud_adc)
    provider, _ = provide(AuthSettings())
    assert provider.source == f"ADC service_account {KEY_SA}"
    assert on_gce.requests == []  # no probe when ADC is found


def test_nothing_found_is_quick(capfd: pytest.CaptureFixture[str]) -> None:
    start = time.monotonic()
    provider, tried = build_provider(AuthSettings(), AUD)
    assert provider is None
    assert tried == TRIED_ALL
    assert time.monotonic() - start < 3
    assert capfd.readouterr().err == ""  # google-auth's retry warnings are silenced


# --- refresh between calls -------------------------------------------------------------


def test_short_lived_tokens_are_refreshed_between_gets(issuer: Issuer, tmp_path: Path) -> None:
    issuer.lifetime = 2  # refreshed once a quarter of its life is left, reused until then
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    provider, _ = provide(AuthSettings(key_file=key))
    first = provider.get()
    assert provider.get() is first
    time.sleep(1.6)
    provider.get()
    assert issuer.count("/token") == 2
    assert provider.mints == 2


def test_a_200_second_token_is_reused_not_minted_per_get(issuer: Issuer, tmp_path: Path) -> None:
    issuer.lifetime = 200  # within google-auth's 225 s margin, but a quarter of its life is 50 s
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    provider, _ = provide(AuthSettings(key_file=key))
    first = provider.get()
    assert provider.get() is first and provider.get() is first
    assert issuer.count("/token") == 1


def test_long_lived_tokens_are_reused(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    provider, _ = provide(AuthSettings(key_file=key, token_cache=False))
    first = provider.get()
    assert provider.get() is first
    assert issuer.count("/token") == 1


def test_refresh_failure_is_credentials_error(issuer: Issuer, tmp_path: Path) -> None:
    issuer.lifetime = 2
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    provider, _ = provide(AuthSettings(key_file=key))
    provider.get()
    time.sleep(1.6)
    issuer.failures["/token"] = (400, {"error": "invalid_grant", "error_description": "gone"})
    with pytest.raises(CredentialsError, match="could not mint an ID token: invalid_grant: gone"):
        provider.get()


# --- static tokens -------------------------------------------------------------------------


def test_static_token(issuer: Issuer) -> None:
    value = issuer.id_token(AUD, email=KEY_SA)
    provider, tried = build_provider(AuthSettings(token=value), AUD)
    assert isinstance(provider, StaticProvider)
    assert tried == ["--token"]
    tok = provider.get()
    assert (tok.value, tok.source, tok.email) == (value, "--token", KEY_SA)
    from_env, _ = build_provider(AuthSettings(token=value, token_label="CRGRPC_TOKEN"), AUD)
    assert from_env is not None and from_env.source == "CRGRPC_TOKEN"
    prefixed, _ = build_provider(AuthSettings(token=f"Bearer {value}\n"), AUD)
    assert prefixed is not None and prefixed.get().value == value
    assert len(issuer.requests) == 0


def test_token_file(issuer: Issuer, tmp_path: Path) -> None:
    p = tmp_path / "tok"
    p.write_text(issuer.id_token(AUD) + "\n")
    provider, tried = build_provider(AuthSettings(token_file=p), AUD)
    assert tried == ["--token-file"]
    assert provider is not None and provider.source == f"--token-file {p}"
    assert provider.get().audience == AUD


def test_token_file_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(token_file=tmp_path / "missing"), AUD)
    assert (
        e.value.message
        == f"cannot read --token-file {tmp_path / 'missing'}: No such file or directory"
    )


def test_static_token_expired(issuer: Issuer) -> None:
    value = issuer.id_token(AUD, now=int(time.time()) - 7200, lifetime=3600)
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(token=value), AUD)
    assert e.value.message.startswith("--token: the token expired 1h ago (")
    assert e.value.message.endswith(" UTC)")
    assert e.value.hints == (
        "mint a new one, or drop --token and let crgrpc mint one from your credentials",
    )
    assert value not in e.value.message


def test_static_token_not_a_jwt() -> None:
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(token="not-a-jwt-at-all", token_label="CRGRPC_TOKEN"), AUD)
    assert e.value.message == (
        "CRGRPC_TOKEN: not a JWT: 'not-a-jw…' has 1 dot-separated part, not 3"
    )
    assert "-H 'authorization: Bearer …' sends an opaque token as is" in e.value.hints


def test_static_access_token() -> None:
    with pytest.raises(CredentialsError) as e:
        build_provider(AuthSettings(token="ya29.a0secretsecret"), AUD)
    assert e.value.message == (
        "--token: 'ya29.a0s…' is an OAuth access token (ya29.…), not an ID token"
    )
    assert "-H 'authorization: Bearer …' sends an opaque token as is" in e.value.hints


# --- conflicts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            AuthSettings(token="t", key_file=Path("k")),
            "--token and --key-file are 2 token sources at once; give one",
        ),
        (
            AuthSettings(token="t", token_label="CRGRPC_TOKEN", token_file=Path("f")),
            "CRGRPC_TOKEN and --token-file are 2 token sources at once; give one",
        ),
        (
            AuthSettings(token_file=Path("f"), impersonate_service_account="x@y"),
            "--token-file and --impersonate-service-account are 2 token sources at once; give one",
        ),
        (
            AuthSettings(token="t", key_file=Path("k"), impersonate_service_account="x@y"),
            "--token, --key-file, --impersonate-service-account are 3 token sources at once; "
            "give one",
        ),
    ],
)
def test_two_sources_are_a_usage_error(auth: AuthSettings, message: str) -> None:
    with pytest.raises(UsageError) as e:
        build_provider(auth, AUD)
    assert e.value.message == message
    assert e.value.exit_code == ExitCode.USAGE


def test_impersonation_url_helpers() -> None:
    url = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@b.iam.gserviceaccount.com:generateAccessToken"
    assert target_from_impersonation_url(url) == "a@b.iam.gserviceaccount.com"
    assert endpoint_of_impersonation_url(url) == "https://iamcredentials.googleapis.com"
    assert target_from_impersonation_url("https://x/other") is None
    assert endpoint_of_impersonation_url("nope") is None
