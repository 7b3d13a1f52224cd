"""Spinners while minting, connecting and resolving; a live message count and
rate for long streams. Only in pretty mode with stderr on a terminal: pipes
and machine output never see them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .env import Environment

SHOW_COUNT_AFTER = 20  # messages before the live counter appears


class Progress:
    """No-op unless enabled; `console` is where the spinner draws (stderr's terminal)."""

    def __init__(self, console: Any | None) -> None:
        self.console = console
        self._live: Any = None
        self._count = 0
        self._started = 0.0
        self._last = 0.0

    @property
    def enabled(self) -> bool:
        return self.console is not None

    @contextmanager
    def stage(self, text: str) -> Iterator[None]:
        if self.console is None:
            yield
            return
        with self.console.status(text, spinner="dots"):
            yield

    def message(self) -> None:
        """Count one received message; show count and rate once the stream is long."""
        if self.console is None:
            return
        self._count += 1
        now = time.monotonic()
        if self._count == 1:
            self._started = now
        if self._count < SHOW_COUNT_AFTER or now - self._last < 0.1:
            return
        self._last = now
        rate = self._count / max(now - self._started, 1e-6)
        text = f"receiving: {self._count:,} messages · {rate:,.0f}/s"
        if self._live is None:
            from rich.live import Live
            from rich.text import Text

            self._live = Live(Text(text, style="dim"), console=self.console, transient=True, auto_refresh=False)
            self._live.start()
        else:
            from rich.text import Text

            self._live.update(Text(text, style="dim"), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_progress(env: Environment, mode: str, stdout_console: Any | None = None) -> Progress:
    """A spinner on stderr's terminal in pretty mode; nothing anywhere else."""
    if mode != "pretty" or not env.stderr_isatty:
        return Progress(None)
    if stdout_console is not None and env.stdout_isatty:
        return Progress(stdout_console)  # one terminal: draw through the same console
    from .pretty import make_console

    return Progress(make_console(env.stderr, color=env.use_color(True)))
