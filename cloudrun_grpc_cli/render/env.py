"""The environment output goes to: streams, terminal flags, colour.

Writers never touch sys.stdout directly, so tests can simulate a terminal
or a pipe by passing another Environment (httpie's pattern).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Environment:
    """The streams and terminal facts of one run (a test passes its own).

    The terminal flags default to what the streams say. (A plain class: this
    module loads on every start, where a dataclass costs about a millisecond.)
    """

    __slots__ = (
        "cache_dir", "color", "stderr", "stderr_isatty", "stdin", "stdin_isatty", "stdout",
        "stdout_isatty",
    )

    def __init__(
        self,
        *,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        stdin: IO[str] | None = None,
        stdout_isatty: bool | None = None,
        stderr_isatty: bool | None = None,
        stdin_isatty: bool | None = None,
        color: str = "auto",  # auto | always | never
        # Where crgrpc caches tokens and schemas; None: $XDG_CACHE_HOME/crgrpc (the demo passes its own).
        cache_dir: Path | None = None,
    ) -> None:
        self.stdout: IO[str] = sys.stdout if stdout is None else stdout
        self.stderr: IO[str] = sys.stderr if stderr is None else stderr
        self.stdin: IO[str] = sys.stdin if stdin is None else stdin
        self.stdout_isatty = _isatty(self.stdout) if stdout_isatty is None else stdout_isatty
        self.stderr_isatty = _isatty(self.stderr) if stderr_isatty is None else stderr_isatty
        self.stdin_isatty = _isatty(self.stdin) if stdin_isatty is None else stdin_isatty
        self.color = color
        self.cache_dir = cache_dir

    def with_cache_dir(self, cache_dir: Path | None) -> Environment:
        """The same streams and flags, caching in cache_dir."""
        return Environment(
            stdout=self.stdout, stderr=self.stderr, stdin=self.stdin,
            stdout_isatty=self.stdout_isatty, stderr_isatty=self.stderr_isatty,
            stdin_isatty=self.stdin_isatty, color=self.color, cache_dir=cache_dir,
        )

    def use_color(self, tty: bool | None) -> bool:
        if self.color == "always":
            return True
        if self.color == "never" or os.environ.get("NO_COLOR"):
            return False
        return bool(tty)
