"""Tokens end to end through `crgrpc call`, `list` and `describe`.

A TLS Echo server (certificates made here, trusted with --cacert) is guarded by
TokenCheck — signature against the local issuer's certs URL, audience
https://localhost, allowed emails — as Cloud Run would guard it; a
MetadataRecorder before it records what every call carried. google-auth runs
for real against the local issuer for every token source, and every rule
of "When a token is sent" is checked from the server's side. TokenCheck uses
crgrpc's own verifier, so where a test relies on the server accepting the
token, the token the server received is also verified with google-auth's
verifier (tests/support/oracle.py).
"""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.cache import cache_root
from cloudrun_grpc_cli.core.auth.jwt import decode_jwt
from cloudrun_grpc_cli.core.session import open_session
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.demo import echo_pb2
from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from cloudrun_grpc_cli.settings import AuthSettings, ChannelSettings, Settings
from tests.support.cli import Result, run
from tests.support.issuer import (  # noqa: F401
    DEFAULT_SA,
    KEY_SA,
    TARGET_SA,
    USER_CLIENT_ID,
    USER_EMAIL,
    Issuer,
    issuer_fixture,
)
from tests.support.oracle import bearer, google_verified
from tests.support.recorder import MetadataRecorder
from tests.support.servers import echo_server
from tests.support.tls import CertFiles, make_certs

AUD = "https://localhost"
DATA = '{"name": "x"}'
HELLO = {"message": "Hello x from K_REVISION local"}
ALLOWED = (KEY_SA, TARGET_SA, DEFAULT_SA)
TRIED = "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server"
SAY_HELLO = "/echo.EchoServer/SayHello"
REFLECTION = "ServerReflectionInfo"
GA = "GOOGLE_APPLICATION_CREDENTIALS"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("auth-tls"))


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("auth-self"), self_signed=True)


@dataclass
class Server:
    port: int
    recorder: MetadataRecorder
    ca: Path | None

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"

    def tls_args(self) -> list[str]:
        return ["--cacert", str(self.ca)] if self.ca else ["--plaintext"]

    def sent(self, header: str = "authorization") -> list[str | bytes | None]:
        """The value of `header` on every call the server saw, in order."""
        return [md.get(header) for _, md in self.recorder.calls]


@contextmanager
def server(
    issuer: Issuer | None,
    tls: CertFiles | None,
    *,
    audience: str = AUD,
    emails: tuple[str, ...] = ALLOWED,
) -> Iterator[Server]:
    """An Echo server; with an issuer, every call must carry a token it issued."""
    recorder = MetadataRecorder()
    interceptors: tuple[object, ...] = (recorder,)
    if issuer is not None:
        interceptors += (TokenCheck(audience, certs=issuer.certs_url, allowed_emails=emails),)
    with echo_server(tls=tls, interceptors=interceptors) as srv:
        yield Server(srv.port, recorder, tls.ca if tls else None)


@pytest.fixture
def guarded(issuer: Issuer, certs: CertFiles) -> Iterator[Server]:
    with server(issuer, certs) as srv:
        yield srv


@pytest.fixture
def open_tls(certs: CertFiles) -> Iterator[Server]:
    """A TLS server that checks nothing, only records."""
    with server(None, certs) as srv:
        yield srv


@pytest.fixture
def open_plain() -> Iterator[Server]:
    with server(None, None) as srv:
        yield srv


@pytest.fixture
def gcloud_adc(isolated_env: Path) -> Path:
    d = isolated_env / "gcloud"
    d.mkdir(exist_ok=True)
    return d / "application_default_credentials.json"


def call(srv: Server, *args: str, target: str | None = None) -> Result:
    return run("call", target or srv.target, "SayHello", "-d", DATA, *srv.tls_args(), *args)


def squash(text: str) -> str:
    """Text without whitespace (Rich folds a long title anywhere at width 80)."""
    return "".join(text.split())


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


# --- every source ------------------------------------------------------------------------

Setup = Callable[[Issuer, Path, pytest.MonkeyPatch, Path], tuple[list[str], str, str]]


def _key_file(i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str, str]:
    key = i.write_service_account_key(tmp / "sa.json")
    return ["--key-file", str(key)], KEY_SA, f"service-account key {key}"


def _token(i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path) -> tuple[list[str], str, str]:
    return ["--token", i.id_token(AUD, email=KEY_SA)], KEY_SA, "--token"


def _token_file(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    path = tmp / "token.txt"
    path.write_text(i.id_token(AUD, email=KEY_SA) + "\n")
    return ["--token-file", str(path)], KEY_SA, f"--token-file {path}"


def _env_token(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    mp.setenv("CRGRPC_TOKEN", i.id_token(AUD, email=KEY_SA))
    return [], KEY_SA, "CRGRPC_TOKEN"


def _impersonate_key(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    key = i.write_service_account_key(tmp / "sa.json")
    args = ["--key-file", str(key), "--impersonate-service-account", TARGET_SA]
    args += ["--iam-endpoint", i.url, "--include-email"]
    return args, TARGET_SA, f"impersonating {TARGET_SA} (source: service-account key {key})"


def _impersonate_adc(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    i.write_authorized_user(adc)
    args = ["--impersonate-service-account", TARGET_SA, "--iam-endpoint", i.url, "--include-email"]
    return args, TARGET_SA, f"impersonating {TARGET_SA} (source: ADC authorized_user)"


def _impersonate_env(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    """CRGRPC_IAM_ENDPOINT instead of the flag; the source is ADC service_account."""
    mp.setenv(GA, str(i.write_service_account_key(tmp / "adc.json")))
    mp.setenv("CRGRPC_IAM_ENDPOINT", i.url)
    args = ["--impersonate-service-account", TARGET_SA, "--include-email"]
    return args, TARGET_SA, f"impersonating {TARGET_SA} (source: ADC service_account)"


def _adc_service_account(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    mp.setenv(GA, str(i.write_service_account_key(tmp / "adc.json")))
    return [], KEY_SA, f"ADC service_account {KEY_SA}"


def _adc_impersonated(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    i.write_impersonated_adc(adc, TARGET_SA)
    return (
        ["--include-email"],
        TARGET_SA,
        f"ADC impersonated_service_account (impersonating {TARGET_SA})",
    )


def _adc_external(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    mp.setenv(GA, str(i.write_external_account(tmp / "wif.json", tmp / "oidc.txt", TARGET_SA)))
    return (
        ["--include-email"],
        TARGET_SA,
        f"ADC external_account (workload identity federation as {TARGET_SA})",
    )


def _metadata(
    i: Issuer, tmp: Path, mp: pytest.MonkeyPatch, adc: Path
) -> tuple[list[str], str, str]:
    mp.setenv("GCE_METADATA_HOST", i.host)
    mp.setenv("GCE_METADATA_IP", i.host)
    return [], DEFAULT_SA, "metadata server"


SOURCES: dict[str, Setup] = {
    "key-file": _key_file,
    "token": _token,
    "token-file": _token_file,
    "CRGRPC_TOKEN": _env_token,
    "impersonate with key-file": _impersonate_key,
    "impersonate with gcloud ADC": _impersonate_adc,
    "impersonate with ADC, CRGRPC_IAM_ENDPOINT": _impersonate_env,
    "ADC service_account": _adc_service_account,
    "ADC impersonated_service_account": _adc_impersonated,
    "ADC external_account": _adc_external,
    "metadata server": _metadata,
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_source_calls_a_guarded_tls_server(
    name: str,
    issuer: Issuer,
    guarded: Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    gcloud_adc: Path,
) -> None:
    args, email, source = SOURCES[name](issuer, tmp_path, monkeypatch, gcloud_adc)
    r = call(guarded, "-o", "full", "-v", *args)
    assert (r.code, r.stderr) == (0, ""), r
    doc = r.json
    assert doc["messages"] == [HELLO]
    assert doc["status"]["name"] == "OK"
    assert doc["token"]["email"] == email
    assert doc["token"]["aud"] == AUD
    assert doc["request_metadata"]["authorization"] == "Bearer <redacted>"
    # the same token on the reflection calls and the call, and it is the issuer's
    token = issuer.minted[-1]
    assert guarded.recorder.methods()[-1] == SAY_HELLO
    assert any(REFLECTION in m for m in guarded.recorder.methods())
    assert set(guarded.sent()) == {f"Bearer {token}"}
    assert token not in r.stdout
    # google-auth, not crgrpc's verifier, confirms what the server received
    claims = google_verified(bearer(guarded.sent()[-1]), audience=AUD, certs_url=issuer.certs_url)
    assert (claims["aud"], claims["email"]) == (AUD, email)
    # the source, as the token panel names it
    pretty = call(guarded, "-o", "pretty", "-v", *args)
    assert pretty.code == 0, pretty
    assert squash(f"token from {source}") in squash(pretty.stdout)


@pytest.mark.parametrize("command", ["list", "describe"])
def test_list_and_describe_carry_the_token(
    command: str, issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = run(command, guarded.target, "--cacert", str(guarded.ca), "--key-file", str(key))
    assert (r.code, r.stderr) == (0, ""), r
    if command == "list":
        assert r.lines == [
            {"service": "echo.EchoServer"},
            {"service": "grpc.reflection.v1alpha.ServerReflection"},
        ]
    else:
        assert [row["symbol"] for row in r.lines] == ["echo.EchoServer", "grpc.reflection.v1alpha.ServerReflection"]
    assert guarded.recorder.calls
    assert all(REFLECTION in m for m in guarded.recorder.methods())
    assert set(guarded.sent()) == {f"Bearer {issuer.minted[-1]}"}
    assert issuer.count("/token") == 1  # minted once for every reflection call
    google_verified(bearer(guarded.sent()[-1]), audience=AUD, certs_url=issuer.certs_url)


def test_reflection_without_a_token_is_refused(guarded: Server) -> None:
    r = run("list", guarded.target, "--cacert", str(guarded.ca))
    assert r.code == 80
    assert r.stderr.splitlines()[0] == "error: UNAUTHENTICATED: reflection: missing bearer token"
    r = run("list", guarded.target, "--cacert", str(guarded.ca), "-v")
    assert r.stderr.splitlines()[:2] == [
        f"note: no Google credentials found (tried: {TRIED}); calling without a token "
        "(--no-auth silences this note)",
        "error: UNAUTHENTICATED: reflection: missing bearer token",
    ]


# --- a gcloud user's token (authorized_user): only to *.run.app unless --auth -----------------


def test_gcloud_user_token_with_auth(
    issuer: Issuer, certs: CertFiles, gcloud_adc: Path
) -> None:
    issuer.write_authorized_user(gcloud_adc)
    with server(issuer, certs, audience=USER_CLIENT_ID, emails=(USER_EMAIL,)) as srv:
        r = call(srv, "-o", "full", "--auth")
        assert (r.code, r.stderr) == (0, ""), r
        assert r.json["token"]["aud"] == USER_CLIENT_ID
        assert r.json["token"]["email"] == USER_EMAIL
        assert set(srv.sent()) == {f"Bearer {issuer.minted[-1]}"}
        claims = google_verified(
            bearer(srv.sent()[-1]), audience=USER_CLIENT_ID, certs_url=issuer.certs_url
        )
        assert claims["email"] == USER_EMAIL


def test_gcloud_user_token_is_withheld_without_auth(
    issuer: Issuer, open_tls: Server, gcloud_adc: Path
) -> None:
    issuer.write_authorized_user(gcloud_adc)
    r = call(open_tls)
    assert r.code == 0
    assert r.stderr == (
        "note: not sending the gcloud user's ID token to localhost: its audience is the OAuth "
        "client, not this service, so whoever receives it can replay it against every service "
        "that user may invoke; --auth sends it anyway\n"
    )
    assert set(open_tls.sent()) == {None}


# --- when a token is sent ---------------------------------------------------------------------


def test_tls_nothing_found_calls_without_a_token(open_tls: Server) -> None:
    r = call(open_tls)
    assert r.code == 0
    assert r.lines == [HELLO]
    assert r.stderr == ""  # localhost: no token was likely expected, so no note without -v
    assert set(open_tls.sent()) == {None}


def test_plaintext_gets_no_token_unless_asked(
    issuer: Issuer, open_plain: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GA, str(issuer.write_service_account_key(tmp_path / "adc.json")))
    r = call(open_plain)
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])
    assert set(open_plain.sent()) == {None}
    assert issuer.count() == 0


def test_plaintext_to_loopback_with_auth(
    issuer: Issuer, open_plain: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GA, str(issuer.write_service_account_key(tmp_path / "adc.json")))
    r = call(open_plain, "--auth", target=f"127.0.0.1:{open_plain.port}")
    assert (r.code, r.stderr) == (0, "")
    assert set(open_plain.sent()) == {f"Bearer {issuer.minted[-1]}"}
    assert decode_jwt(issuer.minted[-1]).claims["aud"] == "https://127.0.0.1"


def test_plaintext_to_loopback_with_an_explicit_source(
    issuer: Issuer, open_plain: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(open_plain, "--key-file", str(key))
    assert (r.code, r.stderr) == (0, "")
    assert set(open_plain.sent()) == {f"Bearer {issuer.minted[-1]}"}


PLAINTEXT_REFUSED = (
    "error: refusing to send a token over plaintext to 0.0.0.0: anyone on the path could "
    "replay it\nhint: use TLS, or --allow-plaintext-token if the network is trusted\n"
)


def test_plaintext_to_a_non_loopback_host_is_refused_before_connecting(
    issuer: Issuer, open_plain: Server, tmp_path: Path
) -> None:
    """0.0.0.0 is not a loopback address, yet Linux connects it to this host: the server
    would see any call."""
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(open_plain, "--key-file", str(key), target=f"0.0.0.0:{open_plain.port}")
    assert (r.code, r.stdout, r.stderr) == (3, "", PLAINTEXT_REFUSED)
    assert open_plain.recorder.calls == []
    assert issuer.count() == 0  # nothing minted either


def test_plaintext_refusal_needs_no_listener(issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = run("list", f"0.0.0.0:{closed_port()}", "--plaintext", "--auth", "--key-file", str(key))
    assert (r.code, r.stderr) == (3, PLAINTEXT_REFUSED)


def test_allow_plaintext_token(issuer: Issuer, open_plain: Server, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(
        open_plain, "--key-file", str(key), "--allow-plaintext-token",
        target=f"0.0.0.0:{open_plain.port}",
    )
    assert (r.code, r.stderr) == (0, "")
    assert set(open_plain.sent()) == {f"Bearer {issuer.minted[-1]}"}
    assert decode_jwt(issuer.minted[-1]).claims["aud"] == "https://0.0.0.0"


INSECURE_WARNING = (
    "warning: --insecure: trusting whatever certificate the server presents "
    "(no protection against interception)\n"
)


def test_insecure_gets_no_token_unless_asked(
    issuer: Issuer, self_signed: CertFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GA, str(issuer.write_service_account_key(tmp_path / "adc.json")))
    with server(None, self_signed) as srv:
        r = run("call", srv.target, "SayHello", "-d", DATA, "--insecure")
        assert (r.code, r.stderr, r.lines) == (0, INSECURE_WARNING, [HELLO])
        assert set(srv.sent()) == {None}
    assert issuer.count() == 0


def test_insecure_to_loopback_when_asked(
    issuer: Issuer, self_signed: CertFiles, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with server(issuer, self_signed) as srv:
        r = run("call", srv.target, "SayHello", "-d", DATA, "--insecure", "--key-file", str(key))
        assert (r.code, r.stderr, r.lines) == (0, INSECURE_WARNING, [HELLO])
        assert set(srv.sent()) == {f"Bearer {issuer.minted[-1]}"}
        google_verified(bearer(srv.sent()[-1]), audience=AUD, certs_url=issuer.certs_url)


def test_insecure_to_a_non_loopback_host_is_refused(
    issuer: Issuer, self_signed: CertFiles, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with server(None, self_signed) as srv:
        r = run(
            "call", f"0.0.0.0:{srv.port}", "SayHello", "-d", DATA, "--insecure",
            "--key-file", str(key),
        )
        assert srv.recorder.calls == []
    assert r.code == 3
    assert r.stderr == INSECURE_WARNING + (
        "error: refusing to send a token over a connection whose certificate is not verified "
        "(--insecure) to 0.0.0.0: anyone on the path could replay it\n"
        "hint: use TLS, or --allow-plaintext-token if the network is trusted\n"
    )


def test_your_own_authorization_header_wins(
    issuer: Issuer, open_tls: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(open_tls, "--key-file", str(key), "-H", "Authorization: Bearer mine")
    assert r.code == 0
    assert r.stderr == (
        "note: --key-file not used: your -H authorization header is sent instead\n"
    )
    assert set(open_tls.sent()) == {"Bearer mine"}
    assert issuer.count() == 0


def test_no_auth(
    issuer: Issuer, open_tls: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GA, str(issuer.write_service_account_key(tmp_path / "adc.json")))
    r = call(open_tls, "--no-auth")
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])
    assert set(open_tls.sent()) == {None}
    assert issuer.count() == 0


def test_serverless_auth(issuer: Issuer, guarded: Server, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(guarded, "--key-file", str(key), "--serverless-auth", "-H", "authorization: app")
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])
    assert set(guarded.sent("x-serverless-authorization")) == {f"Bearer {issuer.minted[-1]}"}
    assert set(guarded.sent("authorization")) == {"app"}  # passed through to the app
    sent = bearer(guarded.sent("x-serverless-authorization")[-1])
    google_verified(sent, audience=AUD, certs_url=issuer.certs_url)


def test_serverless_auth_token_is_checked(issuer: Issuer, guarded: Server) -> None:
    """Cloud Run checks x-serverless-authorization first: a bad one is refused."""
    bad = issuer.id_token("https://elsewhere", email=KEY_SA)
    r = call(guarded, "--token", bad, "--serverless-auth")
    assert r.code == 80
    assert r.stderr.splitlines()[0].startswith("warning: --token: the token's aud is https://elsewhere")
    assert r.stderr.splitlines()[1].startswith(
        "error: UNAUTHENTICATED: reflection: invalid token audience:"
    )


# --- refresh -------------------------------------------------------------------------------------


def test_short_lived_tokens_are_minted_again_for_the_next_call(
    certs: CertFiles, tmp_path: Path
) -> None:
    """A token within 5 minutes of exp is not cached: each invocation mints a fresh one,
    once, for its reflection calls and the call; the server accepts each."""
    issuer = Issuer(lifetime=280).start()
    try:
        key = issuer.write_service_account_key(tmp_path / "sa.json")
        with server(issuer, certs) as srv:
            first = call(srv, "--key-file", str(key))
            assert (first.code, first.lines) == (0, [HELLO])
            assert issuer.count("/token") == 1
            tok1 = issuer.minted[-1]
            assert set(srv.sent()) == {f"Bearer {tok1}"}
            n = len(srv.recorder.calls)
            time.sleep(1.05)  # a new iat, so a different token
            second = call(srv, "--key-file", str(key))
            assert (second.code, second.lines) == (0, [HELLO])
            assert issuer.count("/token") == 2
            tok2 = issuer.minted[-1]
            assert tok2 != tok1
            assert set(srv.sent()[n:]) == {f"Bearer {tok2}"}
            for tok in (tok1, tok2):
                google_verified(tok, audience=AUD, certs_url=issuer.certs_url)
        assert not list((cache_root() / "tokens").glob("*.json"))
    finally:
        issuer.stop()


def test_the_provider_refreshes_between_calls_of_one_session(
    certs: CertFiles, tmp_path: Path
) -> None:
    """Within one process: the token minted before dialing serves reflection; once within
    its refresh margin (a quarter of a 4 s lifetime: 1 s) of exp, the next call gets a fresh one."""
    issuer = Issuer(lifetime=4).start()
    try:
        key = issuer.write_service_account_key(tmp_path / "sa.json")
        with server(issuer, certs) as srv:
            settings = Settings(
                channel=ChannelSettings(cacert=certs.ca),
                auth=AuthSettings(key_file=key),
            )
            sess = open_session(parse_target(srv.target), settings)
            try:
                sess.conn.wait_connected()
                assert sess.schema().list_services()[0] == "echo.EchoServer"
                tok1 = sess.token
                assert tok1 is not None and issuer.count("/token") == 1
                time.sleep(3.2)  # now under 1 s left
                from cloudrun_grpc_cli.core.invoke import invoke

                method = echo_pb2.DESCRIPTOR.services_by_name["EchoServer"].methods_by_name[
                    "SayHello"
                ]
                events = list(
                    invoke(
                        sess.conn.channel,
                        method,
                        [echo_pb2.EchoRequest(name="x")],
                        metadata=sess.conn.metadata(),
                    )
                )
                assert events[-1].ok  # type: ignore[union-attr]
                tok2 = sess.token
                assert tok2 is not None and tok2.value != tok1.value
                assert issuer.count("/token") == 2
            finally:
                sess.close()
            assert srv.sent()[0] == f"Bearer {tok1.value}"
            assert srv.sent()[-1] == f"Bearer {tok2.value}"
    finally:
        issuer.stop()


# --- the token cache -------------------------------------------------------------------------------


def _cache_files() -> list[Path]:
    return sorted((cache_root() / "tokens").glob("*.json"))


def test_a_second_call_makes_no_request_to_the_issuer(
    issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    assert call(guarded, "--key-file", str(key)).code == 0
    assert issuer.count("/token") == 1
    token = issuer.minted[-1]
    issuer.clear()
    again = call(guarded, "--key-file", str(key))
    assert (again.code, again.lines) == (0, [HELLO])
    assert issuer.count() == 0  # no mint, and the server's certs are already loaded
    assert guarded.sent()[-1] == f"Bearer {token}"
    directory = cache_root() / "tokens"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [file] = _cache_files()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert json.loads(file.read_text())["token"] == token


def test_a_corrupt_cache_file_is_ignored(
    issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    assert call(guarded, "--key-file", str(key)).code == 0
    [file] = _cache_files()
    file.write_text("{not json")
    r = call(guarded, "--key-file", str(key))
    assert (r.code, r.stderr, r.lines) == (0, "", [HELLO])
    assert issuer.count("/token") == 2
    assert json.loads(file.read_text())["token"] == issuer.minted[-1]
    assert stat.S_IMODE(file.stat().st_mode) == 0o600


def test_a_group_readable_cache_file_is_ignored(
    issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    assert call(guarded, "--key-file", str(key)).code == 0
    [file] = _cache_files()
    os.chmod(file, 0o644)
    assert call(guarded, "--key-file", str(key)).code == 0
    assert issuer.count("/token") == 2


def test_no_token_cache(issuer: Issuer, guarded: Server, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    for _ in range(2):
        assert call(guarded, "--key-file", str(key), "--no-token-cache").code == 0
    assert issuer.count("/token") == 2
    assert _cache_files() == []


# --- output: claims, never the token ----------------------------------------------------------


def test_full_output_has_the_claims_never_the_token(
    issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(guarded, "--key-file", str(key), "-o", "full", "--show-token")
    assert r.code == 0
    token = issuer.minted[-1]
    assert r.json["token"] == decode_jwt(token).claims
    assert r.json["request_metadata"] == {"authorization": "Bearer <redacted>"}
    assert token not in r.stdout + r.stderr
    assert token.split(".")[2] not in r.stdout + r.stderr


def test_full_output_without_a_token(open_tls: Server) -> None:
    r = call(open_tls, "-o", "full")
    assert r.code == 0
    assert r.json["token"] is None
    assert r.json["request_metadata"] == {}


def test_verbose_pretty_shows_the_token_panel_redacted(
    issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(guarded, "--key-file", str(key), "-o", "pretty", "-v")
    assert r.code == 0
    token = issuer.minted[-1]
    lines = [ln.rstrip() for ln in r.stdout.splitlines()]
    assert squash(f"token from service-account key {key}") in squash(r.stdout)
    assert any(ln.split() == ["email", KEY_SA] for ln in lines)
    assert any(ln.split()[:2] == ["aud", AUD] for ln in lines)
    assert any(ln.split()[0] == "exp" and "(expires in 59m)" in ln for ln in lines)
    assert "  authorization: Bearer <redacted>" in lines
    assert token not in r.stdout
    assert token.split(".")[2] not in r.stdout


def test_token_panel_redacts_the_token_and_show_token_shows_it(
    issuer: Issuer, guarded: Server, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(guarded, "--key-file", str(key), "-o", "pretty", "-v")
    assert r.code == 0
    assert " token <redacted>  (--show-token shows it)" in r.stdout.splitlines()
    shown = call(guarded, "--key-file", str(key), "-o", "pretty", "-v", "--show-token")
    assert shown.code == 0
    assert f" token {issuer.minted[-1]}" in shown.stdout.splitlines()  # one line, copyable
    assert "  authorization: Bearer <redacted>" in shown.stdout.splitlines()
