"""Cloud Run's front end answering HTTP 401 / 403 / 503 before the app sees a call.

A real HTTP/2 responder (tests/support/frontend.py, on the `h2` library) answers
every request with a bare HTTP status, no grpc-status, no body — as Cloud Run's
front end does. gRPC turns that into UNAUTHENTICATED / PERMISSION_DENIED /
UNAVAILABLE "Received http2 header with status: N"; crgrpc exits 64+N and
explains it from what it sent ("Cloud Run's front end answers HTTP
401/403").
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_grpc_cli.core.auth.jwt import decode_jwt
from cloudrun_grpc_cli.core.hints import explain
from cloudrun_grpc_cli.core.session import open_session
from cloudrun_grpc_cli.core.target import parse_target
from cloudrun_grpc_cli.errors import RpcStatusError
from cloudrun_grpc_cli.settings import AuthSettings, ChannelSettings, Settings
from tests.support.cli import Result, run
from tests.support.frontend import FrontEnd, front_end
from tests.support.issuer import KEY_SA, USER_EMAIL, Issuer, issuer_fixture  # noqa: F401
from tests.support.tls import CertFiles, make_certs

REPO = Path(__file__).resolve().parents[1]
ECHO_PROTO = str(REPO / "protos" / "echo.proto")
AUD = "https://localhost"
DATA = '{"name": "x"}'
TRIED = "GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC file, metadata server"
EXIT = {401: 80, 403: 71, 503: 78}
ERROR = {
    401: "UNAUTHENTICATED: {what}Received http2 header with status: 401",
    403: "PERMISSION_DENIED: {what}Received http2 header with status: 403",
    503: "UNAVAILABLE: {what}Received http2 header with status: 503",
}
HINT_503 = (
    "hint: the front end answered HTTP 503 before the app saw the call: the service is "
    "unavailable (starting, scaled to its limit, or failing its health checks); "
    "--retries N waits for a cold start"
)
HINT_CUSTOM_DOMAIN = (
    "hint: behind a custom domain, Cloud Run expects the service's run.app URL or a custom "
    "audience configured on the service: pass it with --audience"
)
HINT_SERVERLESS = (
    "hint: if the app itself reads 'authorization', send the token in "
    "x-serverless-authorization with --serverless-auth"
)
REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    return make_certs(tmp_path_factory.mktemp("frontend-tls"))


@pytest.fixture
def plain_401() -> Iterator[FrontEnd]:
    with front_end(401) as fe:
        yield fe


def call(fe: FrontEnd, *args: str) -> Result:
    """`crgrpc call` of SayHello with the schema from echo.proto (no reflection)."""
    return run(
        "call", f"localhost:{fe.port}", "SayHello", "-d", DATA, "--proto", ECHO_PROTO, *args
    )


def err_lines(r: Result) -> list[str]:
    return r.stderr.splitlines()


def utc(timestamp: int) -> str:
    """A claim's time as crgrpc prints it, "2026-01-02 03:04:05 UTC" (written here, not
    taken from crgrpc; the relative part beside it is spelled out where it is used)."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def hints_401(token: str, source: str, *, header: str = "authorization") -> list[str]:
    """The two 401 hints for a token minted (lifetime 3600 s) just before the call."""
    claims = decode_jwt(token).claims
    if source.startswith("--token"):  # a fixed token: its own aud is what was sent
        sent = f"hint: audience sent: {claims['aud']} (the token's own); "
    else:
        sent = f"hint: audience sent: {AUD}; token aud: {claims['aud']}; "
    return [
        f"hint: Cloud Run's front end (HTTP 401) refused the token sent in {header}: it is "
        "invalid, expired or for another audience",
        sent + f"exp: {utc(claims['exp'])} (expires in 59m); "
        f"email: {claims.get('email', '(no email claim)')}; source: {source}",
    ]


HINT_CUSTOM_DOMAIN_FIXED = (
    "hint: behind a custom domain, Cloud Run expects the service's run.app URL or a custom "
    "audience configured on the service as the token's aud"
)


def hints_403(email: str, source: str, member: str = "serviceAccount") -> list[str]:
    return [
        f"hint: Cloud Run's front end (HTTP 403) refused the identity {email} (token from "
        f"{source}, aud {AUD})",
        f"hint: {email} may lack roles/run.invoker on the service: gcloud run services "
        "add-iam-policy-binding SERVICE --region REGION "
        f"--member={member}:{email} --role=roles/run.invoker",
    ]


# --- exit codes: the call itself and the reflection call ---------------------------------


@pytest.mark.parametrize("status", [401, 403, 503])
def test_status_of_the_call_itself(status: int, issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    with front_end(status) as fe:
        r = call(fe, "--plaintext", "--auth", "--token", token)
        assert fe.paths() == ["/echo.EchoServer/SayHello"]  # no reflection: --proto
        assert fe.requests[0]["authorization"] == f"Bearer {token}"
        assert "grpc-status" not in fe.requests[0]
    assert r.code == EXIT[status]
    assert r.stdout == ""
    assert err_lines(r)[0] == "error: " + ERROR[status].format(what="")
    if status == 401:
        assert err_lines(r)[1:] == [
            *hints_401(token, "--token"),
            HINT_CUSTOM_DOMAIN_FIXED,
            HINT_SERVERLESS,
        ]
    elif status == 403:
        assert err_lines(r)[1:] == hints_403(KEY_SA, "--token")
    else:
        assert err_lines(r)[1:] == [HINT_503]


@pytest.mark.parametrize("status", [401, 403, 503])
@pytest.mark.parametrize("command", ["list", "describe", "call"])
def test_status_of_the_reflection_call(status: int, command: str, issuer: Issuer) -> None:
    """The first call is reflection: its status is the exit code (64+N), token attached."""
    token = issuer.id_token(AUD, email=KEY_SA)
    extra = ["SayHello", "-d", DATA] if command == "call" else []
    with front_end(status) as fe:
        r = run(command, f"localhost:{fe.port}", *extra, "--plaintext", "--auth", "--token", token)
        assert fe.paths()[0] == REFLECTION
        assert "/echo.EchoServer/SayHello" not in fe.paths()
        assert {h["authorization"] for h in fe.requests} == {f"Bearer {token}"}
    assert r.code == EXIT[status]
    assert r.stdout == ""
    assert err_lines(r)[0] == "error: " + ERROR[status].format(what="reflection: ")


def test_reflection_401_is_explained_like_the_call(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    with front_end(401) as fe:
        r = run("list", f"localhost:{fe.port}", "--plaintext", "--auth", "--token", token)
    assert r.code == 80
    assert err_lines(r)[1:] == [*hints_401(token, "--token"), HINT_CUSTOM_DOMAIN_FIXED, HINT_SERVERLESS]


def test_reflection_403_diagnosed_by_explain(issuer: Issuer) -> None:
    """Reflection failures carry their session; core.hints.explain reads what was sent."""
    token = issuer.id_token(AUD, email=KEY_SA)
    with front_end(403) as fe:
        settings = Settings(
            channel=ChannelSettings(plaintext=True),
            auth=AuthSettings(token=token, auth=True),
        )
        with pytest.raises(RpcStatusError) as info:
            with open_session(parse_target(f"localhost:{fe.port}", plaintext=True), settings) as sess:
                sess.schema().list_services()
    err = info.value
    assert err.session is sess
    assert err.hints == ()
    explain(err)
    assert err.exit_code == 71
    assert [f"hint: {h}" for h in err.hints] == hints_403(KEY_SA, "--token")
    explain(err)  # once only
    assert len(err.hints) == 2


# --- over TLS, with minted tokens -----------------------------------------------------------


def test_tls_401_shows_audience_aud_and_exp_of_the_minted_token(
    issuer: Issuer, certs: CertFiles, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with front_end(401, tls=certs) as fe:
        r = call(fe, "--cacert", str(certs.ca), "--key-file", str(key))
        [sent] = fe.requests
    token = issuer.minted[-1]
    assert sent["authorization"] == f"Bearer {token}"
    assert r.code == 80
    assert err_lines(r) == [
        "error: UNAUTHENTICATED: Received http2 header with status: 401",
        *hints_401(token, f"service-account key {key}"),
        HINT_CUSTOM_DOMAIN,
        HINT_SERVERLESS,
    ]


def test_tls_403_names_the_email_and_run_invoker(
    issuer: Issuer, certs: CertFiles, tmp_path: Path
) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with front_end(403, tls=certs) as fe:
        r = call(fe, "--cacert", str(certs.ca), "--key-file", str(key))
    assert r.code == 71
    assert err_lines(r) == [
        "error: PERMISSION_DENIED: Received http2 header with status: 403",
        *hints_403(KEY_SA, f"service-account key {key}"),
    ]


def test_tls_503(certs: CertFiles, issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with front_end(503, tls=certs) as fe:
        r = call(fe, "--cacert", str(certs.ca), "--key-file", str(key))
    assert r.code == 78
    assert err_lines(r) == ["error: " + ERROR[503].format(what=""), HINT_503]


# --- what the 401 hints check ---------------------------------------------------------------


def test_401_wrong_audience_suggests_audience(issuer: Issuer, plain_401: FrontEnd) -> None:
    token = issuer.id_token("https://other-svc-uc.a.run.app", email=KEY_SA)
    r = call(plain_401, "--plaintext", "--auth", "--token", token)
    assert r.code == 80
    assert err_lines(r)[0].startswith("warning: --token: the token's aud is https://other-svc-uc.a.run.app")
    assert err_lines(r)[2:] == [
        *hints_401(token, "--token"),
        f"hint: its aud is not {AUD}, the target's audience: --audience cannot change a fixed "
        "token; mint one for the service's run.app URL or custom audience, or let crgrpc mint "
        "it (drop the token)",
        HINT_SERVERLESS,
    ]


def test_401_custom_audience_is_what_is_sent(issuer: Issuer, plain_401: FrontEnd) -> None:
    """--audience changes the audience sent; the hint shows it."""
    token = issuer.id_token("https://custom.example.com", email=KEY_SA)
    r = call(
        plain_401, "--plaintext", "--auth", "--token", token,
        "--audience", "https://custom.example.com",
    )
    assert r.code == 80
    assert err_lines(r)[2].startswith(
        "hint: audience sent: https://custom.example.com (the token's own);"
    )


def test_401_expired_token_says_expired(issuer: Issuer) -> None:
    """The token expires while the front end thinks (it answers after 3 s)."""

    def slow(path: str) -> int:
        time.sleep(3)
        return 401

    token = issuer.id_token(AUD, email=KEY_SA, lifetime=2)
    with front_end(answer=slow) as fe:
        r = call(fe, "--plaintext", "--auth", "--token", token)
    assert r.code == 80
    lines = err_lines(r)
    exp = decode_jwt(token).claims["exp"]
    assert lines[2] in {
        f"hint: audience sent: {AUD} (the token's own); exp: {utc(exp)} (expired {ago} ago); "
        f"email: {KEY_SA}; source: --token"
        for ago in ("1s", "2s", "3s")
    }
    assert lines[3] == (
        "hint: the token has expired: mint a new one (or drop it and let crgrpc mint one)"
    )


def test_401_with_serverless_auth(issuer: Issuer, plain_401: FrontEnd) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = call(plain_401, "--plaintext", "--auth", "--token", token, "--serverless-auth")
    [sent] = plain_401.requests
    assert sent["x-serverless-authorization"] == f"Bearer {token}"
    assert "authorization" not in sent
    assert r.code == 80
    assert err_lines(r)[1:] == [
        *hints_401(token, "--token", header="x-serverless-authorization"),
        HINT_CUSTOM_DOMAIN_FIXED,
    ]


def test_401_with_your_own_authorization_header(plain_401: FrontEnd) -> None:
    r = call(plain_401, "--plaintext", "-H", "authorization: Bearer opaque")
    [sent] = plain_401.requests
    assert sent["authorization"] == "Bearer opaque"
    assert r.code == 80
    assert err_lines(r)[1:] == [
        "hint: Cloud Run's front end (HTTP 401) refused the authorization header you passed "
        "with -H (crgrpc sent no token of its own)",
        "hint: drop -H to let crgrpc mint an ID token for the target's audience",
    ]


# --- 403: who, or no token and why ----------------------------------------------------------


def test_403_gcloud_user_is_a_user_member(issuer: Issuer) -> None:
    from tests.support.issuer import USER_CLIENT_ID

    token = issuer.id_token(USER_CLIENT_ID, email=USER_EMAIL)
    with front_end(403) as fe:
        r = call(fe, "--plaintext", "--auth", "--token", token)
    assert r.code == 71
    assert err_lines(r)[0].startswith(f"warning: --token: the token's aud is {USER_CLIENT_ID}")
    assert err_lines(r)[2:] == [
        f"hint: Cloud Run's front end (HTTP 403) refused the identity {USER_EMAIL} (token from "
        f"--token, aud {USER_CLIENT_ID})",
        f"hint: {USER_EMAIL} may lack roles/run.invoker on the service: gcloud run services "
        f"add-iam-policy-binding SERVICE --region REGION --member=user:{USER_EMAIL} "
        "--role=roles/run.invoker",
    ]


def test_403_token_without_email(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, sub="111")
    with front_end(403) as fe:
        r = call(fe, "--plaintext", "--auth", "--token", token)
    assert r.code == 71
    assert err_lines(r)[1] == (
        "hint: Cloud Run's front end (HTTP 403) refused the identity sub 111 (no email claim) "
        f"(token from --token, aud {AUD})"
    )
    assert err_lines(r)[-1] == (
        "hint: the token carries no email claim: with --impersonate-service-account add "
        "--include-email"
    )


def test_403_no_token_found_says_so_and_why(certs: CertFiles) -> None:
    with front_end(403, tls=certs) as fe:
        r = call(fe, "--cacert", str(certs.ca))
        assert "authorization" not in fe.requests[0]
    assert r.code == 71
    assert err_lines(r) == [
        "error: PERMISSION_DENIED: Received http2 header with status: 403",
        f"hint: no token was sent (no Google credentials found (tried: {TRIED}))",
        "hint: pass --key-file, --impersonate-service-account or --token, or run "
        "`gcloud auth application-default login`",
    ]


def test_403_no_auth(certs: CertFiles, issuer: Issuer, tmp_path: Path) -> None:
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with front_end(403, tls=certs) as fe:
        r = call(fe, "--cacert", str(certs.ca), "--key-file", str(key), "--no-auth")
        assert "authorization" not in fe.requests[0]
    assert issuer.count("/token") == 0
    assert r.code == 71
    assert err_lines(r)[1:] == ["hint: no token was sent (--no-auth)"]


def test_401_plaintext_not_asked(plain_401: FrontEnd) -> None:
    r = call(plain_401, "--plaintext")
    assert r.code == 80
    assert err_lines(r)[1:] == [
        "hint: no token was sent (a plaintext target gets a token only when asked (--auth or "
        "a token source))",
    ]


def test_403_gcloud_user_token_withheld_names_auth(
    issuer: Issuer, certs: CertFiles, isolated_env: Path
) -> None:
    (isolated_env / "gcloud").mkdir(exist_ok=True)
    issuer.write_authorized_user(isolated_env / "gcloud" / "application_default_credentials.json")
    why = (
        "not sending the gcloud user's ID token to localhost: its audience is the OAuth client, "
        "not this service, so whoever receives it can replay it against every service that "
        "user may invoke; --auth sends it anyway"
    )
    with front_end(403, tls=certs) as fe:
        r = call(fe, "--cacert", str(certs.ca))
        assert "authorization" not in fe.requests[0]
    assert r.code == 71
    assert err_lines(r) == [
        f"note: {why}",
        "error: PERMISSION_DENIED: Received http2 header with status: 403",
        "hint: no token was sent (see the note above)",  # a hint never repeats a note
    ]
