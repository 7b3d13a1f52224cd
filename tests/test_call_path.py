"""One call path (issue 9): the documents of every failure class, redaction of every
secret header in every mode, and completion's session matching the real one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run
from .support.frontend import front_end
from .support.issuer import KEY_SA, Issuer, issuer_fixture  # noqa: F401
from .support.recorder import MetadataRecorder
from .support.servers import echo_server

AUD = "https://localhost"
REFUSED_HINTS = [
    "is the server running and listening on that port?",
    "gRPC said: failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
    "Failed to connect to remote host: Connection refused",
]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


def full(*argv: str, stdin: str = "") -> tuple[int, dict, list[str]]:
    r = run(*argv, "-o", "full", stdin=stdin)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r  # exactly one document, whatever happened
    doc = json.loads(lines[0])
    assert isinstance(doc.pop("elapsed_ms"), (int, float))
    return r.code, doc, r.stderr.splitlines()


def events(*argv: str, stdin: str = "") -> tuple[int, list[dict], list[str]]:
    r = run(*argv, "-o", "events", stdin=stdin)
    return r.code, r.lines, r.stderr.splitlines()


# --- -o full: one document shape for every failure -------------------------------------------


def test_full_connection_refused() -> None:
    code, doc, err = full("call", "--plaintext", "127.0.0.1:1", "echo.EchoServer/SayHello")
    assert code == 4
    message = "cannot connect to 127.0.0.1:1: connection refused"
    assert doc == {
        "method": "echo.EchoServer/SayHello",
        "request_metadata": {},
        "token": None,
        "headers": {},
        "messages": [],
        "trailers": {},
        "status": {"code": 14, "name": "UNAVAILABLE", "message": message, "details": []},
        "error": {"exit_code": 4, "message": message, "hints": REFUSED_HINTS},
    }
    assert err == [f"error: {message}", *(f"hint: {h}" for h in REFUSED_HINTS)]


def test_full_unknown_method(server: str) -> None:
    code, doc, err = full("call", "--plaintext", server, "NoSuchMethod")
    assert code == 5
    hint = f"crgrpc list {server} --plaintext shows the services; add a SERVICE for its methods"
    assert doc["status"] is None
    assert doc["method"] == "NoSuchMethod"
    assert doc["error"] == {"exit_code": 5, "message": err[0].removeprefix("error: "), "hints": [hint]}
    assert err[0].startswith("error: ") and err[-1] == f"hint: {hint}"
    assert err.count(f"hint: {hint}") == 1


def test_full_reflection_refused_reports_what_was_sent(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    with front_end(401) as fe:
        code, doc, err = full(
            "call", f"localhost:{fe.port}", "--plaintext", "--auth", "--token", token,
            "echo.EchoServer/SayHello",
        )
    assert code == 80
    assert doc["request_metadata"] == {"authorization": "Bearer <redacted>"}
    assert doc["token"]["aud"] == AUD and doc["token"]["email"] == KEY_SA
    assert doc["status"]["code"] == 16 and doc["status"]["name"] == "UNAUTHENTICATED"
    assert doc["error"]["exit_code"] == 80
    assert doc["error"]["hints"] == [h.removeprefix("hint: ") for h in err[1:]]
    assert len(doc["error"]["hints"]) == len(set(doc["error"]["hints"])) >= 2
    assert token not in json.dumps(doc) and token not in "\n".join(err)


def test_full_bad_message_in_a_client_stream_from_stdin(server: str) -> None:
    code, doc, err = full(
        "call", "--plaintext", server, "SayHelloClientStream", "-d", "@-",
        stdin='{"name": "a"}\n{"name": "b"}\n{"nope": 1}\n',
    )
    assert code == 6
    assert doc["method"] == "echo.EchoServer/SayHelloClientStream"
    assert doc["messages"] == []
    assert doc["status"]["code"] == 1 and doc["status"]["name"] == "CANCELLED"
    assert doc["error"]["exit_code"] == 6
    assert doc["error"]["message"].endswith("(call cancelled after 2 messages sent)")
    assert err[0] == "error: " + doc["error"]["message"]


def test_full_server_status(server: str) -> None:
    code, doc, err = full("call", "--plaintext", server, "SayHello", "-d", '{"fail_code": 5}')
    assert code == 69
    assert doc["status"] == {
        "code": 5, "name": "NOT_FOUND", "message": "fail_code 5 requested before replying",
        "details": [],
    }
    assert doc["headers"] == {"rpcheaderkey": "val"}
    assert doc["error"] == {
        "exit_code": 69, "message": "NOT_FOUND: fail_code 5 requested before replying", "hints": [],
    }
    assert err == ["error: NOT_FOUND: fail_code 5 requested before replying"]


def test_full_bad_data_before_dialing() -> None:
    code, doc, err = full("call", "--plaintext", "127.0.0.1:1", "SayHello", "-d", "{nope")
    assert code == 6
    assert doc["status"] is None and doc["request_metadata"] == {}
    assert doc["error"]["exit_code"] == 6
    assert err[0] == "error: " + doc["error"]["message"]


# --- -o events: an error line on every failure, never an empty stdout ------------------------


def test_events_connection_refused() -> None:
    code, lines, _ = events("call", "--plaintext", "127.0.0.1:1", "echo.EchoServer/SayHello")
    message = "cannot connect to 127.0.0.1:1: connection refused"
    assert code == 4
    assert lines == [
        {"event": "error", "exit_code": 4, "message": message, "hints": REFUSED_HINTS},
        {"event": "status", "code": 14, "name": "UNAVAILABLE", "message": message, "details": []},
    ]


def test_events_unknown_method(server: str) -> None:
    code, lines, err = events("call", "--plaintext", server, "NoSuchMethod")
    assert code == 5
    assert [ln["event"] for ln in lines] == ["error"]
    assert lines[0]["exit_code"] == 5 and lines[0]["message"] == err[0].removeprefix("error: ")


def test_events_reflection_refused(issuer: Issuer) -> None:
    token = issuer.id_token(AUD, email=KEY_SA)
    with front_end(403) as fe:
        code, lines, _ = events(
            "call", f"localhost:{fe.port}", "--plaintext", "--auth", "--token", token, "SayHello",
        )
    assert code == 71
    assert [ln["event"] for ln in lines] == ["error", "status"]
    assert lines[1]["code"] == 7 and lines[1]["name"] == "PERMISSION_DENIED"
    assert any("roles/run.invoker" in h for h in lines[0]["hints"])


def test_events_bad_message_in_a_client_stream(server: str) -> None:
    code, lines, _ = events(
        "call", "--plaintext", server, "SayHelloClientStream", "-d", "@-",
        stdin='{"name": "a"}\n[1]\n',
    )
    assert code == 6
    assert [ln["event"] for ln in lines][-2:] == ["error", "status"]
    assert lines[-1]["code"] == 1 and lines[-1]["name"] == "CANCELLED"


def test_events_server_status(server: str) -> None:
    code, lines, _ = events("call", "--plaintext", server, "SayHello", "-d", '{"fail_code": 9}')
    assert code == 73
    assert [ln["event"] for ln in lines] == ["headers", "trailers", "status", "error"]
    assert lines[-1] == {
        "event": "error", "exit_code": 73,
        "message": "FAILED_PRECONDITION: fail_code 9 requested before replying", "hints": [],
    }


# --- secret headers are redacted in every mode -------------------------------------------------


@pytest.mark.parametrize("header", ["authorization", "x-serverless-authorization", "proxy-authorization", "cookie"])
def test_secret_headers_redacted_everywhere(server: str, header: str) -> None:
    secret = "s3cr3t-value-that-must-never-show-0123456789"
    value = f"Bearer {secret}" if header != "cookie" else f"session={secret}"
    shown = "Bearer <redacted>" if header != "cookie" else "<redacted>"
    base = ("call", "--plaintext", server, "SayHello", "-d", '{"name":"r"}', "-H", f"{header}: {value}")

    pretty = run(*base, "-v", tty=True)
    assert pretty.code == 0
    assert f"  {header}: {shown}" in pretty.stdout.splitlines()

    doc = run(*base, "-o", "full").json
    assert doc["request_metadata"][header] == shown

    ev = run(*base, "-o", "events", "-v")
    assert ev.lines[0]["event"] == "request"
    assert ev.lines[0]["metadata"][header] == shown

    js = run(*base, "-o", "json", "-v")
    assert js.lines == [{"message": "Hello r from K_REVISION local"}]
    assert json.loads(js.stderr)["request"]["metadata"][header] == shown

    for r in (pretty, ev, js):
        assert secret not in r.stdout + r.stderr
    assert secret not in json.dumps(doc)


# --- completion builds the command's own session ----------------------------------------------


def complete(words: str, cword: int) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli"],
        env={**os.environ, "_CRGRPC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    return [line for line in proc.stdout.splitlines() if line]


def test_completion_sends_the_headers_and_the_token_header_of_the_command(issuer: Issuer, tmp_path: Path) -> None:
    from .support.tls import make_certs

    key = issuer.write_service_account_key(tmp_path / "sa.json")
    certs = make_certs(tmp_path / "tls")
    recorder = MetadataRecorder()
    with echo_server(tls=certs, interceptors=(recorder,)) as s:
        target = f"https://localhost:{s.port}"
        common = ["--cacert", str(certs.ca), "--key-file", str(key), "--serverless-auth"]
        # A call mints and caches the token for x-serverless-authorization.
        r = run("list", target, *common, "--no-schema-cache")
        assert r.code == 0
        recorder.calls.clear()
        words = f"crgrpc call {target} {' '.join(common)} -H x-team:blue --no-schema-cache echo.EchoServer/"
        offered = complete(words, len(words.split()) - 1)
        assert offered[0] == "echo.EchoServer/SayHello"
    sent = [md for m, md in recorder.calls if "ServerReflection" in m]
    assert sent, recorder.calls
    for md in sent:
        assert md.get("x-team") == "blue"
        assert str(md.get("x-serverless-authorization", "")).startswith("Bearer ey")
        assert "authorization" not in md
    assert issuer.count("/token") == 1  # minted by the call, never by completion


def test_completion_sends_a_cached_token_only_for_the_same_audience_and_header(
    issuer: Issuer, tmp_path: Path
) -> None:
    from cloudrun_grpc_cli.demo.tokencheck import TokenCheck

    from .support.tls import make_certs

    key = issuer.write_service_account_key(tmp_path / "sa.json")
    certs = make_certs(tmp_path / "tls")
    check = TokenCheck("https://localhost", certs=issuer.certs_url)
    with echo_server(tls=certs, interceptors=(check,)) as s:
        target = f"https://localhost:{s.port}"
        common = f"--cacert {certs.ca} --key-file {key} --no-schema-cache"
        assert run("list", target, *common.split()).code == 0  # caches a token for authorization
        assert issuer.count("/token") == 1
        ok = f"crgrpc call {target} {common} echo.EchoServer/"
        assert complete(ok, len(ok.split()) - 1)[0] == "echo.EchoServer/SayHello"
        other_header = f"crgrpc call {target} {common} --serverless-auth echo.EchoServer/"
        assert complete(other_header, len(other_header.split()) - 1) == []
        other_audience = f"crgrpc call {target} {common} --audience https://other.example echo.EchoServer/"
        assert complete(other_audience, len(other_audience.split()) - 1) == []
    assert issuer.count("/token") == 1  # completion never minted
