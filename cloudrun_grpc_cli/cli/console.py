"""The Environment of the running command, and stderr lines: error:, hint:, notices.

Plain text, no rich: errors must print even when rich is not loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from ..errors import CrgrpcError, UsageError
from ..render.env import Environment
from ..render.safetext import visible

if TYPE_CHECKING:
    from ..render.sinks import Sink

_ENV: ContextVar[Environment | None] = ContextVar("crgrpc_env", default=None)
# The sink of the running command: the error boundary (cli.main) reports a
# failure into it before printing the error line.
SINK: ContextVar[Sink | None] = ContextVar("crgrpc_sink", default=None)


def current_env() -> Environment:
    env = _ENV.get()
    if env is None:
        env = Environment()
        _ENV.set(env)
    return env


def push_env(env: Environment) -> Token[Environment | None]:
    return _ENV.set(env)


def pop_env(token: Token[Environment | None]) -> None:
    _ENV.reset(token)


def set_sink(sink: Sink | None) -> None:
    """The running command's sink: on a failure, cli.main reports into it and finishes it."""
    SINK.set(sink)


def active_sink() -> Sink | None:
    return SINK.get()


def _style(env: Environment, text: str, code: str) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if env.use_color(env.stderr_isatty) else text


def print_error(err: CrgrpcError, env: Environment | None = None) -> None:
    env = env or current_env()
    # One error is one line: text from a server never forges a second one, nor
    # reaches the terminal with its control characters.
    lines = [f"{_style(env, 'error:', '1;31')} {visible(err.message)}"]
    lines += [f"{_style(env, 'hint:', '1;33')} {visible(h)}" for h in err.hints]
    env.stderr.write("\n".join(lines) + "\n")
    env.stderr.flush()


def notice(text: str, env: Environment | None = None) -> None:
    """A one-line notice on stderr (not an error)."""
    env = env or current_env()
    env.stderr.write(f"{_style(env, 'note:', '1;36')} {visible(text)}\n")
    env.stderr.flush()


def warn(text: str, env: Environment | None = None) -> None:
    env = env or current_env()
    env.stderr.write(f"{_style(env, 'warning:', '1;33')} {visible(text)}\n")
    env.stderr.flush()


OUTPUT_MODES = ("pretty", "json", "full", "events")


def choose_mode(requested: str | None, env: Environment, allowed: tuple[str, ...]) -> str:
    """-o, or the default: pretty on a terminal, json in a pipe."""
    if requested is None or requested.strip().lower() == "auto":
        requested = None  # auto: the default
    mode = (requested or ("pretty" if env.stdout_isatty else "json")).strip().lower()
    if mode not in OUTPUT_MODES:
        raise UsageError(f"unknown output mode {requested!r}", f"use one of: {', '.join(allowed)}")
    if mode not in allowed:
        raise UsageError(
            f"-o {mode} is not available for this command", f"use one of: {', '.join(allowed)}"
        )
    return mode


def write_json_lines(env: Environment, rows: Sequence[Mapping[str, object]]) -> None:
    from ..core.codec import dumps

    for row in rows:
        env.stdout.write(dumps(row) + "\n")
    env.stdout.flush()
