"""Bad input, one case at a time: the documented exit code, the exact `error:` line
(or a precise prefix of it), nothing on stdout, and never a traceback.

Servers: the Echo server, and `hostile.Types` (tests/support/hostile.py), whose
messages have bytes, enum, 64-bit, repeated, map and nested fields.
Placeholders in argv: {echo}, {types} (addresses), {tmp} (a directory holding
the files the cases need), {closed} (a loopback port nobody listens on).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from .support.cli import Result, run, run_process
from .support.hostile import free_port, mint_jwt, types_server
from .support.servers import echo_server


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    line: str  # the error: line; a prefix when it ends with "…"
    stdin: str | bytes = ""
    env: dict[str, str] = field(default_factory=dict)
    process: bool = False  # run as a real process (bytes on stdin)

    def expects(self, line: str) -> bool:
        if self.line.endswith("…"):
            return line.startswith(self.line[:-1])
        return line == self.line


def C(id: str, code: int, line: str, *argv: str, **kw: object) -> Case:
    return Case(id, argv, code, line, **kw)  # type: ignore[arg-type]


ECHO = ("call", "--plaintext", "{echo}")
SAY = (*ECHO, "SayHello")
TYPES = ("call", "--plaintext", "{types}", "hostile.Types/Echo")
RD = "error: request data: "
M1 = RD + "message 1: "
TARGET_HINT_CASES = "error: "

CASES: list[Case] = [
    # --- JSON syntax and framing (checked before dialing) -------------------------------------
    C("json-syntax", 6, RD + "invalid JSON in message 1 at line 1 column 10: Expecting value", *SAY, "-d", '{"name": }'),
    C("json-trailing-comma", 6, RD + "invalid JSON in message 1 at line 1 column 13: Expecting property name enclosed in double quotes", *SAY, "-d", '{"name":"a",}'),
    C("json-trailing-garbage", 6, RD + "expected a JSON object at line 1 column 14, found 'xyz'", *SAY, "-d", '{"name":"a"} xyz'),
    C("json-garbage-line-3", 6, RD + "expected a JSON object at line 3 column 3, found ']'", *SAY, "-d", '{"name":"a"}\n{"name":"b"}\n  ]'),
    C("json-incomplete", 6, RD + "message 1 is incomplete at line 1 column 1", *SAY, "-d", '{"name":"a"'),
    C("json-array", 6, RD + "expected a JSON object at line 1 column 1, found '[1,2]'", *SAY, "-d", "[1,2]"),
    C("json-number", 6, RD + "expected a JSON object at line 1 column 1, found '5'", *SAY, "-d", "5"),
    C("json-second-message-bad", 6, RD + "invalid JSON in message 2 at line 2 column 9: Expecting value", *ECHO, "SayHelloClientStream", "-d", '{"name":"a"}\n{"name":}'),
    # --- wrong types ----------------------------------------------------------------------------
    C("type-string-number", 6, M1 + "field name: expected a string, got a number", *SAY, "-d", '{"name": 5}'),
    C("type-string-array", 6, M1 + "field name: expected a string, got an array", *SAY, "-d", '{"name": ["a"]}'),
    C("type-int-text", 6, M1 + "field count: …", *SAY, "-d", '{"count": "abc"}'),
    C("type-int-bool", 6, M1 + "field count: …", *SAY, "-d", '{"count": true}'),
    C("type-int-fraction", 6, M1 + "field count: 1.5 is not a whole number (int32)", *SAY, "-d", '{"count": 1.5}'),
    C("type-message-number", 6, M1 + "field child: expected an object for hostile.Scalars, got a number", *TYPES, "-d", '{"child": 5}'),
    C("type-repeated-scalar", 6, M1 + "field nums: …", *TYPES, "-d", '{"nums": 5}'),
    C("type-map-array", 6, M1 + "field counts: …", *TYPES, "-d", '{"counts": [1]}'),
    C("type-bool-text", 6, M1 + "field flag: …", *TYPES, "-d", '{"flag": "yes"}'),
    # --- out of range -------------------------------------------------------------------------
    C("int32-overflow", 6, M1 + "field count: 2147483648 is out of range for int32 (-2147483648 to 2147483647)", *SAY, "-d", '{"count": 2147483648}'),
    C("int32-underflow", 6, M1 + "field count: -2147483649 is out of range for int32 (-2147483648 to 2147483647)", *SAY, "-d", '{"count": -2147483649}'),
    C("int32-exponent", 6, M1 + "field count: 10000000000 is out of range for int32 (-2147483648 to 2147483647)", *SAY, "-d", '{"count": 1e10}'),
    C("int64-overflow", 6, M1 + 'field i64: "99999999999999999999" is out of range for int64 (-9223372036854775808 to 9223372036854775807)', *TYPES, "-d", '{"i64": "99999999999999999999"}'),
    C("uint32-negative", 6, M1 + "field u32: -1 is out of range for uint32 (0 to 4294967295)", *TYPES, "-d", '{"u32": -1}'),
    C("double-infinite", 6, M1 + "field ratio: Couldn't parse Infinity…", *TYPES, "-d", '{"ratio": 1e400}'),
    # --- unknown fields -------------------------------------------------------------------------
    C("unknown-field", 6, M1 + "unknown field 'nmae' in echo.EchoRequest", *SAY, "-d", '{"nmae": "x"}'),
    C("unknown-nested-field", 6, M1 + "field child: unknown field 'nope' in hostile.Scalars", *TYPES, "-d", '{"child": {"nope": 1}}'),
    C("unknown-field-allowed", 0, "", *TYPES, "-d", '{"child": {"nope": 1}, "i32": 3}', "--allow-unknown-fields"),
    # --- bytes fields: strict base64 --------------------------------------------------------------
    C("bytes-bad-chars", 6, M1 + "field blob: invalid base64 '!!!'", *TYPES, "-d", '{"blob": "!!!"}'),
    C("bytes-bad-padding", 6, M1 + "field blob: invalid base64 'QQ=Q'", *TYPES, "-d", '{"blob": "QQ=Q"}'),
    C("bytes-bad-length", 6, M1 + "field blob: invalid base64 'AAAAA'", *TYPES, "-d", '{"blob": "AAAAA"}'),
    C("bytes-not-string", 6, M1 + "field blob: expected a base64 string, got a number", *TYPES, "-d", '{"blob": 5}'),
    C("bytes-nested", 6, M1 + "field child.blob: invalid base64 '%%%'", *TYPES, "-d", '{"child": {"blob": "%%%"}}'),
    # --- enums ------------------------------------------------------------------------------------
    C("enum-unknown-name", 6, M1 + 'field color: "BLUE" is not a value of hostile.Scalars.Color (one of: COLOR_UNSPECIFIED, RED, GREEN)', *TYPES, "-d", '{"color": "BLUE"}'),
    # --- message counts, @file, stdin ----------------------------------------------------------------
    C("two-to-unary", 6, RD + "2 messages for the unary method echo.EchoServer/SayHello, which takes one", *SAY, "-d", '{"name":"a"}{"name":"b"}'),
    C("two-to-server-stream", 6, RD + "2 messages for the server method echo.EchoServer/SayHelloStream, which takes one", *ECHO, "SayHelloStream", "-d", '{}\n{}'),
    C("missing-file", 6, RD + "no such file '{tmp}/nope.json'", *SAY, "-d", "@{tmp}/nope.json"),
    C("file-is-directory", 6, RD + "cannot read '{tmp}': Is a directory", *SAY, "-d", "@{tmp}"),
    C("file-not-utf8", 6, RD + "'{tmp}/binary.json' is not UTF-8 text", *SAY, "-d", "@{tmp}/binary.json"),
    C("stdin-binary-unary", 6, RD + "…", *SAY, "-d", "@-", stdin=b"\x95\xfa\x00\xffgarbage\n", process=True),
    C("stdin-binary-bidi", 6, RD + "…", *ECHO, "SayHelloBidi", "-d", "@-", stdin=b'{"name":"a"}\n\x95\xfa\xff\n', process=True),
    C("stdin-bad-second-bidi", 6, RD + "message 2: field count: …", *ECHO, "SayHelloBidi", "-d", "@-", stdin='{"name":"a"}\n{"count":"x"}\n'),
    # --- TARGET --------------------------------------------------------------------------------------
    C("target-port-zero", 2, "error: port 0 out of range in target 'host:0' (1-65535)", "call", "host:0", "M"),
    C("target-port-text", 2, "error: invalid port 'abc' in target 'host:abc'", "call", "host:abc", "M"),
    C("target-port-empty", 2, "error: invalid port '' in target 'host:'", "call", "host:", "M"),
    C("target-port-unicode-digit", 2, "error: invalid port '²' in target 'host:²'", "call", "host:²", "M"),
    C("target-no-host", 2, "error: invalid host '' in target ':80'", "call", ":80", "M"),
    C("target-empty-label", 2, "error: invalid host 'h..com' in target 'h..com:80'", "call", "h..com:80", "M"),
    C("target-userinfo", 2, "error: invalid host 'user@h' in target 'user@h:80'", "call", "user@h:80", "M"),
    C("target-unclosed-bracket", 2, "error: unclosed '[' in target '[::1'", "call", "[::1", "M"),
    C("target-bad-ipv6", 2, "error: invalid IPv6 address 'zz' in target '[zz]:80'", "call", "[zz]:80", "M"),
    C("target-ipv6-unbracketed", 2, "error: invalid target '::1:80': an IPv6 address needs brackets", "call", "::1:80", "M"),
    C("target-after-bracket", 2, "error: unexpected 'x' after ']' in target '[::1]x'", "call", "[::1]x", "M"),
    C("target-scheme-only", 2, "error: invalid target 'https://': no host", "call", "https://", "M"),
    C("target-unix-no-path", 2, "error: invalid target 'unix:': no socket path", "call", "unix:", "M"),
    C("target-path-no-scheme", 2, "error: invalid target 'h/x': a path needs https:// or http://", "call", "h/x", "M"),
    C("target-bad-method-path", 2, "error: invalid target 'https://h/x': the path must be /pkg.Service/Method", "call", "https://h/x", "M"),
    C("target-space", 2, "error: invalid target 'a b': it contains white space", "call", "a b", "M"),
    C("target-https-plaintext", 2, "error: --plaintext conflicts with the https:// target 'https://h'", "call", "--plaintext", "https://h", "M"),
    C("target-method-twice", 2, "error: METHOD given twice: in the target URL and as an argument", "call", "http://h:1/a.B/C", "a.B/C"),
    # --- headers -------------------------------------------------------------------------------------
    C("header-no-name", 2, "error: invalid header ': v'", *SAY, "-H", ": v"),
    C("header-bad-name", 2, "error: invalid header name 'x y'", *SAY, "-H", "x y: v"),
    C("header-reserved", 2, "error: header 'grpc-timeout' is reserved by gRPC", *SAY, "-H", "grpc-timeout: 1S"),
    C("header-control-char", 2, "error: invalid value for header 'x': only printable ASCII is allowed", *SAY, "-H", "x: a\x01b"),
    C("header-bin-padding", 2, "error: invalid base64 in binary header 'x-bin'", *SAY, "-H", "x-bin: QQ=Q"),
    C("header-bin-chars", 2, "error: invalid base64 in binary header 'trace-bin'", *SAY, "-H", "trace-bin: ***"),
    # --- key files -------------------------------------------------------------------------------------
    C("key-not-json", 3, "error: --key-file {tmp}/notjson.json is not JSON…", *SAY, "--key-file", "{tmp}/notjson.json"),
    C("key-wrong-type", 3, "error: --key-file {tmp}/user.json is not a service-account key (type 'authorized_user')", *SAY, "--key-file", "{tmp}/user.json"),
    C("key-array", 3, "error: --key-file {tmp}/array.json is not a JSON object", *SAY, "--key-file", "{tmp}/array.json"),
    C("key-broken-private-key", 3, "error: --key-file {tmp}/brokenkey.json: cannot load the service-account key…", *SAY, "--key-file", "{tmp}/brokenkey.json"),
    C("key-no-email", 3, "error: --key-file {tmp}/noemail.json has no client_email", *SAY, "--key-file", "{tmp}/noemail.json"),
    C("key-missing", 3, "error: cannot read --key-file {tmp}/nokey.json: No such file or directory", *SAY, "--key-file", "{tmp}/nokey.json"),
    # --- static tokens ------------------------------------------------------------------------------------
    C("token-expired", 3, "error: --token: the token expired 1h ago…", *SAY, "--token", "{expired}"),
    C("token-not-jwt", 3, "error: --token: not a JWT: 'abcdefgh…' has 2 dot-separated parts, not 3", *SAY, "--token", "abcdefghijk.lmnop"),
    C("token-access-token", 3, "error: --token: 'ya29.a0A…' is an OAuth access token (ya29.…), not an ID token", *SAY, "--token", "ya29.a0AfH6SMBxyz"),
    C("token-env-expired", 3, "error: CRGRPC_TOKEN: the token expired 1h ago…", *SAY, env={"CRGRPC_TOKEN": "{expired}"}),
    C("token-file-missing", 3, "error: cannot read --token-file {tmp}/notoken: No such file or directory", *SAY, "--token-file", "{tmp}/notoken"),
    # --- conflicting sources -----------------------------------------------------------------------------
    C("conflict-token-key", 2, "error: --token and --key-file are 2 token sources at once; give one", *SAY, "--token", "x", "--key-file", "{tmp}/user.json"),
    C("conflict-env-key", 2, "error: CRGRPC_TOKEN and --key-file are 2 token sources at once; give one", *SAY, "--key-file", "{tmp}/user.json", env={"CRGRPC_TOKEN": "x"}),
    # --- config, TLS files ---------------------------------------------------------------------------------
    C("config-missing", 2, "error: cannot read --config '{tmp}/none.toml': no such file", *SAY, "--config", "{tmp}/none.toml"),
    C("config-bad-toml", 2, "error: invalid config {tmp}/bad.toml: …", *SAY, "--config", "{tmp}/bad.toml"),
    C("config-wrong-type", 2, "error: invalid config {tmp}/badtype.toml: defaults.retries must be a whole number from 0 to 4, not 'x'", *SAY, "--config", "{tmp}/badtype.toml"),
    C("cacert-missing", 2, "error: cannot read --cacert '{tmp}/none.pem': No such file or directory", "call", "127.0.0.1:{closed}", "M", "--cacert", "{tmp}/none.pem"),
    C("cacert-not-pem", 2, "error: --cacert '{tmp}/notjson.json' holds no PEM certificate", "call", "127.0.0.1:{closed}", "M", "--no-auth", "--cacert", "{tmp}/notjson.json"),
    # --- schema: --proto, --protoset, unknown names ------------------------------------------------------------
    C("proto-syntax", 5, "error: cannot compile .proto: {tmp}/bad.proto:2:25: Expected \";\".", *SAY, "--proto", "{tmp}/bad.proto"),
    C("proto-missing", 5, "error: cannot read {tmp}/none.proto: no such file", *SAY, "--proto", "{tmp}/none.proto"),
    C("protoset-garbage", 5, "error: {tmp}/notjson.json is not a protoset…", *SAY, "--protoset", "{tmp}/notjson.json"),
    C("method-unknown", 5, "error: method not found: Nope", *ECHO, "Nope"),
    C("method-unknown-service", 5, "error: method not found: foo.Bar/Baz", *ECHO, "foo.Bar/Baz"),
    C("method-malformed", 5, "error: not a method name: 'a//b'", *ECHO, "a//b"),
    C("symbol-unknown", 5, "error: symbol not found: foo.Nope", "describe", "--plaintext", "{echo}", "foo.Nope"),
    C("service-unknown", 5, "error: service not found: foo.Nope", "list", "--plaintext", "{echo}", "foo.Nope"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("inputs")
    (tmp / "binary.json").write_bytes(b'\xff\xfe{"name": "a"}')
    (tmp / "notjson.json").write_text("this is not json\n")
    (tmp / "array.json").write_text("[1, 2]\n")
    (tmp / "user.json").write_text(json.dumps({"type": "authorized_user", "client_id": "x", "client_secret": "y", "refresh_token": "z"}))
    (tmp / "noemail.json").write_text(json.dumps({"type": "service_account"}))
    (tmp / "brokenkey.json").write_text(
        json.dumps(
            {
                "type": "service_account",
                "client_email": "sa@p.iam.gserviceaccount.com",
                "private_key_id": "k",
                "private_key": "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n",
                "token_uri": "http://127.0.0.1:1/token",
            }
        )
    )
    (tmp / "bad.toml").write_text("defaults = [\n")
    (tmp / "badtype.toml").write_text('[defaults]\nretries = "x"\n')
    (tmp / "bad.proto").write_text('syntax = "proto3";\nmessage X { int32 a = 1 }\n')
    with echo_server() as echo, types_server() as types:
        yield {
            "echo": echo.address,
            "types": types.address,
            "tmp": str(tmp),
            "closed": str(free_port()),
            "expired": mint_jwt("https://127.0.0.1", lifetime=-3600),
        }


def _fill(text: str, places: dict[str, str]) -> str:
    for k, v in places.items():
        text = text.replace("{" + k + "}", v)
    return text


def _run(case: Case, places: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Result:
    argv = [_fill(a, places) for a in case.argv]
    env = {k: _fill(v, places) for k, v in case.env.items()}
    if case.process:
        return run_process(*argv, input=case.stdin, env=env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    stdin = case.stdin if isinstance(case.stdin, str) else case.stdin.decode()
    return run(*argv, stdin=stdin)


def test_matrix_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, places: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    r = _run(case, places, monkeypatch)
    assert "Traceback" not in r.stderr, r
    assert r.code == case.code, r
    if case.code == 0:
        assert r.stderr == "", r
        return
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, r
    expected = Case(case.id, (), case.code, _fill(case.line, places))
    assert expected.expects(errors[0]), f"{errors[0]!r} does not match {expected.line!r}"
    # Only error:, hint:, note: and warning: lines on stderr; no output for a failed request.
    assert all(ln.startswith(("error: ", "hint: ", "note: ", "warning: ")) for ln in r.stderr.splitlines()), r
    if case.code != 6 or "bidi" not in case.id:
        assert r.stdout == "", r


def test_binary_stdin_says_not_utf8(places: dict[str, str]) -> None:
    r = run_process("call", "--plaintext", places["echo"], "SayHello", "-d", "@-", input=b"\x95\xfa{}")
    assert r.code == 6
    assert "UTF-8" in r.stderr.splitlines()[0], r


def test_binary_stdin_in_bidi_cancels_after_good_messages(places: dict[str, str]) -> None:
    r = run_process(
        "call", "--plaintext", places["echo"], "SayHelloBidi", "-d", "@-",
        input=b'{"name":"a"}\n{"name":"b"}\n\x95\xfa\xff\n',
    )
    assert r.code == 6, r
    first = r.stderr.splitlines()[0]
    assert "UTF-8" in first and "(call cancelled after 2 messages sent)" in first, r
    assert len(r.stdout.splitlines()) <= 2


# -- the stream reader stays linear on big input (it was quadratic) ----------------------------------


def test_reader_is_linear_in_many_messages_and_in_small_chunks() -> None:
    import time

    from cloudrun_grpc_cli.core.codec import iter_messages, parse_messages

    many = "".join(f'{{"name":"m{i}"}}\n' for i in range(200_000))
    start = time.monotonic()
    assert len(parse_messages(many)) == 200_000
    big = '{"name": "' + "x" * 4_000_000 + '"}'  # one 4 MB message typed 1 KB at a time
    chunks = [big[i : i + 1024] for i in range(0, len(big), 1024)]
    assert [len(m["name"]) for m in iter_messages(chunks)] == [4_000_000]
    assert time.monotonic() - start < 20  # quadratic took minutes
