"""Diagnoses that are right (issue 11, item 5): the wrong protocol named as such, a fixed
token's own audience, a user's own JWT decoded, a warning before dialing, named targets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.hints import explain
from cloudrun_grpc_cli.core.session import open_session
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.errors import ConnectError
from cloudrun_grpc_cli.settings import ChannelSettings, Settings

from .support.cli import run
from .support.frontend import FrontEnd, front_end
from .support.issuer import KEY_SA, Issuer, issuer_fixture  # noqa: F401
from .support.servers import echo_server
from .support.tls import CertFiles, make_certs

ECHO_PROTO = str(Path(__file__).resolve().parents[1] / "protos" / "echo.proto")
AUD = "https://localhost"


def utc(timestamp: int) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("diag-tls"))


@pytest.fixture()
def plain_401() -> Iterator[FrontEnd]:
    with front_end(401) as fe:
        yield fe


# --- the wrong protocol -----------------------------------------------------------------------


def test_tls_to_a_plaintext_server_says_so() -> None:
    with echo_server() as s:
        r = run("list", f"127.0.0.1:{s.port}")
    assert r.code == 4
    assert r.stderr == (
        f"error: cannot connect to 127.0.0.1:{s.port}: the server speaks plaintext, not TLS\n"
        "hint: use --plaintext or http://\n"
    )


def test_insecure_to_a_plaintext_server_says_so_too() -> None:
    with echo_server() as s:
        r = run("list", f"localhost:{s.port}", "--insecure")
    assert r.code == 4
    assert r.stderr.splitlines()[1:] == [
        f"error: cannot connect to localhost:{s.port}: the server speaks plaintext, not TLS",
        "hint: use --plaintext or http://",
    ]


@pytest.mark.parametrize("how", [["--plaintext"], []])
def test_plaintext_to_a_tls_server_says_drop_it(certs: CertFiles, how: list[str]) -> None:
    with echo_server(tls=certs) as s:
        target = f"127.0.0.1:{s.port}" if how else f"http://127.0.0.1:{s.port}"
        r = run("list", target, *how)
    assert r.code == 4
    assert r.stderr == (
        f"error: cannot connect to 127.0.0.1:{s.port}: the server speaks TLS, not plaintext\n"
        "hint: drop --plaintext (and http://): the server wants TLS (https://, or no scheme)\n"
    )


# --- fixed tokens: their own aud, a warning before dialing ---------------------------------------


def test_a_fixed_token_for_another_audience_is_warned_of_before_dialing(
    issuer: Issuer, plain_401: FrontEnd
) -> None:
    token = issuer.id_token("https://other-svc-uc.a.run.app", email=KEY_SA)
    r = run("call", f"localhost:{plain_401.port}", "SayHello", "--proto", ECHO_PROTO, "--plaintext", "--auth", "--token", token)
    assert r.code == 80
    lines = r.stderr.splitlines()
    assert lines[0] == (
        "warning: --token: the token's aud is https://other-svc-uc.a.run.app, not "
        f"{AUD} (the target's audience): the service may refuse it, and --audience cannot "
        "change a fixed token"
    )
    assert lines[1] == "error: UNAUTHENTICATED: Received http2 header with status: 401"
    assert lines[3].startswith("hint: audience sent: https://other-svc-uc.a.run.app (the token's own); ")
    assert token not in r.stderr


def test_a_fixed_token_for_the_target_gets_no_warning(issuer: Issuer, plain_401: FrontEnd) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run("call", f"localhost:{plain_401.port}", "SayHello", "--proto", ECHO_PROTO, "--plaintext", "--auth", "--token", token)
    assert r.code == 80
    assert r.stderr.splitlines()[0].startswith("error: ")


# --- the user's own -H authorization header is decoded for the diagnosis -------------------------


def test_your_own_expired_jwt_header_is_decoded(issuer: Issuer, plain_401: FrontEnd) -> None:
    token = issuer.id_token(AUD, email=KEY_SA, lifetime=-120)  # expired two minutes ago
    exp = int(__import__("cloudrun_grpc_cli.core.auth.jwt", fromlist=["x"]).decode_jwt(token).claims["exp"])
    r = run(
        "call", f"localhost:{plain_401.port}", "SayHello", "--proto", ECHO_PROTO, "--plaintext",
        "-H", f"authorization: Bearer {token}",
    )
    assert r.code == 80
    lines = r.stderr.splitlines()
    assert lines[1:4] == [
        "hint: Cloud Run's front end (HTTP 401) refused the authorization header you passed "
        "with -H (crgrpc sent no token of its own)",
        "hint: drop -H to let crgrpc mint an ID token for the target's audience",
        f"hint: audience sent: {AUD} (the token's own); exp: {utc(exp)} (expired 2m ago); "
        f"email: {KEY_SA}; source: your -H authorization header",
    ]
    assert lines[4] == "hint: the token has expired: mint a new one (or drop it and let crgrpc mint one)"
    assert token not in r.stderr


def test_your_own_jwt_for_another_audience(issuer: Issuer, plain_401: FrontEnd) -> None:
    token = issuer.id_token("https://elsewhere.example", email=KEY_SA)
    r = run(
        "call", f"localhost:{plain_401.port}", "SayHello", "--proto", ECHO_PROTO, "--plaintext",
        "-H", f"authorization: Bearer {token}",
    )
    assert r.code == 80
    assert (
        f"hint: its aud is not {AUD}, the target's audience: --audience cannot change a fixed "
        "token; mint one for the service's run.app URL or custom audience, or let crgrpc mint "
        "it (drop the token)"
    ) in r.stderr.splitlines()


# --- a bare name that is no host and no named target --------------------------------------------


def _dns_failure(name: str, settings: Settings) -> ConnectError:
    """The failure a bare name meets, explained (no lookup is made: the channel never dials)."""
    err = ConnectError(f"cannot connect to {name}:80: DNS resolution failed", reason="DNS resolution failed")
    with pytest.raises(ConnectError), open_session(parse_target(name, plaintext=True), settings) as sess:
        raise err
    assert err.session is sess
    return explain(err)


def test_a_bare_name_that_fails_dns_lists_the_named_targets() -> None:
    settings = Settings(channel=ChannelSettings(plaintext=True), named_targets=("prod", "staging"))
    err = _dns_failure("prdo", settings)
    assert err.hints == (
        "check the host name",
        "'prdo' is not a named target either; the config file has: prod, staging",
    )


def test_a_bare_name_without_named_targets_says_where_they_go() -> None:
    err = _dns_failure("prdo", Settings(channel=ChannelSettings(plaintext=True)))
    assert err.hints[-1] == (
        "'prdo' is not a named target either: the config file has none ([targets.NAME] in "
        "$XDG_CONFIG_HOME/crgrpc/config.toml, see crgrpc config show)"
    )


def test_a_dotted_host_that_fails_dns_gets_no_named_target_hint() -> None:
    settings = Settings(channel=ChannelSettings(plaintext=True), named_targets=("prod",))
    err = _dns_failure("svc.example.invalid", settings)
    assert err.hints == ("check the host name",)


def test_the_cli_hands_the_named_targets_to_the_core(isolated_env: Path) -> None:
    from cloudrun_grpc_cli.cli.config import target_names

    config = isolated_env / "config" / "crgrpc" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[targets.prod]\naddress = "https://a.example"\n[targets.dev]\naddress = "http://127.0.0.1:1"\n')
    assert target_names(None) == ("dev", "prod")


# --- small things seen (item 13) ------------------------------------------------------------------


def test_token_show_without_target_hints_at_token_show() -> None:
    r = run("token", "show")
    assert (r.code, r.stderr) == (
        2, "error: give a TARGET or --audience\nhint: crgrpc token show https://SERVICE.run.app, or --audience AUD\n"
    )


def test_verify_puts_no_tick_on_a_skipped_check(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run("token", "decode", token, "--verify", "--certs", issuer.certs_url, "-o", "pretty", "--color", "never")
    assert r.code == 0
    lines = r.stdout.splitlines()
    assert "– audience  not checked: no --audience" in lines
    assert not any(line.startswith("✓ audience") for line in lines)
    assert any(line.startswith("✓ signature") for line in lines)


def test_the_status_line_shows_seconds_above_one_second() -> None:
    from cloudrun_grpc_cli.render.pretty import elapsed

    assert [elapsed(x) for x in (12.34, 999.9, 1520.0, 59_990.0, 123_000.0)] == [
        "12.3 ms", "999.9 ms", "1.52 s", "59.99 s", "2m 03s",
    ]


def test_a_slow_call_shows_seconds(issuer: Issuer) -> None:
    with front_end(answer=lambda path: (__import__("time").sleep(1.2), 401)[1]) as fe:
        r = run("call", f"localhost:{fe.port}", "SayHello", "--proto", ECHO_PROTO, "--plaintext", tty=True)
    assert r.code == 80
    [status] = [line for line in r.stdout.splitlines() if line.startswith("✗ UNAUTHENTICATED")]
    assert status.endswith(" s") and " ms" not in status


def test_config_show_prints_values_as_toml_writes_them(isolated_env: Path) -> None:
    config = isolated_env / "config" / "crgrpc" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[defaults]\nheader = ["x-a: 1"]\nconnect_timeout = 3\nplaintext = true\n')
    r = run("config", "show", "-o", "pretty", "--color", "never")
    assert r.code == 0
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in r.stdout.splitlines()[2:] if line.strip()}
    assert rows["plaintext"] == "true config"
    assert rows["connect_timeout"] == "3.0 config"
    assert rows["header"] == '["x-a: 1"] config'
    assert rows["cacert"] == "(not set) default"
    assert "True" not in r.stdout and "'x-a" not in r.stdout


def test_503_hint_mentions_retries(plain_401: FrontEnd) -> None:
    with front_end(503) as fe:
        r = run("call", f"localhost:{fe.port}", "SayHello", "--proto", ECHO_PROTO, "--plaintext")
    assert r.code == 78
    assert r.stderr.splitlines()[-1].endswith("; --retries N waits for a cold start")
