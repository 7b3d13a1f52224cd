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


def histogram_table(report: Report, *, color: bool) -> Any:
    """The latency histogram: one row per bucket, a bar scaled to the largest."""
    from rich.table import Table
    from rich.text import Text

    buckets = report.latencies.buckets()
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    peak = max((n for _, n in buckets), default=0)
    total = sum(n for _, n in buckets) or 1
    for le, n in buckets:
        cells = n * BAR_WIDTH * 8 // peak if peak else 0
        bar = "█" * (cells // 8) + (_EIGHTHS[cells % 8] if cells % 8 else "")
        table.add_row(
            Text(f"≤ {le:g} ms"),
            Text(bar.ljust(BAR_WIDTH), style="cyan" if color else ""),
            Text(_count(n)),
            Text(f"{n * 100 / total:.1f}%", style="dim"),
        )
    return table


def print_summary(console: Any, report: Report) -> None:
    from rich.table import Table
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
        lat = Table(box=None, padding=(0, 1), show_edge=False, pad_edge=False)
        lat.add_column(Text("latency ms", style="bold"), no_wrap=True)
        values = report.latency_ms()
        for name in values:
            lat.add_column(Text(name, style="dim"), justify="right", no_wrap=True)
        lat.add_row("", *(Text(_ms(v)) for v in values.values()))
        c.print(lat)
    if total:
        c.print()
        c.print(Text("latency histogram", style="bold"))
        c.print(histogram_table(report, color=color))
    status = report.status()
    if status:
        c.print()
        c.print(Text("status", style="bold"))
        st = Table.grid(padding=(0, 2))
        st.add_column(no_wrap=True)
        st.add_column(justify="right")
        for name, n in status.items():
            style = ("green" if name == "OK" else "red") if color else ""
            st.add_row(Text(name, style=style), Text(f"{_count(n)}{pct(n)}"))
        c.print(st)
    if report.samples:
        c.print()
        c.print(Text("error samples", style="bold"))
        for s in report.samples:
            c.print(Text("  " + visible(s)), soft_wrap=True)
