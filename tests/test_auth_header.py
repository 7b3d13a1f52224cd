"""--auth-header (issue 13): the token goes in authorization, x-serverless-authorization or
proxy-authorization (IAP, keeping authorization free for the app); --serverless-auth stays
the short form of the second; each placement is redacted in every output mode.

The TLS Echo server's token check reads only the header under test, so a call that
succeeds proves where the token went; a recorder shows everything that was sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from tests.support.cli import Result, run
from tests.support.issuer import KEY_SA, Issuer, issuer_fixture  # noqa: F401
from tests.support.oracle import bearer, google_verified
from tests.support.recorder import MetadataRecorder
from tests.support.runapi import run_certs_fixture  # noqa: F401
from tests.support.servers import echo_server
from tests.support.tls import CertFiles

AUD = "https://localhost"
HEADERS = ["authorization", "x-serverless-authorization", "proxy-authorization"]
HELLO = {"message": "Hello r from K_REVISION local"}


@pytest.fixture
def key(issuer: Issuer, tmp_path: Path) -> Path:
    return issuer.write_service_account_key(tmp_path / "sa.json")


class Guarded:
    def __init__(self, port: int, recorder: MetadataRecorder, check: TokenCheck, ca: Path) -> None:
        self.port, self.recorder, self.check, self.ca = port, recorder, check, ca

    def call(self, *args: str, tty: bool = False) -> Result:
        return run("call", f"localhost:{self.port}", "SayHello", "-d", '{"name":"r"}', "--cacert", str(self.ca), *args, tty=tty)

    def sent(self) -> dict[str, str | bytes]:
        return self.recorder.headers_for("SayHello")[-1]


@pytest.fixture
def guarded(issuer: Issuer, run_certs: CertFiles) -> Iterator[Guarded]:
    recorder = MetadataRecorder()
    check = TokenCheck(AUD, certs=issuer.certs_url, allowed_emails=(KEY_SA,))
    with echo_server(tls=run_certs, interceptors=(recorder, check)) as srv:
        yield Guarded(srv.port, recorder, check, run_certs.ca)


@pytest.mark.parametrize("header", HEADERS)
def test_the_token_goes_in_the_chosen_header_and_is_redacted_everywhere(
    header: str, guarded: Guarded, key: Path, issuer: Issuer
) -> None:
    guarded.check.headers = (header,)  # the server reads only this header
    base = ("--key-file", str(key), "--auth-header", header)

    pretty = guarded.call(*base, "-v", tty=True)
    assert pretty.code == 0, pretty
    assert f"  {header}: Bearer <redacted>" in pretty.stdout.splitlines()

    doc = guarded.call(*base, "-o", "full").json
    assert doc["request_metadata"] == {header: "Bearer <redacted>"}
    assert doc["messages"] == [HELLO]

    ev = guarded.call(*base, "-o", "events", "-v")
    assert ev.lines[0]["event"] == "request"
    assert ev.lines[0]["metadata"] == {header: "Bearer <redacted>"}

    js = guarded.call(*base, "-o", "json", "-v")
    assert js.lines == [HELLO]
    assert json.loads(js.stderr)["request"]["metadata"] == {header: "Bearer <redacted>"}

    sent = guarded.sent()
    assert [h for h in HEADERS if h in sent] == [header]
    token = bearer(sent[header])
    assert google_verified(token, audience=AUD, certs_url=issuer.certs_url)["email"] == KEY_SA
    for r in (pretty, ev, js):
        assert token not in r.stdout + r.stderr
    assert token not in json.dumps(doc)


def test_serverless_auth_is_the_short_form(guarded: Guarded, key: Path) -> None:
    guarded.check.headers = ("x-serverless-authorization",)
    short = guarded.call("--key-file", str(key), "--serverless-auth")
    both = guarded.call("--key-file", str(key), "--serverless-auth", "--auth-header", "x-serverless-authorization")
    assert (short.code, short.lines, both.code) == (0, [HELLO], 0)
    assert "authorization" not in guarded.sent()


def test_proxy_authorization_keeps_authorization_for_the_app(guarded: Guarded, key: Path, issuer: Issuer) -> None:
    """IAP reads proxy-authorization; the app's own authorization header passes through."""
    guarded.check.headers = ("proxy-authorization",)
    app = "Bearer app-session-token-0123456789"
    r = guarded.call("--key-file", str(key), "--auth-header", "proxy-authorization", "-H", f"authorization: {app}", "-o", "full")
    assert (r.code, r.stderr) == (0, "")
    assert r.json["request_metadata"] == {"authorization": "Bearer <redacted>", "proxy-authorization": "Bearer <redacted>"}
    sent = guarded.sent()
    assert sent["authorization"] == app
    assert google_verified(bearer(sent["proxy-authorization"]), audience=AUD, certs_url=issuer.certs_url)
    assert "app-session-token" not in r.stdout


def test_a_refused_token_names_its_header(guarded: Guarded, key: Path) -> None:
    guarded.check.audience = "https://elsewhere.example"
    r = guarded.call("--key-file", str(key), "--auth-header", "proxy-authorization")
    assert r.code == 80
    assert (
        "hint: the server refused the token sent in proxy-authorization: it is invalid, expired "
        "or for another audience"
    ) in r.stderr.splitlines()


@pytest.mark.parametrize("header", HEADERS)
def test_the_header_from_the_variable_and_the_config_file(
    header: str, guarded: Guarded, key: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarded.check.headers = (header,)
    monkeypatch.setenv("CRGRPC_AUTH_HEADER", header)
    assert guarded.call("--key-file", str(key)).code == 0
    monkeypatch.delenv("CRGRPC_AUTH_HEADER")
    path = isolated_env / "config" / "crgrpc" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[defaults]\nauth_header = "{header}"\n')
    assert guarded.call("--key-file", str(key)).code == 0
    assert [h for h in HEADERS if h in guarded.sent()] == [header]


def test_an_unknown_header_is_exit_2() -> None:
    r = run("call", "localhost:1", "SayHello", "--auth-header", "cookie")
    assert (r.code, r.stdout, r.stderr) == (
        2, "",
        "error: unknown --auth-header 'cookie'\n"
        "hint: use authorization, x-serverless-authorization or proxy-authorization\n",
    )


def test_serverless_auth_conflicts_with_another_header() -> None:
    r = run("call", "localhost:1", "SayHello", "--serverless-auth", "--auth-header", "proxy-authorization")
    assert (r.code, r.stdout, r.stderr) == (
        2, "",
        "error: --serverless-auth conflicts with --auth-header proxy-authorization\n"
        "hint: --serverless-auth is --auth-header x-serverless-authorization: give one of them\n",
    )


def test_your_own_header_of_that_name_wins(guarded: Guarded, key: Path) -> None:
    own = "Bearer my-own-token-value-0123456789"
    r = guarded.call("--key-file", str(key), "--auth-header", "proxy-authorization", "-H", f"proxy-authorization: {own}")
    assert r.stderr.splitlines()[0] == "note: --key-file not used: your -H proxy-authorization header is sent instead"
    assert guarded.recorder.calls and guarded.recorder.calls[-1][1]["proxy-authorization"] == own
