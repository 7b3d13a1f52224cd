"""Corporate egress proxies (issue 13): --proxy and the proxy variables carry the gRPC
connection (CONNECT) and every HTTP request crgrpc makes (token endpoint, IAM, STS, the
Admin API, certs) through a local proxy that logs what passed; a proxy that refuses
(407, 403, a refused connection) is exit 4 naming it, never its password.

The local stand-ins speak plain HTTP, so requests forwards to them through the proxy
with an absolute URI (what it does for http:// URLs); gRPC always tunnels with CONNECT.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudrun_grpc_cli.demo.tokencheck import TokenCheck
from tests.support.cli import run
from tests.support.connectproxy import ConnectProxy, connect_proxy
from tests.support.issuer import DEFAULT_SA, KEY_SA, TARGET_SA, Issuer, issuer_fixture  # noqa: F401
from tests.support.oracle import bearer, google_verified
from tests.support.recorder import MetadataRecorder
from tests.support.runapi import (  # noqa: F401
    PROJECT,
    REGION,
    RUN,
    CloudRun,
    cloud_run_fixture,
    run_certs_fixture,
)
from tests.support.servers import RunningServer, echo_server
from tests.support.tls import CertFiles

AUD = "https://localhost"
DATA = '{"name": "x"}'
HELLO = '{"message":"Hello x from K_REVISION local"}\n'
PASSWORD = "s3cr3t-proxy-pass"


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with connect_proxy() as p:
        yield p


@pytest.fixture
def guarded(issuer: Issuer, run_certs: CertFiles) -> Iterator[tuple[RunningServer, MetadataRecorder]]:
    recorder = MetadataRecorder()
    check = TokenCheck(AUD, certs=issuer.certs_url, allowed_emails=(KEY_SA, TARGET_SA, DEFAULT_SA))
    with echo_server(tls=run_certs, interceptors=(recorder, check)) as srv:
        yield srv, recorder


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def call(port: int, ca: Path, *args: str) -> object:
    return run("call", f"localhost:{port}", "SayHello", "-d", DATA, "--cacert", str(ca), *args)


# --- through the proxy ------------------------------------------------------------------------


def test_a_mint_and_a_call_go_through_the_proxy(
    issuer: Issuer, guarded: tuple[RunningServer, MetadataRecorder], proxy: ConnectProxy,
    run_certs: CertFiles, tmp_path: Path,
) -> None:
    srv, recorder = guarded
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    r = call(srv.port, run_certs.ca, "--key-file", str(key), "--proxy", proxy.url)
    assert (r.code, r.stdout, r.stderr) == (0, HELLO, "")
    assert proxy.methods() == [("POST", issuer.token_uri), ("CONNECT", f"localhost:{srv.port}")]
    tunnel = proxy.log[1]
    assert tunnel.status == 200 and tunnel.bytes_up > 0 and tunnel.bytes_down > 0
    token = bearer(recorder.headers_for("SayHello")[-1]["authorization"])
    assert google_verified(token, audience=AUD, certs_url=issuer.certs_url)["email"] == KEY_SA


def test_proxy_credentials_are_sent_and_never_shown(
    issuer: Issuer, guarded: tuple[RunningServer, MetadataRecorder], run_certs: CertFiles, tmp_path: Path,
) -> None:
    srv, _ = guarded
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with connect_proxy(credentials=f"alice:{PASSWORD}") as p:
        ok = call(srv.port, run_certs.ca, "--key-file", str(key), "--proxy", p.url_with(f"alice:{PASSWORD}"), "-v", "-o", "full")
        assert ok.code == 0, ok
        assert {e.proxy_authorization for e in p.log} == {"Basic YWxpY2U6czNjcjN0LXByb3h5LXBhc3M="}
        wrong = call(srv.port, run_certs.ca, "--no-auth", "--proxy", p.url_with("alice:wrong-password-123"))
    assert PASSWORD not in ok.stdout + ok.stderr
    assert (wrong.code, wrong.stdout) == (4, "")
    assert wrong.stderr.splitlines()[0] == (
        f"error: the proxy http://alice@127.0.0.1:{p.port} refused the connection to "
        f"localhost:{srv.port}: HTTP 407 Proxy Authentication Required"
    )
    assert "wrong-password-123" not in wrong.stderr


def test_run_targets_ask_the_admin_api_through_the_proxy(cloud_run: CloudRun, proxy: ConnectProxy) -> None:
    r = run("call", RUN, "SayHello", "-d", DATA, *cloud_run.args(), "--proxy", proxy.url)
    assert (r.code, r.stdout, r.stderr) == (0, HELLO, "")
    api = f"{cloud_run.api.url}/v2/projects/{PROJECT}/locations/{REGION}/services/echo"
    assert proxy.methods() == [
        ("POST", cloud_run.issuer.token_uri),  # the access token
        ("GET", api),
        ("POST", cloud_run.issuer.token_uri),  # the ID token
        ("CONNECT", f"localhost:{cloud_run.port}"),
    ]


def _key(issuer: Issuer, tmp: Path, mp: pytest.MonkeyPatch) -> tuple[list[str], list[tuple[str, str]]]:
    key = issuer.write_service_account_key(tmp / "sa.json")
    return ["--key-file", str(key)], [("POST", issuer.token_uri)]


def _impersonation(issuer: Issuer, tmp: Path, mp: pytest.MonkeyPatch) -> tuple[list[str], list[tuple[str, str]]]:
    key = issuer.write_service_account_key(tmp / "sa.json")
    iam = f"{issuer.url}/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken"
    args = ["--key-file", str(key), "--impersonate-service-account", TARGET_SA, "--iam-endpoint", issuer.url, "--include-email"]
    return args, [("POST", issuer.token_uri), ("POST", iam)]


def _sts(issuer: Issuer, tmp: Path, mp: pytest.MonkeyPatch) -> tuple[list[str], list[tuple[str, str]]]:
    mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(issuer.write_external_account(tmp / "wif.json", tmp / "oidc.txt", TARGET_SA)))
    iam = f"{issuer.url}/v1/projects/-/serviceAccounts/{TARGET_SA}:generateIdToken"
    return ["--include-email"], [("POST", f"{issuer.url}/v1/token"), ("POST", iam)]


@pytest.mark.parametrize("source", [_key, _impersonation, _sts], ids=["token endpoint", "IAM", "STS"])
def test_every_mint_request_goes_through_the_proxy(
    source: object, issuer: Issuer, guarded: tuple[RunningServer, MetadataRecorder], proxy: ConnectProxy,
    run_certs: CertFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = guarded
    args, expected = source(issuer, tmp_path, monkeypatch)  # type: ignore[operator]
    r = call(srv.port, run_certs.ca, *args, "--proxy", proxy.url)
    assert (r.code, r.stdout, r.stderr) == (0, HELLO, "")
    assert proxy.methods() == [*expected, ("CONNECT", f"localhost:{srv.port}")]


def test_the_metadata_server_is_reached_directly(
    issuer: Issuer, guarded: tuple[RunningServer, MetadataRecorder], proxy: ConnectProxy,
    run_certs: CertFiles, monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = guarded
    monkeypatch.setenv("GCE_METADATA_HOST", issuer.host)
    monkeypatch.setenv("GCE_METADATA_IP", issuer.host)
    r = call(srv.port, run_certs.ca, "--proxy", proxy.url, "-o", "full")
    assert (r.code, r.stderr) == (0, "")
    assert r.json["token"]["email"] == DEFAULT_SA
    assert proxy.methods() == [("CONNECT", f"localhost:{srv.port}")]
    assert issuer.count("/computeMetadata/") >= 1


def test_certs_for_verify_are_fetched_through_the_proxy(issuer: Issuer, proxy: ConnectProxy) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    r = run("token", "decode", token, "--verify", "--audience", AUD, "--certs", issuer.certs_url, "--proxy", proxy.url, "-o", "json")
    assert (r.code, r.stderr) == (0, "")
    assert r.json["verification"]["ok"] is True
    assert proxy.methods() == [("GET", issuer.certs_url)]


# --- the variables ------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["https_proxy", "HTTPS_PROXY", "grpc_proxy"])
def test_the_proxy_variables_carry_the_grpc_connection(
    variable: str, guarded: tuple[RunningServer, MetadataRecorder], proxy: ConnectProxy,
    run_certs: CertFiles, monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = guarded
    monkeypatch.setenv(variable, proxy.url)
    r = run("list", f"localhost:{srv.port}", "--cacert", str(run_certs.ca), "--no-auth")
    assert r.code == 80  # the token check refuses reflection without a token: it got there
    assert proxy.methods() == [("CONNECT", f"localhost:{srv.port}")]


def test_https_proxy_carries_the_admin_api_and_http_proxy_the_http_endpoints(
    cloud_run: CloudRun, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https_proxy is for https:// URLs and gRPC; the local stand-ins are http://, which
    http_proxy carries (as requests and curl have it)."""
    monkeypatch.setenv("https_proxy", proxy.url)
    assert run("call", RUN, "SayHello", "-d", DATA, *cloud_run.args()).code == 0
    assert proxy.methods() == [("CONNECT", f"localhost:{cloud_run.port}")]
    proxy.log.clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(Path(cloud_run.key).parent / "cache2"))
    monkeypatch.delenv("https_proxy")
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", "localhost")  # gRPC would use http_proxy too: not for localhost
    assert run("call", RUN, "SayHello", "-d", DATA, *cloud_run.args()).code == 0
    api = f"{cloud_run.api.url}/v2/projects/{PROJECT}/locations/{REGION}/services/echo"
    assert ("GET", api) in proxy.methods()
    assert ("CONNECT", f"localhost:{cloud_run.port}") not in proxy.methods()


@pytest.mark.parametrize("no_proxy", ["localhost", ".localhost,example.com", "*", "127.0.0.0/8,localhost"])
def test_no_proxy_reaches_hosts_directly(
    no_proxy: str, guarded: tuple[RunningServer, MetadataRecorder], proxy: ConnectProxy,
    run_certs: CertFiles, monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = guarded
    monkeypatch.setenv("https_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", no_proxy)
    r = run("list", f"localhost:{srv.port}", "--cacert", str(run_certs.ca), "--no-auth")
    assert r.code == 80
    assert proxy.methods() == []


def test_no_proxy_applies_to_the_proxy_flag_too(
    guarded: tuple[RunningServer, MetadataRecorder], proxy: ConnectProxy, run_certs: CertFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, _ = guarded
    monkeypatch.setenv("NO_PROXY", "localhost")
    r = run("list", f"localhost:{srv.port}", "--cacert", str(run_certs.ca), "--no-auth", "--proxy", proxy.url)
    assert r.code == 80
    assert proxy.methods() == []


# --- a proxy that refuses --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 407])
def test_a_refusing_proxy_is_exit_4_for_grpc(
    status: int, guarded: tuple[RunningServer, MetadataRecorder], run_certs: CertFiles
) -> None:
    srv, recorder = guarded
    words = {403: "Forbidden", 407: "Proxy Authentication Required"}[status]
    with connect_proxy(refuse=status) as p:
        r = call(srv.port, run_certs.ca, "--no-auth", "--proxy", p.url_with(f"bob:{PASSWORD}"))
    assert (r.code, r.stdout) == (4, "")
    first_hint = {
        403: "the proxy does not allow this destination: ask its administrators, or list it in no_proxy",
        407: "the proxy wants credentials: --proxy http://USER:PASSWORD@HOST:PORT (or the same in https_proxy)",
    }[status]
    assert r.stderr == (
        f"error: the proxy http://bob@127.0.0.1:{p.port} refused the connection to localhost:{srv.port}: "
        f"HTTP {status} {words}\n"
        f"hint: {first_hint}\n"
        "hint: no_proxy lists the hosts reached directly (no_proxy='*': every host)\n"
    )
    assert PASSWORD not in r.stderr
    assert recorder.calls == []


def test_a_proxy_refusing_the_token_endpoint_is_exit_4(
    issuer: Issuer, guarded: tuple[RunningServer, MetadataRecorder], run_certs: CertFiles, tmp_path: Path
) -> None:
    srv, _ = guarded
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    with connect_proxy(refuse=407) as p:
        r = call(srv.port, run_certs.ca, "--key-file", str(key), "--proxy", p.url_with(f"bob:{PASSWORD}"))
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr.splitlines()[0] == (
        f"error: the proxy http://bob@127.0.0.1:{p.port} refused the connection to "
        f"127.0.0.1:{issuer.port}: HTTP 407 Proxy Authentication Required"
    )
    assert issuer.count() == 0 and PASSWORD not in r.stderr


def test_a_proxy_refusing_the_admin_api_over_https_is_exit_4(
    cloud_run: CloudRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https:// Admin API is reached by CONNECT: a 403 there is the proxy's own. (The
    access token comes from the metadata server, which is reached directly.)"""
    monkeypatch.setenv("GCE_METADATA_HOST", cloud_run.issuer.host)
    monkeypatch.setenv("GCE_METADATA_IP", cloud_run.issuer.host)
    with connect_proxy(refuse=403) as p:
        r = run("call", RUN, "SayHello", "--run-api", "https://127.0.0.1:9", "--proxy", p.url)
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr.splitlines()[0] == (
        f"error: the proxy http://127.0.0.1:{p.port} refused the connection to 127.0.0.1:9: HTTP 403 Forbidden"
    )
    assert p.methods() == [("CONNECT", "127.0.0.1:9")]


def test_a_proxy_refusing_a_connect_to_https_is_exit_4(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    with connect_proxy(refuse=403) as p:
        r = run("token", "decode", token, "--verify", "--certs", "https://127.0.0.1:9/certs", "--proxy", p.url)
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr.splitlines()[0] == (
        f"error: the proxy http://127.0.0.1:{p.port} refused the connection to 127.0.0.1:9: HTTP 403 Forbidden"
    )
    assert p.methods() == [("CONNECT", "127.0.0.1:9")]


def test_a_proxy_that_is_not_there_is_exit_4(
    issuer: Issuer, guarded: tuple[RunningServer, MetadataRecorder], run_certs: CertFiles, tmp_path: Path
) -> None:
    srv, _ = guarded
    port = closed_port()
    grpc_only = call(srv.port, run_certs.ca, "--no-auth", "--proxy", f"http://carol:{PASSWORD}@127.0.0.1:{port}")
    assert (grpc_only.code, grpc_only.stdout) == (4, "")
    assert grpc_only.stderr == (
        f"error: cannot reach the proxy http://carol@127.0.0.1:{port}: connection refused\n"
        "hint: check the proxy's host and port (--proxy, https_proxy, grpc_proxy)\n"
        "hint: no_proxy lists the hosts reached directly (no_proxy='*': every host)\n"
    )
    key = issuer.write_service_account_key(tmp_path / "sa.json")
    mint = call(srv.port, run_certs.ca, "--key-file", str(key), "--proxy", f"http://127.0.0.1:{port}")
    assert (mint.code, mint.stdout) == (4, "")
    assert mint.stderr.splitlines()[0] == f"error: cannot reach the proxy http://127.0.0.1:{port}: connection refused"
    assert PASSWORD not in grpc_only.stderr


def test_a_refusing_proxy_from_a_variable_is_named_with_it(
    guarded: tuple[RunningServer, MetadataRecorder], run_certs: CertFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    srv, _ = guarded
    with connect_proxy(refuse=403) as p:
        monkeypatch.setenv("HTTPS_PROXY", p.url)
        r = call(srv.port, run_certs.ca, "--no-auth")
    assert r.code == 4
    assert r.stderr.splitlines()[0] == (
        f"error: the proxy http://127.0.0.1:{p.port} (from HTTPS_PROXY) refused the connection to "
        f"localhost:{srv.port}: HTTP 403 Forbidden"
    )


# --- bad values, config show, doctor ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://proxy:3128", "--proxy: unsupported proxy scheme 'https'"),
        ("socks5://proxy:1080", "--proxy: unsupported proxy scheme 'socks5'"),
        ("http://proxy:3128/path", "--proxy: invalid proxy URL 'http://proxy:3128/path'"),
        ("http://:3128", "--proxy: invalid proxy URL 'http://:3128'"),
    ],
)
def test_a_bad_proxy_is_exit_2(value: str, message: str) -> None:
    r = run("call", "localhost:1", "SayHello", "--proxy", value)
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr.splitlines()[0] == f"error: {message}"


def test_a_bad_proxy_variable_is_exit_2_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "socks5://proxy:1080")
    r = run("list", "localhost:1", "--no-auth")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr.splitlines()[0] == "error: https_proxy (a proxy variable): unsupported proxy scheme 'socks5'"


def test_config_show_redacts_the_proxy_password() -> None:
    r = run("config", "show", "--proxy", f"http://alice:{PASSWORD}@proxy.example:3128", "-o", "json")
    assert r.code == 0
    assert r.json["settings"]["proxy"] == {"value": "http://alice:<redacted>@proxy.example:3128", "source": "flag"}
    assert PASSWORD not in r.stdout


def test_doctor_connect_says_the_proxy_is_used(cloud_run: CloudRun, proxy: ConnectProxy) -> None:
    r = run("doctor", RUN, *cloud_run.args(), "--proxy", proxy.url)
    assert (r.code, r.stderr) == (0, ""), r
    connect = next(line for line in r.lines if line["check"] == "connect")
    assert connect["result"] == "ok"
    assert connect["detail"].startswith(
        f"localhost:{cloud_run.port}: through the proxy http://127.0.0.1:{proxy.port}, TCP, TLSv1.3, "
        "certificate valid for localhost"
    )
    connects = proxy.targets("CONNECT")
    assert connects and set(connects) == {f"localhost:{cloud_run.port}"}
    assert json.dumps(r.lines).count("through the proxy") == 1


def test_doctor_connect_fails_on_a_refusing_proxy(cloud_run: CloudRun) -> None:
    with connect_proxy(refuse=403) as p:
        r = run("doctor", f"localhost:{cloud_run.port}", "--cacert", str(cloud_run.certs.ca), "--no-auth", "--proxy", p.url)
    rows = {line["check"]: line for line in r.lines}
    assert r.code == 4
    assert rows["connect"] == {
        "check": "connect", "result": "fail",
        "detail": f"the proxy http://127.0.0.1:{p.port} refused the connection to localhost:{cloud_run.port}: HTTP 403 Forbidden",
        "hint": "the proxy does not allow this destination: ask its administrators, or list it in no_proxy",
    }


@pytest.mark.parametrize("variable", ["https_proxy", "HTTPS_PROXY"])
def test_the_https_variables_carry_https_requests(
    variable: str, issuer: Issuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An https:// URL (Google's endpoints) goes through https_proxy / HTTPS_PROXY."""
    token = issuer.id_token(AUD, email=KEY_SA)
    with connect_proxy(refuse=403) as p:
        monkeypatch.setenv(variable, p.url)
        r = run("token", "decode", token, "--verify", "--certs", "https://127.0.0.1:9/certs")
    assert (r.code, r.stdout) == (4, "")
    assert r.stderr.splitlines()[0] == (
        f"error: the proxy http://127.0.0.1:{p.port} (from {variable}) refused the connection to "
        "127.0.0.1:9: HTTP 403 Forbidden"
    )
    assert p.methods() == [("CONNECT", "127.0.0.1:9")]


def test_a_proxy_carries_an_https_request_that_succeeds(
    issuer: Issuer, run_certs: CertFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """https_proxy opens a CONNECT tunnel to a TLS endpoint that answers: the certs are
    fetched through it (TLS inside the tunnel, verified against its CA) and the token verifies."""
    import ssl

    from cloudrun_grpc_cli.demo.httpserver import serve_http, stop_http

    def certs(request: Any, method: str) -> None:
        body = json.dumps(issuer.certs_pem_map()).encode()
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(run_certs.cert, run_certs.key)
    server = serve_http(certs, methods=("GET",), tls=context)
    port = server.server_address[1]
    token = issuer.id_token(AUD, email=KEY_SA)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(run_certs.ca))
    try:
        with connect_proxy() as p:
            monkeypatch.setenv("https_proxy", p.url)
            r = run("token", "decode", token, "--verify", "--certs", f"https://localhost:{port}/oauth2/v1/certs", "-o", "json")
    finally:
        stop_http(server)
    assert (r.code, r.stderr) == (0, ""), r
    assert p.methods() == [("CONNECT", f"localhost:{port}")]
    verification = json.loads(r.stdout)["verification"]
    assert verification["ok"] is True
    assert verification["checks"][0] == {"check": "signature", "ok": True, "detail": "RS256, kid issuer-key-1"}


@pytest.mark.parametrize("pieces", [
    [b"HTTP/1.1 200 Connection established\r\n\r\nSERVER SPEAKS FIRST"],
    [b"HTTP/1.1 200 OK\r\nVia: x\r\n\r", b"\nSERVER SPEAKS FIRST"],
])
def test_a_tunnel_keeps_what_the_server_sent_with_the_proxys_answer(pieces: list[bytes]) -> None:
    """An HTTP/2 server speaks first: its bytes can arrive in the same segment as the
    proxy's 200 (or the answer's end in the next one). The tunnel hands them all on."""
    import threading
    import time

    from cloudrun_grpc_cli.core import egress

    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            for piece in pieces:
                conn.sendall(piece)
                time.sleep(0.05)
            time.sleep(1)

    threading.Thread(target=answer, daemon=True).start()
    try:
        proxy = egress.parse_proxy(f"http://127.0.0.1:{listener.getsockname()[1]}")
        with egress.connect("svc.example", 443, proxy, 5) as sock:
            got = b""
            while len(got) < len(b"SERVER SPEAKS FIRST"):
                chunk = sock.recv(100)
                assert chunk, got
                got += chunk
        assert got == b"SERVER SPEAKS FIRST"
    finally:
        listener.close()
