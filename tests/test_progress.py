"""Spinners and the live message counter appear only in pretty mode with stderr on a terminal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support.cli import run
from .support.servers import echo_server


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


def test_live_counter_on_a_terminal(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloStream", "-d", '{"count": 400}', tty=True, color="always")
    assert r.code == 0
    assert "receiving: " in r.stdout
    assert " messages · " in r.stdout


@pytest.mark.parametrize("mode", ["json", "full", "events", "pretty"])
def test_nothing_in_a_pipe(server: str, mode: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloStream", "-d", '{"count": 400}', "-o", mode)
    assert r.code == 0
    assert "receiving" not in r.stdout + r.stderr
    assert "\x1b[" not in r.stdout + r.stderr
    assert r.stderr == ""


def test_no_spinner_when_only_stdout_is_a_terminal_but_output_is_json(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHelloStream", "-d", '{"count": 400}', "-o", "json", tty=True, color="always")
    assert r.code == 0
    assert "receiving" not in r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == 400
