"""Pretty terminal output with Rich: headers, messages as highlighted JSON as
they arrive, trailers, a status line with elapsed time; -v adds the request
metadata (redacted) and the token panel."""

from __future__ import annotations

import errno
import os
import time
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.text import Text

from ..core.codec import to_json
from ..core.events import (
    Event,
    Headers,
    Message,
    Metadata,
    Started,
    Status,
    Trailers,
    metadata_to_json,
)
from .claims import print_token_panel
from .redact import redact_metadata
from .safetext import json_dumps, visible

if TYPE_CHECKING:
    from .sinks import Failure, SinkOptions


def elapsed(ms: float) -> str:
    """`12.3 ms` below a second, `1.52 s` above, `2m 03s` above a minute."""
    if ms < 1000:
        return f"{ms:.1f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def json_text(obj: object, *, color: bool) -> Text:
    """Indented JSON exactly as json.dumps writes it (highlighted when coloured)."""
    text = Text(json_dumps(obj), no_wrap=True, overflow="ignore")
    if color:
        JSONHighlighter().highlight(text)
    return text


class _Console(Console):
    """Rich's Console, but a closed pipe is crgrpc's to report.

    Rich catches BrokenPipeError itself (Console.on_broken_pipe), points
    sys.stdout at /dev/null and raises SystemExit(1), which no error boundary
    sees: `crgrpc ... -o pretty | head` exited 1. Here the BrokenPipeError goes
    on to cli/main, which exits 141 quietly in every mode.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more from this console
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def make_console(out: IO[str], *, color: bool, width: int | None = None) -> Console:
    """Every Rich console of crgrpc (stdout's and stderr's) is made here."""
    return _Console(
        file=out,
        force_terminal=color,
        no_color=not color,
        highlight=color,
        # Never a newline the text did not have, never a crop: the terminal wraps long lines.
        soft_wrap=True,
        width=width,
        emoji=False,
    )


class PrettySink:
    def __init__(self, console: Console, options: SinkOptions) -> None:
        self.console = console
        self.emit_defaults = options.emit_defaults
        self.proto_names = options.proto_names
        self.verbose = options.verbose
        self.show_token = options.show_token
        self.color = console.is_terminal and not console.no_color
        self._start = time.monotonic()
        self._count = 0

    def _started(self, ev: Started) -> None:
        self._start = time.monotonic()
        c = self.console
        c.print(
            Text.assemble(
                ("→ ", "bold"),
                (ev.method, "bold"),
                (f" ({ev.kind})", "dim"),
                (" at ", "dim"),
                (ev.target, ""),
            ),
            soft_wrap=True,
        )
        if self.verbose:
            token = ev.token
            if token is not None:
                value = token.value if self.show_token else None
                print_token_panel(c, dict(token.claims), source=token.source, value=value)
            self._section("request metadata", ev.request_metadata, redact=True)

    def _section(self, title: str, md: Metadata, *, redact: bool = False) -> None:
        data = redact_metadata(md) if redact else metadata_to_json(md)
        self.console.print(Text(title, style="bold dim"), soft_wrap=True)
        if not data:
            self.console.print(Text("  (none)", style="dim"))
        for key, value in data.items():
            for v in value if isinstance(value, list) else [value]:
                line = Text.assemble("  ", (f"{visible(key)}:", "cyan"), " ", visible(str(v)))
                self.console.print(line, soft_wrap=True)

    def event(self, ev: Event) -> None:
        if isinstance(ev, Started):
            self._started(ev)
        elif isinstance(ev, Headers):
            self._section("headers", ev.metadata)
        elif isinstance(ev, Message):
            self._count += 1
            obj = to_json(ev.message, emit_defaults=self.emit_defaults, proto_names=self.proto_names)
            self.console.print(json_text(obj, color=self.color), soft_wrap=True)
        elif isinstance(ev, Trailers):
            self._section("trailers", ev.metadata)
        else:
            self._status(ev)

    def _status(self, ev: Status) -> None:
        n = self._count
        msgs = f"{n} message{'s' if n != 1 else ''}"
        if ev.ok:
            line = Text.assemble(("✓ OK", "bold green"), (f"  {msgs} · {elapsed(ev.elapsed_ms)}", "dim"))
        else:
            line = Text.assemble(
                (f"✗ {ev.name} ({ev.code})", "bold red"),
                (f": {visible(ev.message)}" if ev.message else "", "red"),
                (f"  {msgs} · {elapsed(ev.elapsed_ms)}", "dim"),
            )
        self.console.print(line, soft_wrap=True)
        for d in ev.details:
            self.console.print(json_text(d, color=self.color), soft_wrap=True)

    def fail(self, failure: Failure) -> None:
        pass  # the error and its hints go to stderr

    def finish(self) -> None:
        pass
