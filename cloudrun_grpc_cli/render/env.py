"""The environment output goes to: streams, terminal flags, colour.

Writers never touch sys.stdout directly, so tests can simulate a terminal
or a pipe by passing another Environment (httpie's pattern).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@dataclass
class Environment:
    """The streams and terminal facts of one run (a test passes its own)."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdin: IO[str] = field(default_factory=lambda: sys.stdin)
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None
    stdin_isatty: bool | None = None
    color: str = "auto"  # auto | always | never
    # Where crgrpc caches tokens and schemas; None: $XDG_CACHE_HOME/crgrpc (the demo passes its own).
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.stdout_isatty is None:
            self.stdout_isatty = _isatty(self.stdout)
        if self.stderr_isatty is None:
            self.stderr_isatty = _isatty(self.stderr)
        if self.stdin_isatty is None:
            self.stdin_isatty = _isatty(self.stdin)

    def use_color(self, tty: bool | None) -> bool:
        if self.color == "always":
            return True
        if self.color == "never" or os.environ.get("NO_COLOR"):
            return False
        return bool(tty)
