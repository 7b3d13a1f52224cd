"""Pretty output on a real narrow terminal never alters the text.

crgrpc runs on a 40-column terminal in two ways: in tmux (`new-session -x 40`),
whose screen is read back with `capture-pane -J` — rows the terminal wrapped
joined again, as a person copying from it gets them — and on a pexpect pty of
40 columns, whose byte stream is what the terminal was sent. Either way, a
JSON response parses back as the same JSON (the text `json.dumps` writes,
nothing inserted, nothing cropped), a long header value is one line, proto
source lines are whole, table rows are whole and end without spaces.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from cloudrun_grpc_cli.demo import echo_pb2, echo_pb2_grpc

from .support.cli import run
from .support.hostile import mint_jwt, types_server
from .support.shells import crgrpc_script, shell_env

pytest.importorskip("pexpect")

COLUMNS = 40
LONG_VALUE = "a header value with spaces, far longer than the forty columns of this terminal: " + "x" * 30
LONG_NAME = 'a name with "quotes", a back\\slash, été, and words enough to wrap twice or more on forty columns'
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")


# --- the terminals --------------------------------------------------------------------------------


def tmux_screen(*argv: str, home: Path, columns: int = COLUMNS) -> list[str]:
    """crgrpc argv in a tmux window `columns` wide; its screen, wrapped rows joined."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    script = crgrpc_script()
    sock = Path(tempfile.mkdtemp(prefix="crgrpc-tmux-")) / "s"  # short: a socket path has a limit
    tmux = ["tmux", "-S", str(sock), "-f", "/dev/null"]
    command = f"{shlex.join([str(script), *argv])}; tmux -S {shlex.quote(str(sock))} wait-for -S crgrpc-done; sleep 600"
    env = shell_env(home)
    env.pop("TMUX", None)
    try:
        subprocess.run([*tmux, "new-session", "-d", "-x", str(columns), "-y", "150", command], env=env, check=True, timeout=30)
        subprocess.run([*tmux, "wait-for", "crgrpc-done"], env=env, check=True, timeout=60)
        screen = subprocess.run(
            [*tmux, "capture-pane", "-p", "-J", "-S", "-", "-E", "-"], env=env, check=True, timeout=30,
            capture_output=True, text=True,
        ).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, check=False, timeout=30, capture_output=True)
        shutil.rmtree(sock.parent, ignore_errors=True)
    lines = screen.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def pty_stream(*argv: str, home: Path, columns: int = COLUMNS) -> str:
    """What crgrpc sends to a pty `columns` wide (stdout and stderr), colours taken out."""
    import pexpect

    child = pexpect.spawn(
        str(crgrpc_script()), list(argv), env=shell_env(home), encoding="utf-8",
        dimensions=(24, columns), timeout=60,
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return ANSI.sub("", child.before).replace("\r\n", "\n")


def block(lines: list[str], start: str, end: str) -> list[str]:
    """lines from the first `start` line to the next `end` line, both included."""
    i = lines.index(start)
    return lines[i : lines.index(end, i) + 1]


# --- servers --------------------------------------------------------------------------------------


class LongEcho(echo_pb2_grpc.EchoServerServicer):  # type: ignore[misc]
    """SayHello with a long header, trailer and reply."""

    def SayHello(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.send_initial_metadata((("x-long-header", LONG_VALUE),))
        context.set_trailing_metadata((("x-long-trailer", LONG_VALUE),))
        return echo_pb2.EchoReply(message=f"Hello {request.name}, " + "and more " * 12)


@pytest.fixture(scope="module")
def long_echo() -> Iterator[str]:
    from grpc_reflection.v1alpha import reflection

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    echo_pb2_grpc.add_EchoServerServicer_to_server(LongEcho(), server)
    reflection.enable_server_reflection(("echo.EchoServer", reflection.SERVICE_NAME), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


LONG_PROTO = """
syntax = "proto3";
package layout.with.a.rather.long.package.name;

import "google/protobuf/timestamp.proto";

enum AnEnumWhoseNameAloneIsLongerThanTheTerminal {
  AN_ENUM_WHOSE_NAME_ALONE_IS_LONGER_THAN_THE_TERMINAL_UNSPECIFIED = 0;
  A_SECOND_VALUE_NAME_THAT_IS_ALSO_VERY_LONG = 1;
}

message AMessageWithLongLines {
  map<string, google.protobuf.Timestamp> a_map_field_with_a_very_long_name_indeed = 1;
  repeated AnEnumWhoseNameAloneIsLongerThanTheTerminal and_a_repeated_enum_field = 2;
}

service AServiceWithAVeryLongNameForANarrowTerminal {
  rpc AMethodWhoseNameIsLongToo(AMessageWithLongLines) returns (stream AMessageWithLongLines);
}
"""
PACKAGE = "layout.with.a.rather.long.package.name"


@pytest.fixture(scope="module")
def long_schema() -> Iterator[str]:
    """A reflection server of LONG_PROTO (no methods served: describe and list only)."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from grpc_reflection.v1alpha import reflection
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "layout.proto"
        src.write_text(LONG_PROTO)
        out = Path(tmp) / "set.pb"
        include = Path(protoc.__file__).parent / "_proto"
        assert protoc.main(["protoc", f"-I{tmp}", f"-I{include}", f"--descriptor_set_out={out}", "--include_imports", str(src)]) == 0
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service = f"{PACKAGE}.AServiceWithAVeryLongNameForANarrowTerminal"
    reflection.enable_server_reflection((service, reflection.SERVICE_NAME), server, pool=pool)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0).wait()


# --- calls --------------------------------------------------------------------------------------


def test_a_long_reply_and_header_on_40_columns(long_echo: str, tmp_path: Path) -> None:
    data = json.dumps({"name": LONG_NAME}, ensure_ascii=False)
    expected = run("call", "--plaintext", long_echo, "SayHello", "-d", data, "-o", "json").json
    text = json.dumps(expected, indent=2, ensure_ascii=False).split("\n")
    for lines in (
        tmux_screen("call", "--plaintext", long_echo, "SayHello", "-d", data, home=tmp_path),
        pty_stream("call", "--plaintext", long_echo, "SayHello", "-d", data, home=tmp_path).split("\n"),
    ):
        shown = block(lines, "{", "}")
        assert shown == text  # json.dumps' own text, line for line
        assert json.loads("\n".join(shown)) == expected  # copied back into -d, the same JSON
        assert f"  x-long-header: {LONG_VALUE}" in lines
        assert f"  x-long-trailer: {LONG_VALUE}" in lines


def test_a_nested_reply_on_40_columns(tmp_path: Path) -> None:
    """Indented JSON several levels deep, with long strings and lists: the same text."""
    data = json.dumps({
        "lastWord": LONG_NAME,
        "nums": list(range(40)),
        "counts": {"a key that is long enough to wrap by itself on forty columns": 7},
        "child": {"lastWord": LONG_NAME, "child": {"blob": base64.b64encode(b"hello world " * 8).decode()}},
        "color": "GREEN",
    })
    with types_server() as server:
        target = f"http://{server.address}"
        expected = run("call", target, "hostile.Types/Echo", "-d", data, "-o", "json").json
        lines = tmux_screen("call", target, "hostile.Types/Echo", "-d", data, home=tmp_path)
    shown = block(lines, "{", "}")
    assert shown == json.dumps(expected, indent=2, ensure_ascii=False).split("\n")
    assert json.loads("\n".join(shown)) == expected


def test_the_token_panel_on_40_columns(long_echo: str, tmp_path: Path) -> None:
    token = mint_jwt("https://127.0.0.1")
    lines = tmux_screen("call", "--plaintext", long_echo, "SayHello", "-v", "--token", token, "--allow-plaintext-token", home=tmp_path)
    panel = block(lines, "token from --token", " token <redacted>  (--show-token shows it)")
    assert [line.split(None, 1)[0] for line in panel[1:-1]] == ["iss", "aud", "azp", "sub", "email", "email_verified", "iat", "exp"]
    assert " azp             caller@test-project.iam.gserviceaccount.com" in panel
    assert " aud             https://127.0.0.1" in panel
    assert all(line == line.rstrip() for line in panel)


# --- describe and list ----------------------------------------------------------------------------


def test_describe_long_proto_lines_on_40_columns(long_schema: str, tmp_path: Path) -> None:
    for symbol in (
        f"{PACKAGE}.AServiceWithAVeryLongNameForANarrowTerminal",
        f"{PACKAGE}.AMessageWithLongLines",
        f"{PACKAGE}.AnEnumWhoseNameAloneIsLongerThanTheTerminal",
    ):
        row = run("describe", "--plaintext", long_schema, symbol, "-o", "json").json
        expected = [f"{row['symbol']} is a {row['kind']}:", *row["proto"].rstrip("\n").split("\n")]
        assert max(len(line) for line in expected) > 2 * COLUMNS  # the test means something
        assert tmux_screen("describe", "--plaintext", long_schema, symbol, home=tmp_path) == expected
        stream = pty_stream("describe", "--plaintext", long_schema, symbol, home=tmp_path)
        assert stream.rstrip("\n").split("\n") == expected


def test_list_methods_on_40_columns_whole_rows_no_trailing_spaces(long_schema: str, tmp_path: Path) -> None:
    service = f"{PACKAGE}.AServiceWithAVeryLongNameForANarrowTerminal"
    method = f"{service}/AMethodWhoseNameIsLongToo"
    message = f"{PACKAGE}.AMessageWithLongLines"
    pad = " " * (len(method) - len("method"))
    expected = [
        f"method{pad}  kind    request → response",
        f"{method}  server  {message} → {message}",
    ]
    assert tmux_screen("list", "--plaintext", long_schema, service, home=tmp_path) == expected
    assert pty_stream("list", "--plaintext", long_schema, service, home=tmp_path).rstrip("\n").split("\n") == expected


def test_list_services_on_40_columns(long_schema: str, tmp_path: Path) -> None:
    assert tmux_screen("list", "--plaintext", long_schema, home=tmp_path) == [
        "grpc.reflection.v1alpha.ServerReflection",
        f"{PACKAGE}.AServiceWithAVeryLongNameForANarrowTerminal",
    ]


# --- tokens ---------------------------------------------------------------------------------------


def test_token_show_on_40_columns_whole_rows_no_trailing_spaces(tmp_path: Path) -> None:
    aud = "https://a-service-with-a-long-name-abcdefghij-uc.a.run.app"
    token = mint_jwt(aud)
    lines = tmux_screen("token", "show", aud, "--token", token, home=tmp_path)
    assert lines[:4] == [
        " source    --token",
        " email     caller@test-project.iam.gserviceaccount.com",
        f" audience  {aud}",
        " issuer    https://accounts.google.com",
    ]
    assert re.fullmatch(r" issued    \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \((\d+s ago|just now)\)", lines[4]), lines[4]
    assert lines[5:] == [" expiry    expires in 59m"]


def test_token_decode_on_40_columns(tmp_path: Path) -> None:
    token = mint_jwt("https://a-service-with-a-long-name-abcdefghij-uc.a.run.app")
    lines = tmux_screen("token", "decode", token, home=tmp_path)
    assert block(lines, "header", " kid  hostile-key-1") == ["header", " typ  JWT", " alg  RS256", " kid  hostile-key-1"]
    claims = block(lines, "claims", lines[lines.index("claims") + 8])
    assert claims[1:6] == [
        " iss             https://accounts.google.com",
        " aud             https://a-service-with-a-long-name-abcdefghij-uc.a.run.app",
        " azp             caller@test-project.iam.gserviceaccount.com",
        " sub             112233445566778899",
        " email           caller@test-project.iam.gserviceaccount.com",
    ]
    assert all(line == line.rstrip() for line in lines)
    assert lines[-1] == "signature not checked: --verify checks it"


# --- no trailing spaces, in-process too ------------------------------------------------------------


def test_tables_have_no_trailing_spaces(long_schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    service = f"{PACKAGE}.AServiceWithAVeryLongNameForANarrowTerminal"
    token = mint_jwt("https://echo.example.com")
    for argv in (
        ("list", "--plaintext", long_schema, service),
        ("token", "show", "https://echo.example.com", "--token", token),
        ("token", "decode", token),
        ("config", "show"),
    ):
        r = run(*argv, "-o", "pretty", tty=True)
        assert r.code == 0, r
        assert [line for line in r.stdout.split("\n") if line != line.rstrip()] == [], argv
