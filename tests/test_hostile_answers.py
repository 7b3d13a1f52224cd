"""Broken answers from a server (issue 10, items 6-8): wrong cardinality is never
success nor a hang; server text never drives the terminal; `-d @-` for one-message
methods follows the rules of `-d TEXT`."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .support.cli import Result, run, run_process
from .support.rawgrpc import Reply, echo_protoset, echo_reply, raw_grpc
from .support.servers import echo_server

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def protoset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return echo_protoset(tmp_path_factory.mktemp("ps") / "echo.protoset")


def call(address: str, protoset: Path, method: str, *extra: str, stdin: str = "", tty: bool = False) -> Result:
    return run(
        "call", "--plaintext", address, method, "--protoset", str(protoset), "--timeout", "30",
        *extra, stdin=stdin, tty=tty,
    )


def no_traceback(r: Result) -> None:
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr


# --- 7. cardinality ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "kind", "count"),
    [
        ("SayHello", "unary", 0),
        ("SayHello", "unary", 2),
        ("SayHello", "unary", 3),
        ("SayHelloClientStream", "client", 0),
        ("SayHelloClientStream", "client", 2),
    ],
)
def test_wrong_number_of_messages_is_internal(protoset: Path, method: str, kind: str, count: int) -> None:
    reply = Reply(messages=[echo_reply(f"m{i}") for i in range(count)])
    with raw_grpc(reply) as srv:
        started = time.monotonic()
        r = call(srv.address, protoset, method, "-d", '{"name": "x"}')
        took = time.monotonic() - started
    assert r.code == 77
    assert took < 20  # the trailers came at once: nobody waits for the 30 s deadline
    assert r.stderr == (
        f"error: INTERNAL: server sent {count} messages for a {kind} method, which answers with one\n"
    )
    assert r.stdout == ""
    no_traceback(r)


def test_wrong_cardinality_in_the_full_document(protoset: Path) -> None:
    with raw_grpc(Reply(messages=[])) as srv:
        r = call(srv.address, protoset, "SayHello", "-o", "full")
    assert r.code == 77
    assert r.json["status"] == {
        "code": 13, "name": "INTERNAL",
        "message": "server sent 0 messages for a unary method, which answers with one",
        "details": [],
    }
    assert r.json["error"]["exit_code"] == 77


def test_one_message_for_unary_and_none_for_a_stream_are_fine(protoset: Path) -> None:
    with raw_grpc(Reply(messages=[echo_reply("one")])) as srv:
        r = call(srv.address, protoset, "SayHello")
    assert (r.code, r.stdout, r.stderr) == (0, '{"message":"one"}\n', "")
    with raw_grpc(Reply(messages=[])) as srv:
        r = call(srv.address, protoset, "SayHelloStream")
    assert (r.code, r.stdout, r.stderr) == (0, "", "")


# --- 6. terminal safety -----------------------------------------------------------------------

HOSTILE = "bad\nerror: forged line\x1b[2J\x07\x9b31m end"


def test_a_status_message_cannot_forge_an_error_line(protoset: Path) -> None:
    with raw_grpc(Reply(status=3, message=HOSTILE)) as srv:
        r = call(srv.address, protoset, "SayHello")
    assert r.code == 67
    assert r.stderr == "error: INVALID_ARGUMENT: bad\\nerror: forged line\\x1b[2J\\x07\\x9b31m end\n"
    no_traceback(r)


def test_pretty_output_escapes_server_text(protoset: Path) -> None:
    reply = Reply(
        messages=[echo_reply("ok\x1b[31m")],
        headers=[("x-evil", "a\x1b]0;title\x07b")],
        trailers=[("x-trail", "t\x1bc")],
        status=5,
        message="gone\x1b[1m",
    )
    with raw_grpc(reply) as srv:
        r = call(srv.address, protoset, "SayHelloStream", tty=True)
    assert r.code == 69
    for out in (r.stdout, r.stderr):
        assert "\x1b" not in out and "\x07" not in out
    lines = r.stdout.splitlines()
    assert "  x-evil: a\\x1b]0;title\\x07b" in lines
    assert "  x-trail: t\\x1bc" in lines
    assert '  "message": "ok\\u001b[31m"' in lines  # the JSON escape: copy-pasteable
    assert any(line.startswith("✗ NOT_FOUND (5): gone\\x1b[1m") for line in lines)


def test_machine_output_keeps_the_exact_strings(protoset: Path) -> None:
    reply = Reply(messages=[echo_reply("ok\x1b[31m")], headers=[("x-evil", "a\x1bb")], status=5, message="gone\nnow")
    with raw_grpc(reply) as srv:
        r = call(srv.address, protoset, "SayHelloStream", "-o", "events")
    assert r.code == 69
    assert r.lines[0] == {"event": "headers", "metadata": {"x-evil": "a\x1bb"}}
    assert r.lines[1] == {"event": "message", "message": {"message": "ok\x1b[31m"}}
    assert r.lines[3]["message"] == "gone\nnow"
    assert r.stderr == "error: NOT_FOUND: gone\\nnow\n"


# --- 8. -d @- for one-message methods ------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> str:
    with echo_server() as s:
        yield s.address


@pytest.mark.parametrize("method", ["SayHello", "SayHelloStream"])
def test_stdin_with_two_messages_is_refused(server: str, method: str) -> None:
    kind = "unary" if method == "SayHello" else "server"
    r = run("call", "--plaintext", server, method, "-d", "@-", stdin='{"name":"a"}\n{"name":"b"}\n')
    assert r.code == 6
    assert r.stderr == (
        f"error: request data: 2 messages for the {kind} method echo.EchoServer/{method}, which takes one\n"
        "hint: client- and bidi-streaming methods take several\n"
    )
    assert r.stdout == ""


@pytest.mark.parametrize("method", ["SayHello", "SayHelloStream"])
def test_stdin_with_trailing_garbage_is_refused(server: str, method: str) -> None:
    r = run("call", "--plaintext", server, method, "-d", "@-", stdin='{"name":"a"} garbage')
    assert r.code == 6
    assert r.stderr.splitlines()[0] == (
        "error: request data: expected a JSON object at line 1 column 14, found 'garbage'"
    )
    assert r.stdout == ""


def test_stdin_with_one_message_works(server: str) -> None:
    r = run_process("call", "--plaintext", server, "SayHello", "-d", "@-", input='{"name":"a"}\n')
    assert (r.code, r.stdout, r.stderr) == (0, '{"message":"Hello a from K_REVISION local"}\n', "")


# --- status details, in every output mode (item 12) ---------------------------------------------


def _status_details_bin() -> bytes:
    import base64

    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    st = status_pb2.Status(code=3, message="bad request")
    st.details.add().Pack(error_details_pb2.ErrorInfo(reason="QUOTA", domain="example.com", metadata={"k": "v"}))
    br = error_details_pb2.BadRequest()
    br.field_violations.add(field="name", description="must not be empty")
    st.details.add().Pack(br)
    st.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2)))
    st.details.append(any_pb2.Any(type_url="type.googleapis.com/acme.Unknown", value=b"\x08\x01"))
    return base64.b64encode(st.SerializeToString())


DETAILS_JSON = [
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "QUOTA", "domain": "example.com", "metadata": {"k": "v"}},
    {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": "name", "description": "must not be empty"}]},
    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"},
    {"@type": "type.googleapis.com/acme.Unknown", "value": "CAE="},
]
DETAIL_HINTS = [
    'hint: status detail google.rpc.ErrorInfo: {"reason": "QUOTA", "domain": "example.com", "metadata": {"k": "v"}}',
    'hint: status detail google.rpc.BadRequest: {"fieldViolations": [{"field": "name", "description": "must not be empty"}]}',
    'hint: status detail google.rpc.RetryInfo: {"retryDelay": "2s"}',
    'hint: status detail acme.Unknown: {"value": "CAE="}',
]


@pytest.fixture()
def details_server() -> str:
    reply = Reply(status=3, message="bad request", trailers=[("grpc-status-details-bin", _status_details_bin().decode())])
    with raw_grpc(reply) as srv:
        yield srv.address


@pytest.mark.parametrize("mode", ["json", "full", "events", "pretty"])
def test_status_details_in_every_mode(details_server: str, protoset: Path, mode: str) -> None:
    r = call(details_server, protoset, "SayHello", "-o", mode)
    assert r.code == 67
    assert r.stderr.splitlines() == ["error: INVALID_ARGUMENT: bad request", *DETAIL_HINTS]
    if mode == "full":
        assert r.json["status"]["details"] == DETAILS_JSON
        assert "grpc-status-details-bin" not in r.json["trailers"]
    elif mode == "events":
        assert r.lines[-2]["event"] == "status" and r.lines[-2]["details"] == DETAILS_JSON
    elif mode == "pretty":
        assert '  "reason": "QUOTA",' in r.stdout.splitlines()
        assert '  "retryDelay": "2s"' in r.stdout.splitlines()
    else:
        assert r.stdout == ""


# --- 9. deadlines while standard input is idle ----------------------------------------------------


@pytest.mark.parametrize("method", ["SayHelloClientStream", "SayHelloBidi"])
def test_timeout_ends_a_stream_while_stdin_is_idle(server: str, method: str) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudrun_grpc_cli", "call", "--plaintext", server, method, "-d", "@-", "--timeout", "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(b'{"name": "a"}\n')  # one message, then an idle, open stdin
    proc.stdin.flush()
    try:
        code = proc.wait(timeout=20)
        took = time.monotonic() - started
        stderr = proc.stderr.read().decode()
    finally:
        proc.kill()
        proc.stdin.close()
    assert (code, stderr.splitlines()[0].split(":")[:2]) == (68, ["error", " DEADLINE_EXCEEDED"]), stderr
    assert took < 15  # not when the next line arrives (it never does)


# --- every reflection request has a deadline: --timeout, named by the one hint -------------------


@pytest.mark.parametrize("command", [["list"], ["describe"], ["call", "SayHello"]])
def test_a_silent_reflection_server_meets_the_timeout(command: list[str]) -> None:
    with raw_grpc(Reply()) as srv:  # answers a stream only once it ends: reflection never does
        started = time.monotonic()
        r = run(command[0], "--plaintext", srv.address, *command[1:], "--timeout", "1")
        took = time.monotonic() - started
    assert r.code == 68
    assert took < 10
    first, *hints = r.stderr.splitlines()
    assert first.startswith("error: DEADLINE_EXCEEDED: reflection: ")  # gRPC's words vary
    assert hints == [  # one hint, naming the flag that sets reflection's deadline
        "hint: the server did not answer reflection in time: raise --timeout (it sets each "
        "reflection request's deadline, 10 s by default), or give the schema with --protoset or --proto"
    ]
