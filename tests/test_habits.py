"""grpcurl habits (issue 11, item 6) and -o auto (item 7): what to type, in one error line
and one hint, exit 2, before anything is dialed."""

from __future__ import annotations

import pytest

from .support.cli import run


@pytest.mark.parametrize(
    ("argv", "error", "hint"),
    [
        (["-plaintext", "call", "h", "M"], "unknown option -plaintext",
         "did you mean --plaintext? (crgrpc's long options take two dashes)"),
        (["call", "-insecure", "h", "M"], "unknown option -insecure",
         "did you mean --insecure? (crgrpc's long options take two dashes)"),
        (["call", "h", "M", "-max-time", "3"], "unknown option -max-time",
         "did you mean --timeout? (-max-time is grpcurl's name)"),
        (["call", "h", "M", "-rpc-header", "x: y"], "unknown option -rpc-header",
         "did you mean -H? (-rpc-header is grpcurl's name)"),
        (["--plaintext", "call", "127.0.0.1:1", "SayHello", "-d", "{}"],
         "options go after the command: --plaintext comes before 'call'",
         "write: crgrpc call --plaintext 127.0.0.1:1 SayHello -d '{}'"),
        (["-d", "{}", "-H", "x: y", "call", "h", "M"],
         "options go after the command: -d comes before 'call'",
         "write: crgrpc call -d '{}' -H 'x: y' h M"),
        (["--key-file", "k.json", "token", "print", "https://x.run.app"],
         "options go after the command: --key-file comes before 'token print'",
         "write: crgrpc token print --key-file k.json https://x.run.app"),
    ],
)
def test_grpcurl_habits_say_what_to_type(argv: list[str], error: str, hint: str) -> None:
    r = run(*argv)
    assert (r.code, r.stdout, r.stderr) == (2, "", f"error: {error}\nhint: {hint}\n")


def test_two_dash_flags_and_values_that_look_like_flags_pass() -> None:
    r = run("call", "--plaintext", "127.0.0.1:1", "SayHello", "-d", "{}")
    assert r.code == 4  # it dialed: no habit was seen
    assert r.stderr.startswith("error: cannot connect to 127.0.0.1:1: connection refused\n")


def test_output_auto_is_the_default_choice(isolated_env) -> None:  # type: ignore[no-untyped-def]
    config = isolated_env / "config" / "crgrpc" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('[defaults]\noutput = "auto"\n')
    shown = run("config", "show")  # the config's auto, in a pipe: JSON
    assert shown.code == 0
    assert shown.lines[0]["settings"]["output"] == {"value": "auto", "source": "config"}
    flag = run("config", "show", "-o", "auto")
    assert flag.code == 0 and flag.lines[0]["settings"]["output"] == {"value": "auto", "source": "flag"}
    terminal = run("config", "show", "-o", "auto", tty=True)
    assert terminal.code == 0 and terminal.stdout.startswith("config file: ")  # pretty on a terminal
