"""crgrpc call against real in-process Echo servers: every kind, form and output mode."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run
from .support.recorder import MetadataRecorder
from .support.servers import echo_server, make_certs, unix_echo_server


@pytest.fixture(scope="module")
def recorder() -> MetadataRecorder:
    return MetadataRecorder()


@pytest.fixture(scope="module")
def server(recorder: MetadataRecorder) -> Iterator[str]:
    with echo_server(interceptors=(recorder,)) as s:
        yield s.address


def error_line(stderr: str) -> str:
    """The one error: line (notices such as 'no credentials found' may precede it)."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


def call(addr: str, method: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    r = run("call", "--plaintext", addr, method, *args, stdin=stdin)
    return r.code, r.stdout, r.stderr


def test_unary_json(server: str) -> None:
    code, out, err = call(server, "echo.EchoServer/SayHello", "-d", '{"name": "x"}')
    assert (code, out, err) == (0, '{"message":"Hello x from K_REVISION local"}\n', "")


def test_unary_uses_k_revision(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_REVISION", "echo-00042-abc")
    code, out, _ = call(server, "echo.EchoServer/SayHello", "-d", '{"name": "x"}')
    assert code == 0
    assert out == '{"message":"Hello x from K_REVISION echo-00042-abc"}\n'


def test_unary_without_data_sends_one_empty_message(server: str) -> None:
    code, out, _ = call(server, "echo.EchoServer/SayHello")
    assert (code, out) == (0, '{"message":"Hello  from K_REVISION local"}\n')


def test_server_stream_json_lines(server: str) -> None:
    code, out, _ = call(server, "echo.EchoServer/SayHelloStream", "-d", '{"name":"s","count":3}')
    assert code == 0
    assert out.splitlines() == [
        '{"message":"Msg1 Hello s from K_REVISION local"}',
        '{"message":"Msg2 Hello s from K_REVISION local"}',
        '{"message":"Msg3 Hello s from K_REVISION local"}',
    ]


def test_server_stream_default_count_is_two(server: str) -> None:
    code, out, _ = call(server, "echo.EchoServer/SayHelloStream", "-d", '{"name":"d"}')
    assert code == 0 and len(out.splitlines()) == 2


def test_client_stream_concatenated_messages(server: str) -> None:
    code, out, _ = call(
        server, "echo.EchoServer/SayHelloClientStream", "-d", '{"name":"a"}{"name":"b"} {"name":"c"}'
    )
    assert (code, out) == (0, '{"message":"Hello a, b, c from K_REVISION local"}\n')


def test_client_stream_without_data_sends_none(server: str) -> None:
    code, out, _ = call(server, "echo.EchoServer/SayHelloClientStream")
    assert (code, out) == (0, '{"message":"Hello  from K_REVISION local"}\n')


def test_bidi_json_lines_from_stdin(server: str) -> None:
    code, out, _ = call(
        server, "echo.EchoServer/SayHelloBidi", "-d", "@-", stdin='{"name":"a"}\n{"name":"b"}\n'
    )
    assert code == 0
    assert out.splitlines() == [
        '{"message":"Hello a from K_REVISION local"}',
        '{"message":"Hello b from K_REVISION local"}',
    ]


def test_data_from_file(server: str, tmp_path: Path) -> None:
    f = tmp_path / "req.json"
    f.write_text('{"name": "file"}\n')
    code, out, _ = call(server, "SayHello", "-d", f"@{f}")
    assert (code, out) == (0, '{"message":"Hello file from K_REVISION local"}\n')


def test_unary_data_from_stdin(server: str) -> None:
    code, out, _ = call(server, "SayHello", "-d", "@-", stdin='{"name": "in"}')
    assert (code, out) == (0, '{"message":"Hello in from K_REVISION local"}\n')


@pytest.mark.parametrize(
    "method",
    [
        "echo.EchoServer/SayHello",
        "echo.EchoServer.SayHello",
        "SayHello",
        "EchoServer/SayHello",
        "/echo.EchoServer/SayHello",
    ],
)
def test_method_forms(server: str, method: str) -> None:
    code, out, err = call(server, method, "-d", '{"name":"m"}')
    assert (code, out, err) == (0, '{"message":"Hello m from K_REVISION local"}\n', "")


def test_unknown_method_suggests(server: str) -> None:
    code, out, err = call(server, "echo.EchoServer/SayHelo")
    assert code == 5 and out == ""
    assert err.splitlines()[0].startswith("error: ")
    assert "echo.EchoServer/SayHello" in err
    assert "hint: " in err
    assert "Traceback" not in err


def test_full_output_document(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"name":"f"}', "-o", "full")
    assert r.code == 0 and r.stderr == ""
    doc = r.json
    assert isinstance(doc.pop("elapsed_ms"), (int, float))
    assert doc == {
        "method": "echo.EchoServer/SayHello",
        "request_metadata": {},
        "token": None,
        "headers": {"rpcheaderkey": "val"},
        "messages": [{"message": "Hello f from K_REVISION local"}],
        "trailers": {"rpctrailerkey": "val"},
        "status": {"code": 0, "name": "OK", "message": "", "details": []},
        "error": None,
    }


def test_full_output_written_on_failure(server: str) -> None:
    r = run(
        "call", "--plaintext", server, "SayHelloStream", "-o", "full",
        "-d", '{"name":"f","count":3,"fail_code":9,"fail_after":1}',
    )
    assert r.code == 64 + 9
    doc = r.json
    assert doc["messages"] == [{"message": "Msg1 Hello f from K_REVISION local"}]
    assert doc["status"] == {
        "code": 9, "name": "FAILED_PRECONDITION",
        "message": "fail_code 9 requested after 1 messages", "details": [],
    }
    assert doc["trailers"] == {"streamtrailerkey": "val"}
    assert r.stderr.splitlines()[0] == "error: FAILED_PRECONDITION: fail_code 9 requested after 1 messages"


def test_events_output(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloStream", "-o", "events", "-d", '{"name":"e"}')
    assert r.code == 0
    assert r.lines == [
        {"event": "headers", "metadata": {"streamheaderkey": "val"}},
        {"event": "message", "message": {"message": "Msg1 Hello e from K_REVISION local"}},
        {"event": "message", "message": {"message": "Msg2 Hello e from K_REVISION local"}},
        {"event": "trailers", "metadata": {"streamtrailerkey": "val"}},
        {"event": "status", "code": 0, "name": "OK", "message": "", "details": []},
    ]


def test_events_unary_failure(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-o", "events", "-d", '{"fail_code": 5}')
    assert r.code == 64 + 5
    assert r.lines == [
        {"event": "headers", "metadata": {"rpcheaderkey": "val"}},
        {"event": "trailers", "metadata": {"rpctrailerkey": "val"}},
        {"event": "status", "code": 5, "name": "NOT_FOUND", "message": "fail_code 5 requested before replying", "details": []},
        {"event": "error", "exit_code": 69, "message": "NOT_FOUND: fail_code 5 requested before replying", "hints": []},
    ]


def test_pretty_output(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"name":"p"}', tty=True)
    assert r.code == 0
    lines = [line.rstrip() for line in r.stdout.splitlines()]
    assert lines[0] == f"→ echo.EchoServer/SayHello (unary) at {server}"
    assert "headers" in lines and "trailers" in lines
    assert "  rpcheaderkey: val" in lines
    assert "  rpctrailerkey: val" in lines
    assert '  "message": "Hello p from K_REVISION local"' in lines
    assert lines[-1].startswith("✓ OK  1 message · ")


def test_pretty_verbose_shows_request_metadata(server: str) -> None:
    r = run(
        "call", "--plaintext", server, "SayHello", "-v", "-H", "x-trace: abc", "-o", "pretty",
        "-H", "authorization: Bearer secret-token-value",
    )
    assert r.code == 0
    assert "request metadata" in r.stdout
    assert "  x-trace: abc\n" in r.stdout
    assert "  authorization: Bearer <redacted>\n" in r.stdout
    assert "secret-token-value" not in r.stdout + r.stderr


def test_emit_defaults_and_proto_names() -> None:
    from .support.hostile import types_server

    with types_server() as t:
        plain = run("call", "--plaintext", t.address, "hostile.Types/Echo", "-d", '{"lastWord": "bye", "i32": 0}')
        assert (plain.code, plain.stdout) == (0, '{"lastWord":"bye"}\n')
        names = run("call", "--plaintext", t.address, "hostile.Types/Echo", "-d", '{"last_word": "bye"}', "--proto-names")
        assert (names.code, names.stdout) == (0, '{"last_word":"bye"}\n')
        full = run("call", "--plaintext", t.address, "hostile.Types/Echo", "-d", "{}", "--emit-defaults")
        assert full.code == 0
        assert full.json == {
            "blob": "", "i32": 0, "i64": "0", "u32": 0, "color": "COLOR_UNSPECIFIED", "nums": [],
            "counts": {}, "ratio": 0.0, "flag": False, "lastWord": "",
        }
        both = run("call", "--plaintext", t.address, "hostile.Types/Echo", "-d", "{}", "--emit-defaults", "--proto-names", "-o", "events")
        assert both.lines[1] == {"event": "message", "message": {
            "blob": "", "i32": 0, "i64": "0", "u32": 0, "color": "COLOR_UNSPECIFIED", "nums": [],
            "counts": {}, "ratio": 0.0, "flag": False, "last_word": "",
        }}


def test_ipv6_loopback_target() -> None:
    import socket

    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with echo_server(host="::1") as s:
        r = run("call", "--plaintext", f"[::1]:{s.port}", "SayHello", "-d", '{"name":"v6"}')
        assert (r.code, r.stdout) == (0, '{"message":"Hello v6 from K_REVISION local"}\n')
        r = run("call", f"http://[::1]:{s.port}", "SayHello", "-d", '{"name":"v6"}')
        assert (r.code, r.stdout) == (0, '{"message":"Hello v6 from K_REVISION local"}\n')


def test_headers_sent_on_reflection_and_call(server: str, recorder: MetadataRecorder) -> None:
    recorder.calls.clear()
    code, _, _ = call(server, "SayHello", "-H", "x-custom: one", "-H", "x-data-bin: AAEC", "--no-schema-cache")
    assert code == 0
    methods = recorder.methods()
    assert any("ServerReflection" in m for m in methods)
    assert methods[-1] == "/echo.EchoServer/SayHello"
    for _, md in recorder.calls:
        assert md["x-custom"] == "one"
        assert md["x-data-bin"] == b"\x00\x01\x02"


@pytest.mark.parametrize(
    ("payload", "code", "name"),
    [('{"fail_code": 5}', 69, "NOT_FOUND"), ('{"fail_code": 7}', 71, "PERMISSION_DENIED"), ('{"fail_code": 14}', 78, "UNAVAILABLE")],
)
def test_unary_failure_exit_codes(server: str, payload: str, code: int, name: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", payload)
    assert r.code == code
    assert r.stdout == ""
    assert r.stderr.startswith(f"error: {name}: fail_code")


def test_late_stream_failure_prints_messages_first(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloStream", "-d", '{"count":5,"fail_code":10,"fail_after":2}')
    assert r.code == 64 + 10
    assert len(r.stdout.splitlines()) == 2
    assert r.stderr.startswith("error: ABORTED: ")


def test_bidi_failure_after_messages(server: str) -> None:
    r = run(
        "call", "--plaintext", server, "SayHelloBidi",
        "-d", '{"name":"a"}{"name":"b"}{"name":"c","fail_code":3,"fail_after":2}',
    )
    assert r.code == 64 + 3
    assert len(r.stdout.splitlines()) == 2


def test_two_messages_to_unary_is_request_data_error(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"name":"a"}{"name":"b"}')
    assert r.code == 6
    assert r.stderr.splitlines()[0] == (
        "error: request data: 2 messages for the unary method echo.EchoServer/SayHello, which takes one"
    )


def test_bad_json_fails_before_dialing() -> None:
    # Nothing listens on port 1: exit 6 proves the data was checked before dialing.
    r = run("call", "--plaintext", "127.0.0.1:1", "SayHello", "-d", '{"name": }')
    assert r.code == 6
    assert r.stderr.startswith("error: request data: invalid JSON in message 1 at line 1 column 10")


def test_unknown_field_is_request_data_error(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"nmae": "x"}')
    assert r.code == 6
    assert "nmae" in r.stderr.splitlines()[0]
    assert "--allow-unknown-fields" in r.stderr


def test_allow_unknown_fields(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"nmae": "x", "name": "y"}', "--allow-unknown-fields")
    assert (r.code, r.stdout) == (0, '{"message":"Hello y from K_REVISION local"}\n')


def test_bad_stream_message_cancels_call(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloBidi", "-d", "@-", stdin='{"name":"a"}\n{"count":"x"}\n')
    assert r.code == 6
    assert "message 2" in r.stderr
    assert "call cancelled after 1 message sent" in r.stderr


def test_missing_data_file() -> None:
    r = run("call", "--plaintext", "127.0.0.1:1", "SayHello", "-d", "@/nonexistent/req.json")
    assert r.code == 6
    assert r.stderr.startswith("error: request data: no such file '/nonexistent/req.json'")


def test_connection_refused_exit_4() -> None:
    r = run("call", "--plaintext", "127.0.0.1:1", "SayHello", "-d", "{}")
    assert r.code == 4
    assert r.stderr.startswith("error: cannot connect to 127.0.0.1:1: connection refused")


def test_no_reflection_exit_5_with_hint() -> None:
    with echo_server(reflection=False) as s:
        r = run("call", "--plaintext", s.address, "SayHello")
    assert r.code == 5
    assert "reflection" in r.stderr.splitlines()[0]
    assert "--proto" in r.stderr and "--protoset" in r.stderr


def test_timeout_exit_68(server: str) -> None:
    # 100k messages cannot finish in 1 ms.
    r = run("call", "--plaintext", server, "SayHelloStream", "-d", '{"count": 100000}', "--timeout", "0.001")
    assert r.code == 68
    assert r.stderr.startswith("error: DEADLINE_EXCEEDED")


def test_max_msg_size_exit_72(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"name": "' + "x" * 500 + '"}', "--max-msg-size", "100")
    assert r.code == 72
    assert "--max-msg-size" in r.stderr


def test_http_scheme_target(server: str) -> None:
    r = run("call", f"http://{server}", "SayHello", "-d", '{"name":"h"}')
    assert (r.code, r.stdout) == (0, '{"message":"Hello h from K_REVISION local"}\n')


def test_buf_curl_target_form(server: str) -> None:
    r = run("call", f"http://{server}/echo.EchoServer/SayHello", "-d", '{"name":"b"}')
    assert (r.code, r.stdout) == (0, '{"message":"Hello b from K_REVISION local"}\n')


def test_unix_target(tmp_path: Path) -> None:
    with unix_echo_server(tmp_path / "echo.sock") as target:
        r = run("call", target, "SayHello", "-d", '{"name":"u"}')
    assert (r.code, r.stdout) == (0, '{"message":"Hello u from K_REVISION local"}\n')


def test_localhost_name_target() -> None:
    with echo_server() as s:
        r = run("call", "--plaintext", f"localhost:{s.port}", "SayHello", "-d", '{"name":"l"}')
    assert (r.code, r.stdout) == (0, '{"message":"Hello l from K_REVISION local"}\n')


def test_tls_with_cacert(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with echo_server(tls=certs) as s:
        r = run("call", f"localhost:{s.port}", "SayHello", "-d", '{"name":"t"}', "--cacert", str(certs.ca))
        assert (r.code, r.stdout) == (0, '{"message":"Hello t from K_REVISION local"}\n')
        r = run("call", f"https://localhost:{s.port}", "SayHello", "-d", '{"name":"t"}', "--cacert", str(certs.ca))
        assert r.code == 0


def test_tls_without_trust_exit_4(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with echo_server(tls=certs) as s:
        r = run("call", f"localhost:{s.port}", "SayHello", "--connect-timeout", "5")
    assert r.code == 4
    assert error_line(r.stderr) == f"error: cannot connect to localhost:{s.port}: TLS certificate verification failed"
    assert "--cacert" in r.stderr


def test_tls_other_name_needs_authority(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, names=("echo.internal",))
    with echo_server(tls=certs) as s:
        bad = run("call", f"127.0.0.1:{s.port}", "SayHello", "--cacert", str(certs.ca), "--connect-timeout", "5")
        good = run(
            "call", f"127.0.0.1:{s.port}", "SayHello", "-d", '{"name":"a"}',
            "--cacert", str(certs.ca), "--authority", "echo.internal",
        )
    assert bad.code == 4 and "--authority" in bad.stderr
    assert error_line(bad.stderr) == f"error: cannot connect to 127.0.0.1:{s.port}: TLS certificate is for another name"
    assert (good.code, good.stdout) == (0, '{"message":"Hello a from K_REVISION local"}\n')


def test_insecure_trusts_self_signed(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, names=("selfsigned.test",), self_signed=True)
    with echo_server(tls=certs) as s:
        r = run("call", f"127.0.0.1:{s.port}", "SayHello", "-d", '{"name":"i"}', "--insecure")
    assert (r.code, r.stdout) == (0, '{"message":"Hello i from K_REVISION local"}\n')
    assert r.stderr.startswith("warning: --insecure")


def test_plaintext_client_to_tls_server_fails_cleanly(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    with echo_server(tls=certs) as s:
        r = run("call", "--plaintext", s.address, "SayHello", "--connect-timeout", "3")
    assert r.code in (4, 78)
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["call", "host:99999", "SayHello"], "error: port 99999 out of range in target 'host:99999' (1-65535)"),
        (["call", "ftp://host", "SayHello"], "error: unsupported scheme 'ftp' in target 'ftp://host'"),
        (["call", "--plaintext", "127.0.0.1:1", "SayHello", "-H", "nocolon"], "error: invalid header 'nocolon'"),
        (["call", "--plaintext", "127.0.0.1:1", "SayHello", "-H", "x-bin: !!!"], "error: invalid base64 in binary header 'x-bin'"),
        (["call", "127.0.0.1:1"], "error: missing METHOD"),
        (["call", "127.0.0.1:1", "M", "-o", "yaml"], "error: unknown output mode 'yaml'"),
        (["list", "127.0.0.1:1", "-o", "full"], "error: -o full is not available for this command"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str) -> None:
    r = run(*argv)
    assert r.code == 2, r
    assert r.stderr.splitlines()[0] == message
    assert r.stdout == ""


def test_click_usage_error_is_one_error_line() -> None:
    r = run("call", "--no-such-flag", "host", "M")
    assert r.code == 2
    assert r.stderr.splitlines()[0] == "error: no such option: --no-such-flag"
    assert r.stderr.splitlines()[1] == "hint: run 'crgrpc call --help'"


def test_json_output_is_valid_json_lines(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloStream", "-d", '{"count": 50}')
    assert r.code == 0
    assert [json.loads(line)["message"].split()[0] for line in r.stdout.splitlines()] == [
        f"Msg{i}" for i in range(1, 51)
    ]


def test_full_output_written_when_connection_fails() -> None:
    r = run("call", "--plaintext", "127.0.0.1:1", "echo.EchoServer/SayHello", "-o", "full")
    assert r.code == 4
    doc = r.json
    assert doc["method"] == "echo.EchoServer/SayHello"
    assert doc["status"] == {
        "code": 14, "name": "UNAVAILABLE",
        "message": "cannot connect to 127.0.0.1:1: connection refused", "details": [],
    }
    assert doc["messages"] == []
    assert doc["error"]["exit_code"] == 4
    assert doc["error"]["message"] == "cannot connect to 127.0.0.1:1: connection refused"
    assert r.stderr.splitlines()[0] == "error: cannot connect to 127.0.0.1:1: connection refused"


def test_full_output_written_for_unknown_method(server: str) -> None:
    r = run("call", "--plaintext", server, "Nope", "-o", "full")
    assert r.code == 5
    assert r.json["error"]["exit_code"] == 5


def test_data_at_sign_alone_needs_a_file_name() -> None:
    r = run("call", "--plaintext", "127.0.0.1:1", "SayHello", "-d", "@")
    assert r.code == 6
    assert r.stderr == "error: request data: -d @ needs a file name\nhint: @FILE, or @- for standard input\n"


def test_method_with_white_space_is_refused(server: str) -> None:
    r = run("call", "--plaintext", server, "Say Hello")
    assert r.code == 5
    assert r.stderr.splitlines()[0] == "error: not a method name: 'Say Hello'"


def test_unknown_method_without_close_names_points_at_list(server: str) -> None:
    r = run("call", "--plaintext", server, "Nope")
    assert r.code == 5
    assert r.stderr == (
        "error: method not found: Nope\n"
        f"hint: crgrpc list {server} --plaintext shows the services; add a SERVICE for its methods\n"
    )


@pytest.mark.parametrize(
    ("details", "reason"),
    [
        # gRPC's words for a name that does not resolve (captured; no lookup is made here)
        ("errors resolving nonexistent.invalid:443: [field:hostname lookup error:address lookup failed "
         "for nonexistent.invalid:443: Domain name not found]", "DNS resolution failed"),
        ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed to connect "
         "to remote host: Connection refused", "connection refused"),
        ("failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:4443: Ssl handshake "
         "failed (TSI_PROTOCOL_FAILURE): SSL_ERROR_SSL: error:1000007d:SSL routines:OPENSSL_internal:"
         "CERTIFICATE_VERIFY_FAILED", "TLS certificate verification failed"),
        ("Received http2 header with status: 401", None),
    ],
)
def test_connect_reasons_from_grpc_details(details: str, reason: str | None) -> None:
    from cloudrun_grpc_cli.core.rpcerrors import connect_reason

    assert connect_reason(details) == reason
