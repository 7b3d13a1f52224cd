"""The option table (cli/options.py) is the one declaration of every option: typer
parameters, CRGRPC_* variables, the config file's keys and every range come from it,
and a value from a flag, a variable or the config file gets the same checks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudrun_grpc_cli.cli.options import (
    OPTION_NAMES,
    OPTIONS,
    ROWS,
    TOKEN_OPTION_NAMES,
    CommonOptions,
    Opt,
)

from .support.cli import run
from .support.servers import echo_server

PKG = Path(__file__).resolve().parent.parent / "cloudrun_grpc_cli"
COMMON = set(OPTION_NAMES)

# Which rows each command takes: stated here, not derived from the table.
COMMANDS: dict[str, set[str]] = {
    "list": COMMON,
    "describe": COMMON,
    "call": COMMON | {"data", "allow_unknown_fields", "each", "concurrency"},
    "doctor": COMMON,
    "config show": COMMON,
    "token print": set(TOKEN_OPTION_NAMES) - {"output", "color"},  # prints the token alone
    "token show": set(TOKEN_OPTION_NAMES),
    "token decode": {"verify", "verify_audience", "certs", "output", "color", "proxy"},
    "serve": {"host", "port", "tls_cert", "tls_key", "reflection", "require_token", "serve_audience", "certs", "allow_email"},
    "demo": {"color"},
    "bench": COMMON | {"data", "allow_unknown_fields", "total", "duration", "bench_concurrency", "connections", "rate", "warmup", "workers", "max_error_rate"},
    "proxy": (COMMON - {"proto", "import_path", "protoset", "protoset_out", "no_schema_cache", "emit_defaults", "proto_names", "show_token"}) | {"proxy_port", "bind", "grace"},
}


@pytest.fixture
def config_file(isolated_env: Path) -> Path:
    path = isolated_env / "config" / "crgrpc" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with echo_server() as s:
        yield s.address


# --- numbers: one range, from flags, variables and the config file alike -------------------------

RANGES = {
    "connect_timeout": "a finite number from 0.001 to 99999999",
    "timeout": "a finite number from 0.001 to 99999999",
    "max_msg_size": "a whole number from 1 to 2147483647",
    "retries": "a whole number from 0 to 4",
    "mint_timeout": "a finite number from 1 to 3600",
    "port": "a whole number from 0 to 65535",
    "concurrency": "a whole number from 1 to 256",
    "total": "a whole number from 1 to 1000000000",
    "duration": "a finite number from 0.001 to 99999999",
    "bench_concurrency": "a whole number from 1 to 100000",
    "connections": "a whole number from 1 to 10000",
    "rate": "a finite number from 0.01 to 10000000",
    "workers": "a whole number from 1 to 1024",
    "max_error_rate": "a finite number from 0 to 1",
    "proxy_port": "a whole number from 0 to 65535",
    "grace": "a finite number from 0 to 99999999",
}

# (text on the command line or in a variable, the TOML literal, how the config error shows it)
BAD = {
    "connect_timeout": [("nan", "nan", "nan"), ("inf", "inf", "inf"), ("-1", "-1", "-1"), ("0", "0", "0"), ("1e10", "1e10", "10000000000.0"), ("100000000", "100000000", "100000000")],
    "timeout": [("nan", "nan", "nan"), ("inf", "inf", "inf"), ("-1", "-1", "-1"), ("0", "0.0", "0.0"), ("1e10", "1e10", "10000000000.0"), ("0.0009", "0.0009", "0.0009")],
    "max_msg_size": [("nan", "nan", "nan"), ("inf", "inf", "inf"), ("-5", "-5", "-5"), ("0", "0", "0"), ("2147483648", "2147483648", "2147483648"), ("1.5", "1.5", "1.5")],
    "retries": [("nan", "nan", "nan"), ("inf", "inf", "inf"), ("-1", "-1", "-1"), ("5", "5", "5"), ("100", "100", "100"), ("x", '"x"', "'x'")],
    "mint_timeout": [("nan", "nan", "nan"), ("inf", "inf", "inf"), ("0.5", "0.5", "0.5"), ("3601", "3601", "3601")],
    "port": [("nan", None, None), ("inf", None, None), ("-1", None, None), ("65536", None, None)],
    "concurrency": [("nan", None, None), ("0", None, None), ("257", None, None), ("1.5", None, None)],
}

NUMERIC_CASES = [(name, text, toml, shown) for name, cases in BAD.items() for text, toml, shown in cases]


def test_the_numeric_rows_are_these() -> None:
    assert {r.name for r in OPTIONS if r.is_number} == set(RANGES)
    assert {r.name: r.range_text for r in OPTIONS if r.is_number} == RANGES


def _argv(row: Opt) -> list[str]:
    if row.name == "concurrency":
        return ["call", "127.0.0.1:1", "M", "--each"]
    return ["serve"] if row.name == "port" else ["config", "show"]


def _command(row: Opt) -> str:
    if row.name == "concurrency":
        return "call"
    return "serve" if row.name == "port" else "config show"


@pytest.mark.parametrize(("name", "text", "toml", "shown"), NUMERIC_CASES)
def test_bad_number_flag(name: str, text: str, toml: str | None, shown: str | None) -> None:
    row = ROWS[name]
    flag = row.flags[-1]
    r = run(*_argv(row), flag, text)
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        f"error: invalid value for '{flag}': {text} is not {RANGES[name]}\n"
        f"hint: run 'crgrpc {_command(row)} --help'\n"
    )


@pytest.mark.parametrize(("name", "text", "toml", "shown"), NUMERIC_CASES)
def test_bad_number_env(name: str, text: str, toml: str | None, shown: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    row = ROWS[name]
    monkeypatch.setenv(row.env, text)
    r = run(*_argv(row))
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        f"error: invalid value for {row.env} ({row.flags[-1]}): {text} is not {RANGES[name]}\n"
        f"hint: run 'crgrpc {_command(row)} --help'\n"
    )


@pytest.mark.parametrize(("name", "text", "toml", "shown"), [c for c in NUMERIC_CASES if c[2] is not None])
@pytest.mark.parametrize("table", ["defaults", "targets.prod"])
def test_bad_number_config(name: str, text: str, toml: str, shown: str, table: str, config_file: Path) -> None:
    address = 'address = "https://x.run.app"\n' if table.startswith("targets.") else ""
    config_file.write_text(f"[{table}]\n{address}{name} = {toml}\n")
    r = run("config", "show")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == f"error: invalid config {config_file}: {table}.{name} must be {RANGES[name]}, not {shown}\n"


def test_config_retries_100_refused_like_the_flag(config_file: Path) -> None:
    flag = run("call", "127.0.0.1:1", "M", "--retries", "100")
    config_file.write_text("[defaults]\nretries = 100\n")
    from_file = run("call", "127.0.0.1:1", "M")
    assert (flag.code, from_file.code) == (2, 2)
    assert flag.stderr.splitlines()[0] == "error: invalid value for '--retries': 100 is not a whole number from 0 to 4"
    assert from_file.stderr == (
        f"error: invalid config {config_file}: defaults.retries must be a whole number from 0 to 4, not 100\n"
    )


@pytest.mark.parametrize("value", ["0", "-5"])
def test_max_msg_size_zero_and_negative_refused(value: str, config_file: Path) -> None:
    config_file.write_text(f"[defaults]\nmax_msg_size = {value}\n")
    r = run("call", "127.0.0.1:1", "M")
    assert r.code == 2
    assert r.stderr == (
        f"error: invalid config {config_file}: defaults.max_msg_size must be a whole number from 1 to 2147483647, not {value}\n"
    )
    config_file.unlink()
    r = run("call", "127.0.0.1:1", "M", "--max-msg-size", value)
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        f"error: invalid value for '--max-msg-size': {value} is not a whole number from 1 to 2147483647"
    )


def test_numbers_at_the_edges_are_accepted(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("[defaults]\ntimeout = 99999999\nmax_msg_size = 2147483647\nretries = 4\n")
    monkeypatch.setenv("CRGRPC_CONNECT_TIMEOUT", "0.001")
    r = run("config", "show", "-o", "json")
    assert r.code == 0, r
    s = r.json["settings"]
    assert s["timeout"] == {"value": 99999999.0, "source": "config"}
    assert s["max_msg_size"] == {"value": 2147483647, "source": "config"}
    assert s["retries"] == {"value": 4, "source": "config"}
    assert s["connect_timeout"] == {"value": 0.001, "source": "env"}


def test_timeout_1e10_is_a_usage_error_not_a_deadline(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "--timeout", "1e10")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == (
        "error: invalid value for '--timeout': 1e10 is not a finite number from 0.001 to 99999999\n"
        "hint: run 'crgrpc call --help'\n"
    )


def test_the_largest_timeout_is_a_working_deadline(server: str) -> None:
    r = run("call", "--plaintext", server, "SayHello", "-d", '{"name":"t"}', "--timeout", "99999999", "--connect-timeout", "99999999")
    assert (r.code, r.stdout) == (0, '{"message":"Hello t from K_REVISION local"}\n'), r


def test_connect_timeout_nan_exits_2_at_once(server: str) -> None:
    started = time.monotonic()
    r = run("call", "--plaintext", server, "SayHello", "--connect-timeout", "nan")
    assert time.monotonic() - started < 5
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr.splitlines()[0] == (
        "error: invalid value for '--connect-timeout': nan is not a finite number from 0.001 to 99999999"
    )


def test_help_shows_ranges_with_word_metavars() -> None:
    help_text = " ".join(_help("call").split())
    assert "--timeout SECONDS Deadline in seconds for the call; each reflection request gets the same deadline, by default 10 s (0.001-99999999)." in help_text
    assert "--connect-timeout SECONDS Seconds to wait for the connection (0.001-99999999)." in help_text
    assert "--max-msg-size BYTES Largest response message accepted, in bytes; by default 4 MiB (1-2147483647)." in help_text
    assert "--retries N Retry UNAVAILABLE up to N times with gRPC's retry policy (0-4)." in help_text
    assert "range" not in help_text and "x>=" not in help_text
    assert "--port PORT Port, by default $PORT, else 8080 (0-65535)." in " ".join(_help("serve").split())


# --- --timeout: the call's deadline, and each reflection request's ------------------------------


def test_timeout_settings() -> None:
    from cloudrun_grpc_cli.cli.build import build_settings
    from cloudrun_grpc_cli.cli.options import default_options
    from cloudrun_grpc_cli.render.env import Environment

    unset = build_settings(default_options(), Environment()).channel
    assert (unset.timeout, unset.reflection_timeout) == (None, 10.0)
    given = build_settings(default_options()._replace(timeout=2.5), Environment()).channel
    assert (given.timeout, given.reflection_timeout) == (2.5, 2.5)


@pytest.mark.parametrize("command", ["list", "describe"])
def test_list_and_describe_take_timeout(command: str, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    r = run(command, "--plaintext", server, "--timeout", "5", "-o", "json")
    assert r.code == 0, r
    first = r.lines[0]
    assert first.get("service", first.get("symbol")) == "echo.EchoServer"
    monkeypatch.setenv("CRGRPC_TIMEOUT", "0")
    r = run(command, "--plaintext", server)
    assert r.code == 2
    assert r.stderr.splitlines()[0] == (
        "error: invalid value for CRGRPC_TIMEOUT (--timeout): 0 is not a finite number from 0.001 to 99999999"
    )


def test_timeout_in_the_config_file(config_file: Path) -> None:
    config_file.write_text("[defaults]\ntimeout = 5\n")
    r = run("config", "show", "-o", "json")
    assert r.code == 0
    assert r.json["settings"]["timeout"] == {"value": 5.0, "source": "config"}


# --- config file shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defaults = 3\n", "defaults must be a table\nhint: the config has [defaults] with options"),
        ("targets = 3\n", "targets must be a table\nhint: the config has [targets.NAME] tables, each with an address"),
        ('targets = "prod"\n', "targets must be a table\nhint: the config has [targets.NAME] tables, each with an address"),
        ("[targets]\nprod = 3\n", 'targets.prod must be a table\nhint: the config has [targets.prod] with address = "https://SERVICE.run.app"'),
        ("[defaults.retries]\n", "defaults.retries must be a whole number from 0 to 4, not a table"),
        ("[defaults]\nplaintext = \"yes\"\n", "defaults.plaintext must be true or false, not 'yes'"),
        ("[defaults]\nauth = 1\n", "defaults.auth must be true or false, not 1"),
        ("[defaults]\nretries = true\n", "defaults.retries must be a whole number from 0 to 4, not true"),
        ('[defaults]\nretries = "2"\n', "defaults.retries must be a whole number from 0 to 4, not '2'"),
        ("[defaults]\nretries = 2.0\n", "defaults.retries must be a whole number from 0 to 4, not 2.0"),
        ("[defaults]\nconnect_timeout = [1]\n", "defaults.connect_timeout must be a finite number from 0.001 to 99999999, not [1]"),
        ("[defaults]\nheader = 3\n", "defaults.header must be a string or a list of strings, not 3"),
        ("[defaults]\nkey_file = 3\n", "defaults.key_file must be a string, not 3"),
        ('[defaults]\noutput = ["json"]\n', "defaults.output must be a string, not ['json']"),
        ('[targets.p]\naddress = "h"\nretries = 9\n', "targets.p.retries must be a whole number from 0 to 4, not 9"),
        ('[defaults]\nconfig = "x.toml"\n', "unknown option defaults.config\nhint: options are the long flag names with _ for -, e.g. key_file"),
        ('[defaults]\ndata = "{}"\n', "unknown option defaults.data\nhint: options are the long flag names with _ for -, e.g. key_file"),
    ],
)
def test_config_shapes_exit_2(text: str, message: str, config_file: Path) -> None:
    config_file.write_text(text)
    r = run("call", "127.0.0.1:1", "M")
    assert (r.code, r.stdout) == (2, "")
    assert r.stderr == f"error: invalid config {config_file}: {message}\n"


def test_a_bad_target_is_reported_whichever_target_is_used(config_file: Path) -> None:
    config_file.write_text('[targets.good]\naddress = "https://g.run.app"\n[targets.bad]\naddress = "h"\nretries = -1\n')
    r = run("config", "show", "good")
    assert r.code == 2
    assert r.stderr == f"error: invalid config {config_file}: targets.bad.retries must be a whole number from 0 to 4, not -1\n"


def _complete_bash(words: str, cword: int) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "cloudrun_grpc_cli"],
        env={**os.environ, "_CRGRPC_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    return proc.stdout.split()


LOCAL = '[targets.local]\naddress = "http://{server}"\n'


@pytest.mark.parametrize(
    "text",
    ["defaults = 3\n" + LOCAL, "targets = 3\n", "[targets]\nlocal = 3\n", "[defaults]\nretries = 100\n" + LOCAL, LOCAL + "retries = nan\n"],
)
def test_completion_offers_nothing_on_a_bad_config(text: str, server: str, config_file: Path) -> None:
    config_file.write_text(LOCAL.format(server=server))
    assert _complete_bash("crgrpc call local SayHelloB", 3) == ["SayHelloBidi"]
    config_file.write_text(text.format(server=server))
    assert _complete_bash("crgrpc call local SayHelloB", 3) == []


# --- the table is the one declaration -------------------------------------------------------------


def _commands() -> dict[str, object]:
    import typer

    from cloudrun_grpc_cli.cli import main

    main._register()
    root = typer.main.get_command(main.app)
    out: dict[str, object] = {}
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        if subs:
            out.update({f"{name} {sub}": c for sub, c in subs.items()})
        else:
            out[name] = cmd
    return out


def _help(command: str) -> str:
    import typer

    cmd = _commands()[command]
    ctx = typer.Context(cmd, info_name=f"crgrpc {command}")  # type: ignore[arg-type]
    return cmd.get_help(ctx)  # type: ignore[attr-defined,no-any-return]


def _flags(row: Opt) -> list[str]:
    return [f for decl in row.flags for f in decl.split("/")]


def _own_help(command: str, row: Any) -> str:
    """The row's help, or the command's own words for it (the modes -o takes there)."""
    from cloudrun_grpc_cli.cli.options import MODES_BASIC, MODES_CALL
    from cloudrun_grpc_cli.cli.proxy_cmd import MODES_PROXY, VERBOSE_PROXY

    if command == "proxy" and row.name in ("output", "verbose"):
        return MODES_PROXY if row.name == "output" else VERBOSE_PROXY
    if row.name == "output":
        return MODES_CALL if command == "call" else MODES_BASIC
    return str(row.help_text)


def test_every_typer_option_is_a_row() -> None:
    """Each option of each command is one row: same flags, variable, help and metavar."""
    commands = _commands()
    assert set(commands) == set(COMMANDS)
    for command, cmd in commands.items():
        seen = set()
        for param in cmd.params:  # type: ignore[attr-defined]
            if param.param_type_name != "option" or param.name == "help":
                continue
            flags = [*param.opts, *param.secondary_opts]
            rows = [r for r in OPTIONS if _flags(r) == flags and r.name in COMMANDS[command]]
            assert len(rows) == 1, (command, flags)
            row = rows[0]
            helps = _own_help(command, row)
            assert (param.name, param.envvar, param.metavar) == (row.param, row.env, row.metavar), (command, row.name)
            assert param.help == helps, (command, row.name)
            seen.add(row.name)
        assert seen == COMMANDS[command], command
    assert set().union(*COMMANDS.values()) == set(ROWS), "a row no command takes"


def test_every_row_in_its_commands_help_with_its_variable() -> None:
    for command, names in COMMANDS.items():
        options = _help(command).split("Options:")[1]
        entries = [" ".join(e.split()) for e in re.split(r"\n  (?=-)", "\n" + options) if e.strip().startswith("-")]
        for name in names:
            row = ROWS[name]
            head = ", ".join(row.flags).replace("/", " / ")
            if row.metavar:
                head += f" {row.metavar}"
            matching = [e for e in entries if e.startswith(head + " ")]
            assert len(matching) == 1, (command, head)
            squeezed = "".join(matching[0].split())  # help text wraps, at hyphens too
            assert "".join(f"{_own_help(command, row)} [env var: {row.env}".split()) in squeezed, (command, matching[0])


def test_no_option_declared_outside_the_table() -> None:
    """No typer.Option, envvar= or CRGRPC_ name in cli/ but in options.py (and the root's --version)."""
    import ast

    options, names = [], []
    for path in sorted((PKG / "cli").glob("*.py")):
        if path.name == "options.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in ("typer.Option", "Option"):
                flags = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                options.append((path.name, flags))
            if isinstance(node, ast.keyword) and node.arg == "envvar":
                names.append(f"{path.name}:{node.value.lineno}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"CRGRPC_[A-Z_]+", node.value):
                names.append(f"{path.name}:{node.lineno}")
    assert (options, names) == ([("main.py", ["--version"])], [])
    config_source = (PKG / "cli" / "config.py").read_text()
    assert not re.search(r"^_(BOOL|LIST|PATH|FLOAT|INT)\b", config_source, re.M)


def test_common_options_fields_are_rows() -> None:
    assert set(CommonOptions._fields) - {"origins"} == set(OPTION_NAMES)
    assert {r.name for r in OPTIONS if r.config_key} == COMMON - {"config"}
    assert all(ROWS[n].config_key == n for n in COMMON - {"config"})
    assert all(r.env.startswith("CRGRPC_") for r in OPTIONS)


def test_env_var_for_a_command_row(monkeypatch: pytest.MonkeyPatch, server: str) -> None:
    monkeypatch.setenv("CRGRPC_DATA", '{"name":"env"}')
    r = run("call", "--plaintext", server, "SayHello")
    assert (r.code, r.stdout) == (0, '{"message":"Hello env from K_REVISION local"}\n')
