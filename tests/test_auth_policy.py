"""plan_auth: when a token is sent (README: Authenticating), to the letter."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth import AuthPlan, plan_auth
from cloudrun_grpc_cli.core.auth.policy import Withheld
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.errors import CredentialsError, ExitCode, UsageError
from cloudrun_grpc_cli.settings import AuthSettings, ChannelSettings
from tests.support.issuer import KEY_SA, USER_CLIENT_ID, Issuer, issuer_fixture  # noqa: F401

RUN_APP = "https://svc-abc-uc.a.run.app"
NOTHING = (
    "no Google credentials found (tried: GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, "
    "metadata server); calling without a token"
)


@pytest.fixture
def key(issuer: Issuer, tmp_path: Path) -> Path:
    return issuer.write_service_account_key(tmp_path / "sa.json")


@pytest.fixture
def gcloud_user(issuer: Issuer, isolated_env: Path) -> Path:
    d = isolated_env / "gcloud"
    d.mkdir(exist_ok=True)
    return issuer.write_authorized_user(d / "application_default_credentials.json")


def plan(
    target: str,
    auth: AuthSettings = AuthSettings(),
    *,
    plaintext: bool = False,
    channel: ChannelSettings = ChannelSettings(),
    headers: tuple[str, ...] = (),
) -> AuthPlan:
    return plan_auth(parse_target(target, plaintext=plaintext), channel, auth, user_headers=headers)


# --- TLS -----------------------------------------------------------------------------------


def test_tls_key_file(issuer: Issuer, key: Path) -> None:
    p = plan(RUN_APP, AuthSettings(key_file=key))
    assert p.provider is not None
    assert (p.header, p.audience, p.notices, p.withheld) == ("authorization", RUN_APP, (), None)
    assert issuer.requests == []  # plan_auth never mints
    assert p.current() is None
    md = p.metadata()
    assert md == [("authorization", f"Bearer {issuer.minted[-1]}")]
    tok = p.current()
    assert tok is not None and tok.audience == RUN_APP and tok.email == KEY_SA


def test_tls_nothing_found_notice() -> None:
    p = plan("svc.example.com:8443")
    assert p.provider is None
    # Not a run.app host: a token is not likely expected, so the note waits for -v.
    assert p.notices == ()
    assert p.quiet_notices == (NOTHING + " (--no-auth silences this note)",)
    assert p.withheld is Withheld.NO_CREDENTIALS
    assert p.withheld_text == (
        "no Google credentials found (tried: GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, "
        "metadata server)"
    )
    assert p.metadata() == []
    assert p.audience == "https://svc.example.com"


def test_tls_auth_flag_with_nothing_found_is_exit_3() -> None:
    with pytest.raises(CredentialsError) as e:
        plan(RUN_APP, AuthSettings(auth=True))
    assert e.value.message == (
        "--auth: no Google credentials found (tried: GOOGLE_APPLICATION_CREDENTIALS, "
        "gcloud ADC file, metadata server)"
    )
    assert e.value.exit_code == ExitCode.CREDENTIALS


def test_tls_metadata_server(issuer: Issuer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", issuer.host)
    monkeypatch.setenv("GCE_METADATA_IP", issuer.host)
    p = plan(RUN_APP)
    assert p.provider is not None and p.provider.source == "metadata server"
    assert p.notices == ()


def test_audience_override_and_authority(key: Path) -> None:
    assert (
        plan(RUN_APP, AuthSettings(key_file=key, audience="https://custom.example")).audience
        == "https://custom.example"
    )
    p = plan(
        "10.0.0.1:443",
        AuthSettings(key_file=key),
        channel=ChannelSettings(authority="svc-x.a.run.app:443"),
    )
    assert p.audience == "https://svc-x.a.run.app"


def test_no_auth(key: Path, issuer: Issuer) -> None:
    p = plan(RUN_APP, AuthSettings(key_file=key, auth=False))
    assert (p.provider, p.withheld, p.withheld_text, p.notices) == (None, Withheld.NO_AUTH, "--no-auth", ())
    assert p.metadata() == []
    assert issuer.requests == []


def test_conflict_is_usage_error_before_anything(key: Path) -> None:
    with pytest.raises(UsageError):
        plan(RUN_APP, AuthSettings(key_file=key, token="x"))


def test_key_file_with_impersonation_is_allowed(key: Path, issuer: Issuer) -> None:
    p = plan(
        RUN_APP,
        AuthSettings(key_file=key, impersonate_service_account="t@p.iam", iam_endpoint=issuer.url),
    )
    assert p.provider is not None
    assert p.provider.source.startswith("impersonating t@p.iam")


# --- the user's own header, --serverless-auth ------------------------------------------------


def test_user_header_wins(key: Path) -> None:
    p = plan(RUN_APP, AuthSettings(key_file=key), headers=("authorization",))
    assert p.provider is None
    assert p.withheld is Withheld.USER_HEADER
    assert p.withheld_text == "your own -H authorization header is sent"
    assert p.notices == ("--key-file not used: your -H authorization header is sent instead",)
    assert p.metadata() == []


def test_user_header_wins_silently_without_explicit_source() -> None:
    p = plan(RUN_APP, headers=("Authorization",))
    assert (p.provider, p.notices) == (None, ())


def test_serverless_header(key: Path, issuer: Issuer) -> None:
    p = plan(RUN_APP, AuthSettings(key_file=key, serverless_auth=True), headers=("authorization",))
    assert p.header == "x-serverless-authorization"
    assert p.provider is not None
    [(name, value)] = p.metadata()
    assert name == "x-serverless-authorization"
    assert value == f"Bearer {issuer.minted[-1]}"


def test_user_serverless_header_wins(key: Path) -> None:
    p = plan(
        RUN_APP,
        AuthSettings(key_file=key, serverless_auth=True),
        headers=("x-serverless-authorization",),
    )
    assert p.provider is None


# --- plaintext and --insecure -------------------------------------------------------------------


def test_plaintext_without_asking_sends_nothing(key: Path, gcloud_user: Path) -> None:
    p = plan("http://api.internal:8080")
    assert p.provider is None
    assert p.notices == ()
    assert (
        p.withheld_text == "a plaintext target gets a token only when asked (--auth or a token source)"
    )
    p = plan("localhost:50051", plaintext=True)
    assert p.provider is None


@pytest.mark.parametrize("target", ["http://api.internal:8080", "http://10.1.2.3"])
def test_plaintext_token_refused_off_loopback(key: Path, issuer: Issuer, target: str) -> None:
    with pytest.raises(CredentialsError) as e:
        plan(target, AuthSettings(key_file=key))
    host = parse_target(target).host
    assert e.value.message == (
        f"refusing to send a token over plaintext to {host}: anyone on the path could replay it"
    )
    assert e.value.hints == ("use TLS, or --allow-plaintext-token if the network is trusted",)
    assert issuer.requests == []


def test_plaintext_auth_flag_refused_off_loopback(gcloud_user: Path) -> None:
    with pytest.raises(CredentialsError, match="refusing to send a token over plaintext"):
        plan("http://api.internal:8080", AuthSettings(auth=True))


def test_insecure_refused_off_loopback(key: Path) -> None:
    with pytest.raises(CredentialsError) as e:
        plan(
            "api.example.com:443",
            AuthSettings(key_file=key),
            channel=ChannelSettings(insecure=True),
        )
    assert e.value.message == (
        "refusing to send a token over a connection whose certificate is not verified "
        "(--insecure) to api.example.com: anyone on the path could replay it"
    )


def test_insecure_not_asked(gcloud_user: Path) -> None:
    p = plan("api.example.com:443", channel=ChannelSettings(insecure=True))
    assert p.provider is None
    assert (
        p.withheld_text == "a --insecure target gets a token only when asked (--auth or a token source)"
    )


@pytest.mark.parametrize("target", ["http://127.0.0.1:8080", "http://localhost:1", "[::1]:50051"])
def test_plaintext_loopback_allowed_when_asked(key: Path, target: str) -> None:
    p = plan(target, AuthSettings(key_file=key, audience=RUN_APP), plaintext=True)
    assert p.provider is not None
    assert p.audience == RUN_APP


def test_plaintext_loopback_audience_defaults_to_host(key: Path) -> None:
    assert plan("http://127.0.0.1:8080", AuthSettings(key_file=key)).audience == (
        "https://127.0.0.1"
    )


def test_allow_plaintext_token(key: Path) -> None:
    p = plan("http://api.internal:8080", AuthSettings(key_file=key, allow_plaintext_token=True))
    assert p.provider is not None


def test_auth_flag_on_loopback_uses_ambient(gcloud_user: Path) -> None:
    p = plan("http://127.0.0.1:8080", AuthSettings(auth=True))
    assert p.provider is not None
    assert p.provider.audience_bound is False  # --auth also sends a gcloud user's token


def test_auth_flag_on_loopback_nothing_found() -> None:
    with pytest.raises(CredentialsError, match="--auth: no Google credentials found"):
        plan("http://127.0.0.1:8080", AuthSettings(auth=True))


# --- unix sockets ---------------------------------------------------------------------------


def test_unix_needs_an_audience(key: Path) -> None:
    with pytest.raises(CredentialsError) as e:
        plan("unix:///tmp/s.sock", AuthSettings(key_file=key))
    assert e.value.message == "no audience to mint a token for (--key-file)"
    assert "--audience" in e.value.hints[0]


def test_unix_with_audience(key: Path) -> None:
    p = plan("unix:///tmp/s.sock", AuthSettings(key_file=key, audience=RUN_APP))
    assert (p.audience, p.provider is not None) == (RUN_APP, True)


def test_unix_static_token_needs_no_audience(issuer: Issuer) -> None:
    p = plan("unix:///tmp/s.sock", AuthSettings(token=issuer.id_token(RUN_APP)))
    assert p.provider is not None and p.audience is None


def test_unix_not_asked() -> None:
    p = plan("unix:///tmp/s.sock")
    assert (p.provider, p.audience) == (None, None)


# --- a gcloud user's unbound token ------------------------------------------------------------


def test_gcloud_user_token_goes_to_run_app(gcloud_user: Path, issuer: Issuer) -> None:
    p = plan(RUN_APP)
    assert p.provider is not None
    assert p.notices == ()
    p.metadata()
    tok = p.current()
    assert tok is not None and tok.audience == USER_CLIENT_ID and tok.audience_bound is False


def test_gcloud_user_token_withheld_elsewhere(gcloud_user: Path, issuer: Issuer) -> None:
    p = plan("api.example.com")
    assert p.provider is None
    why = (
        "not sending the gcloud user's ID token to api.example.com: its audience is the OAuth "
        "client, not this service, so whoever receives it can replay it against every service "
        "that user may invoke; --auth sends it anyway"
    )
    assert p.notices == (why,)
    assert p.withheld_text == why
    assert issuer.requests == []


def test_gcloud_user_token_with_auth_flag(gcloud_user: Path) -> None:
    assert plan("api.example.com", AuthSettings(auth=True)).provider is not None


def test_gcloud_user_token_authority_decides(gcloud_user: Path) -> None:
    assert plan("10.0.0.1:443", channel=ChannelSettings(authority="x.a.run.app")).provider
    assert (
        plan("x.a.run.app", channel=ChannelSettings(authority="api.example.com")).provider is None
    )


def test_run_app_lookalike_is_not_run_app(gcloud_user: Path) -> None:
    assert plan("evilrun.app").provider is None
    assert plan("x.run.app.evil.com").provider is None


# --- static tokens are checked at plan time -------------------------------------------------


def test_expired_static_token_fails_at_plan_time(issuer: Issuer) -> None:
    old = issuer.id_token(RUN_APP, now=int(time.time()) - 4000)
    with pytest.raises(CredentialsError, match="--token: the token expired"):
        plan(RUN_APP, AuthSettings(token=old))


def test_static_token_sent_as_is(issuer: Issuer) -> None:
    value = issuer.id_token(RUN_APP)
    p = plan(RUN_APP, AuthSettings(token=value))
    assert p.metadata() == [("authorization", f"Bearer {value}")]
    assert p.metadata() == [("authorization", f"Bearer {value}")]


def test_nothing_found_for_a_run_app_host_is_said() -> None:
    p = plan("https://svc-abc-uc.a.run.app")
    assert p.provider is None
    assert p.notices == (NOTHING + " (--no-auth silences this note)",)
    assert p.quiet_notices == ()


def test_metadata_refreshes_between_calls(issuer: Issuer, key: Path) -> None:
    issuer.lifetime = 2  # refreshed once a quarter of its life (0.5 s) is left
    p = plan(RUN_APP, AuthSettings(key_file=key))
    p.metadata()
    p.metadata()
    assert issuer.count("/token") == 1
    time.sleep(1.6)
    p.metadata()
    assert issuer.count("/token") == 2
