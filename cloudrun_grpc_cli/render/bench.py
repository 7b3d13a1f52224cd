"""`crgrpc bench` output: the live progress line, the summary with its latency
histogram (Rich), and the -o json report (one document, no Rich loaded)."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from .env import Environment
from .safetext import visible

if TYPE_CHECKING:
    from ..core.load.report import Report
    from ..core.load.runner import LoadPlan, Progress

BAR_WIDTH = 40
_EIGHTHS = " ▏▎▍▌▋▊▉"


def write_json(out: IO[str], report: Report) -> None:
    from ..core.codec import dumps

    out.write(dumps(report.document()) + "\n")
    out.flush()


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def _count(n: int) -> str:
    return f"{n:,}"


def _seconds(s: float) -> str:
    return f"{s:.2f} s" if s < 100 else f"{s:,.0f} s"


def progress_text(p: Progress, load: LoadPlan) -> str:
    """One line: done, rps, errors, p50/p99 so far (the warmup's count before)."""
    spec = load.spec
    if not p.measuring:
        if spec.warmup.requests:
            return f"warming up: {p.warmup_done:,}/{spec.warmup.requests:,} requests"
        return f"warming up: {p.elapsed:.1f}/{spec.warmup.seconds:g} s"
    parts = [f"{p.done:,}" + (f"/{spec.total:,}" if spec.total else "") + " done"]
    parts.append(f"{p.rps:,.0f} rps")
    parts.append(f"{p.errors:,} error{'s' if p.errors != 1 else ''}")
    parts.append(f"p50 {_ms(p.p50_ms)} ms")
    parts.append(f"p99 {_ms(p.p99_ms)} ms")
    if spec.duration:
        measured = max(0.0, p.elapsed - spec.warmup.seconds)
        parts.append(f"{min(measured, spec.duration):.1f}/{spec.duration:g} s")
    return " · ".join(parts)


class LiveLine:
    """The progress line on stderr's terminal (transient: gone once the run ends)."""

    def __init__(self, console: Any, load: LoadPlan) -> None:
        self.console = console
        self.load = load
        self._live: Any = None

    def update(self, p: Progress) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        spinner = Spinner("dots", text=progress_text(p, self.load), style="dim")
        if self._live is None:
            self._live = Live(
                spinner, console=self.console, transient=True, refresh_per_second=8
            )
            self._live.start()
        else:
            self._live.update(spinner)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def make_live(env: Environment, mode: str, load: LoadPlan, stdout_console: Any | None) -> LiveLine | None:
    """A live line in pretty mode when stderr is a terminal; None elsewhere."""
    if mode != "pretty" or not env.stderr_isatty:
        return None
    if stdout_console is not None and env.stdout_isatty:
        return LiveLine(stdout_console, load)
    from .pretty import make_console

    return LiveLine(make_console(env.stderr, color=env.use_color(True)), load)


def describe_run(load: LoadPlan) -> str:
    """What runs: workers, concurrency, connections, loop, warmup, length."""
    spec = load.spec
    parts = [
        f"{load.workers} worker{'s' if load.workers != 1 else ''}",
        f"{load.concurrency:,} concurrent",
        f"{load.connections:,} connection{'s' if load.connections != 1 else ''}",
        f"open loop at {spec.rate:,g} rps" if spec.rate else "closed loop",
    ]
    if not spec.warmup.none:
        parts.append(f"warmup {spec.warmup.describe()}")
    parts.append(f"{spec.total:,} requests" if spec.total is not None else f"{spec.duration:g} s")
    return " · ".join(parts)


def print_header(console: Any, load: LoadPlan) -> None:
    from rich.text import Text

    console.print(
        Text.assemble(
            ("→ bench ", "bold"),
            (load.method, "bold"),
            (f" ({load.kind})", "dim"),
            (" at ", "dim"),
            (load.target_address, ""),
        ),
        soft_wrap=True,
    )
    console.print(Text("  " + describe_run(load), style="dim"), soft_wrap=True)


def _right(cells: list[str]) -> list[str]:
    """Cells of one column, right-aligned to the widest."""
    width = max((len(c) for c in cells), default=0)
    return [c.rjust(width) for c in cells]


def histogram_lines(report: Report, *, color: bool) -> list[Any]:
    """The latency histogram: one aligned line per bucket, a bar scaled to the largest
    (columns.aligned: never folded or padded at the end, whatever the terminal's width)."""
    from rich.text import Text

    from .columns import aligned

    buckets = report.latencies.buckets()
    peak = max((n for _, n in buckets), default=0)
    total = sum(n for _, n in buckets) or 1
    bounds = _right([f"≤ {le:g} ms" for le, _ in buckets])
    counts = _right([_count(n) for _, n in buckets])
    shares = _right([f"{n * 100 / total:.1f}%" for _, n in buckets])
    rows = []
    for i, (_, n) in enumerate(buckets):
        cells = n * BAR_WIDTH * 8 // peak if peak else 0
        bar = "█" * (cells // 8) + (_EIGHTHS[cells % 8] if cells % 8 else "")
        rows.append([
            Text(bounds[i]),
            Text(bar.ljust(BAR_WIDTH), style="cyan" if color else ""),
            Text(counts[i]),
            Text(shares[i], style="dim"),
        ])
    return aligned(rows, gap=1)


def print_summary(console: Any, report: Report) -> None:
    from rich.text import Text

    color = console.is_terminal and not console.no_color
    total, ok, errors = report.total, report.ok, report.error_count
    c = console
    title = "interrupted: the figures so far" if report.interrupted else "summary"
    c.print(Text(title, style="bold"))
    facts: list[tuple[str, Text]] = []

    def row(label: str, value: str | Text) -> None:
        facts.append((label, value if isinstance(value, Text) else Text(visible(value))))

    def pct(n: int) -> str:
        return f" ({n * 100 / total:.1f}%)" if total else ""

    row(
        "requests",
        f"{_count(total)} in {_seconds(report.duration_s)} · {report.rps:,.1f} rps",
    )
    row("ok", f"{_count(ok)}{pct(ok)}")
    err_style = "bold red" if errors and color else ""
    row("errors", Text(f"{_count(errors)}{pct(errors)}", style=err_style))
    if report.kind in ("server", "bidi"):
        per = report.received / ok if ok else 0.0
        row("messages", f"{_count(report.received)} received ({per:,.1f} per request)")
    if report.kind in ("client", "bidi"):
        row(
            "sent", f"{_count(report.messages_sent)} messages ({report.sent_per_request:,} per stream)"
        )
    if report.warmup_done:
        failed = f", {report.warmup_errors:,} failed" if report.warmup_errors else ""
        row("warmup", f"{_count(report.warmup_done)} requests left out{failed}")
    if report.token_refreshes or report.token_failures:
        text = f"refreshed {report.token_refreshes:,} time{'s' if report.token_refreshes != 1 else ''} in the background"
        if report.token_failures:
            text += f"; {report.token_failures:,} refresh failed: {report.token_failure}"
        row("token", text)
    width = max(len(label) for label, _ in facts) + 2
    for label, value in facts:
        c.print(Text.assemble((label.ljust(width), "dim"), value), soft_wrap=True)
    if total:
        c.print()
        values = report.latency_ms()
        names = ["latency ms", *values]
        cells = ["", *(_ms(v) for v in values.values())]
        widths = [max(len(n), len(v)) for n, v in zip(names, cells, strict=True)]
        header = Text.assemble(
            (names[0].ljust(widths[0]), "bold"),
            *((" " + n.rjust(w), "dim") for n, w in zip(names[1:], widths[1:], strict=True)),
        )
        c.print(header, soft_wrap=True)
        c.print(Text(" ".join(v.rjust(w) for v, w in zip(cells, widths, strict=True))), soft_wrap=True)
        c.print()
        c.print(Text("latency histogram", style="bold"))
        for line in histogram_lines(report, color=color):
            c.print(line, soft_wrap=True)
    status = report.status()
    if status:
        from .columns import aligned

        c.print()
        c.print(Text("status", style="bold"))
        numbers = _right([_count(n) for n in status.values()])
        rows = [
            [Text(name, style=("green" if name == "OK" else "red") if color else ""), Text(f"{numbers[i]}{pct(n)}")]
            for i, (name, n) in enumerate(status.items())
        ]
        for line in aligned(rows):
            c.print(line, soft_wrap=True)
    if report.samples:
        c.print()
        c.print(Text("error samples", style="bold"))
        for sample in report.samples:
            c.print(Text("  " + visible(sample)), soft_wrap=True)
