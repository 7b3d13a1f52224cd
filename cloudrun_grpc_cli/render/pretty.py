"""Pretty terminal output with Rich: headers, messages as highlighted JSON as
they arrive, trailers, a status line with elapsed time; -v adds the request
metadata (redacted) and the token panel."""

from __future__ import annotations

import time
from typing import IO

from rich.console import Console
from rich.json import JSON
from rich.text import Text

from ..core.codec import to_json
from ..core.events import Event, Headers, Message, Metadata, Status, Trailers, metadata_to_json
from .callinfo import CallInfo, redact_metadata
from .claims import print_token_panel


def make_console(out: IO[str], *, color: bool, width: int | None = None) -> Console:
    return Console(
        file=out,
        force_terminal=color,
        no_color=not color,
        highlight=color,
        soft_wrap=False,
        width=width,
        emoji=False,
    )


class PrettySink:
    def __init__(
        self, console: Console, *, emit_defaults: bool, proto_names: bool, verbose: bool
    ) -> None:
        self.console = console
        self.emit_defaults = emit_defaults
        self.proto_names = proto_names
        self.verbose = verbose
        self._start = time.monotonic()
        self._count = 0

    def start(self, info: CallInfo) -> None:
        self._start = time.monotonic()
        c = self.console
        c.print(
            Text.assemble(
                ("→ ", "bold"),
                (info.method, "bold"),
                (f" ({info.kind})", "dim"),
                (" at ", "dim"),
                (info.target, ""),
            )
        )
        if self.verbose:
            if info.token_claims is not None:
                print_token_panel(
                    c, info.token_claims, source=info.token_source, value=info.token_value
                )
            self._section("request metadata", info.request_metadata, redact=True)

    def _section(self, title: str, md: Metadata, *, redact: bool = False) -> None:
        data = redact_metadata(md) if redact else metadata_to_json(md)
        self.console.print(Text(title, style="bold dim"))
        if not data:
            self.console.print(Text("  (none)", style="dim"))
        for key, value in data.items():
            for v in value if isinstance(value, list) else [value]:
                self.console.print(Text.assemble("  ", (f"{key}:", "cyan"), " ", str(v)))

    def event(self, ev: Event) -> None:
        if isinstance(ev, Headers):
            self._section("headers", ev.metadata)
        elif isinstance(ev, Message):
            self._count += 1
            obj = to_json(ev.message, emit_defaults=self.emit_defaults, proto_names=self.proto_names)
            self.console.print(JSON.from_data(obj, indent=2, ensure_ascii=False))
        elif isinstance(ev, Trailers):
            self._section("trailers", ev.metadata)
        else:
            self._status(ev)

    def _status(self, ev: Status) -> None:
        n = self._count
        msgs = f"{n} message{'s' if n != 1 else ''}"
        if ev.ok:
            line = Text.assemble(("✓ OK", "bold green"), (f"  {msgs} · {ev.elapsed_ms:.1f} ms", "dim"))
        else:
            line = Text.assemble(
                (f"✗ {ev.name} ({ev.code})", "bold red"),
                (f": {ev.message}" if ev.message else "", "red"),
                (f"  {msgs} · {ev.elapsed_ms:.1f} ms", "dim"),
            )
        self.console.print(line)
        for d in ev.details:
            self.console.print(JSON.from_data(d, indent=2))

    def fail(self, code: int, name: str, message: str) -> None:
        pass

    def finish(self) -> None:
        pass
