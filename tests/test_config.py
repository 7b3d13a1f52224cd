"""Environment variables, named targets, config defaults and their precedence; config show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .support.cli import run, run_process
from .support.recorder import MetadataRecorder
from .support.servers import echo_server


@pytest.fixture
def config_file(isolated_env: Path) -> Path:
    path = isolated_env / "config" / "crgrpc" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[str, MetadataRecorder]]:
    rec = MetadataRecorder()
    with echo_server(interceptors=(rec,)) as s:
        yield s.address, rec


def settings_of(*argv: str) -> dict[str, dict[str, object]]:
    r = run("config", "show", *argv, "-o", "json")
    assert r.code == 0, r
    return r.json["settings"]  # type: ignore[no-any-return]


def test_defaults_have_default_origin() -> None:
    s = settings_of()
    assert s["connect_timeout"] == {"value": 10.0, "source": "default"}
    assert s["header"] == {"value": [], "source": "default"}


def test_env_var_for_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRGRPC_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("CRGRPC_PLAINTEXT", "1")
    monkeypatch.setenv("CRGRPC_HEADER", "x-a: one two\nx-b: three")
    s = settings_of()
    assert s["connect_timeout"] == {"value": 3.0, "source": "env"}
    assert s["plaintext"] == {"value": True, "source": "env"}
    assert s["header"] == {"value": ["x-a: one two", "x-b: three"], "source": "env"}


def test_help_shows_env_vars() -> None:
    r = run_process("call", "--help")
    for name in ("CRGRPC_KEY_FILE", "CRGRPC_HEADER", "CRGRPC_RETRIES", "CRGRPC_OUTPUT", "CRGRPC_TIMEOUT", "CRGRPC_DATA"):
        assert name in r.stdout


def test_precedence_flag_target_env_defaults(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text(
        '[defaults]\nconnect_timeout = 7\nretries = 1\nmax_msg_size = 1000\n'
        '[targets.prod]\naddress = "https://echo.example.run.app"\nretries = 3\nconnect_timeout = 5\n'
    )
    monkeypatch.setenv("CRGRPC_RETRIES", "2")
    monkeypatch.setenv("CRGRPC_CONNECT_TIMEOUT", "6")
    s = settings_of("prod", "--connect-timeout", "4")
    assert s["connect_timeout"] == {"value": 4.0, "source": "flag"}
    assert s["retries"] == {"value": 3, "source": "target"}
    assert s["max_msg_size"] == {"value": 1000, "source": "config"}
    without_target = settings_of()
    assert without_target["retries"] == {"value": 2, "source": "env"}
    assert without_target["connect_timeout"] == {"value": 6.0, "source": "env"}


def test_named_target_resolves_address_and_audience(config_file: Path) -> None:
    config_file.write_text('[targets.prod]\naddress = "https://echo-abc-uc.a.run.app"\n')
    r = run("config", "show", "prod", "-o", "json")
    assert r.code == 0
    doc = r.json
    assert (doc["target"], doc["address"], doc["tls"], doc["audience"]) == (
        "https://echo-abc-uc.a.run.app", "echo-abc-uc.a.run.app:443", True, "https://echo-abc-uc.a.run.app"
    )
    assert doc["config_file"] == str(config_file)


def test_call_a_named_target(config_file: Path, recorded: tuple[str, MetadataRecorder]) -> None:
    address, rec = recorded
    config_file.write_text(
        f'[targets.local]\naddress = "http://{address}"\nheader = ["x-env: local"]\n'
    )
    rec.calls.clear()
    r = run("call", "local", "SayHello", "-d", '{"name":"n"}')
    assert (r.code, r.stdout) == (0, '{"message":"Hello n from K_REVISION local"}\n')
    assert rec.headers_for("/SayHello")[-1]["x-env"] == "local"


def test_name_beats_host_of_the_same_name(config_file: Path, recorded: tuple[str, MetadataRecorder]) -> None:
    address, _ = recorded
    config_file.write_text(f'[targets.localhost]\naddress = "http://{address}"\n')
    r = run("call", "localhost", "SayHello", "-d", '{"name":"n"}')
    assert r.code == 0


def test_config_flag_missing_file_exit_2(tmp_path: Path) -> None:
    r = run("config", "show", "--config", str(tmp_path / "nope.toml"))
    assert r.code == 2
    assert r.stderr.splitlines()[0] == f"error: cannot read --config '{tmp_path / 'nope.toml'}': no such file"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[defaults\n", "invalid config {path}: "),
        ('[defaults]\nretries = "many"\n', "invalid config {path}: defaults.retries must be a whole number from 0 to 4, not 'many'"),
        ("[defaults]\nbogus = 1\n", "invalid config {path}: unknown option defaults.bogus"),
        ('[targets.x]\nkey_file = "k"\n', "invalid config {path}: targets.x needs an address string"),
        ("[other]\n", "invalid config {path}: unknown table [other]"),
    ],
)
def test_bad_config_exit_2(config_file: Path, text: str, message: str) -> None:
    config_file.write_text(text)
    r = run("config", "show", "x")
    assert r.code == 2
    assert r.stderr.splitlines()[0].startswith("error: " + message.format(path=config_file)), r.stderr
    assert "Traceback" not in r.stderr


def test_config_show_redacts_tokens() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQtdGhhdC1pcy1zZWNyZXQ"
    r = run("config", "show", "--token", token, "-o", "json")
    assert r.code == 0
    assert token not in r.stdout
    assert r.json["settings"]["token"] == {"value": "eyJhbGci…", "source": "flag"}


def test_config_show_pretty() -> None:
    r = run("config", "show", "-o", "pretty")
    assert r.code == 0
    assert "connect_timeout" in r.stdout and "default" in r.stdout


def test_every_option_of_every_command_has_an_env_var() -> None:
    """Every option but --help/--version shows a CRGRPC_* variable in --help."""
    import re

    for argv in (["list"], ["describe"], ["call"], ["serve"], ["demo"], ["token", "print"], ["token", "show"], ["token", "decode"], ["config", "show"]):
        r = run_process(*argv, "--help")
        assert r.code == 0
        options = r.stdout.split("Options:")[1]
        # one entry per option: lines starting with two spaces and a dash
        entries = re.split(r"\n  (?=-)", "\n" + options)
        for raw in entries:
            entry = raw.strip()
            if not entry.startswith("-") or entry.startswith(("-h, --help", "--help")):
                continue
            assert "env var: CRGRPC_" in " ".join(entry.split()), (argv, entry[:60])
