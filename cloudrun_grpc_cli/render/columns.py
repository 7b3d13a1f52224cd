"""Tables as aligned lines that never alter their text.

Rich's Table fits a table to the terminal: on a narrow one it folds cells
(a newline inside a type name or an audience), crops them with `…`, and
pads every cell, the last one too, with trailing spaces. These lines are
laid out for their own width instead: each column but the last padded to
its widest cell, the last one not at all, no trailing spaces; printed with
soft wrap, so that a narrow terminal wraps a long line on its own and what
is copied from it is the text itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

Cell = str | Text


def _text(cell: Cell, style: str) -> Text:
    return cell.copy() if isinstance(cell, Text) else Text(cell, style=style)


def aligned(
    rows: Sequence[Sequence[Cell]],
    *,
    styles: Sequence[str] = (),
    gap: int = 2,
    indent: int = 0,
) -> list[Text]:
    """One Text per row; plain str cells take the column's style from `styles`."""
    cells = [[_text(c, styles[i] if i < len(styles) else "") for i, c in enumerate(row)] for row in rows]
    columns = max((len(r) for r in cells), default=0)
    widths = [max((r[i].cell_len for r in cells if i < len(r)), default=0) for i in range(columns)]
    lines = []
    for row in cells:
        line = Text(" " * indent)
        for i, cell in enumerate(row):
            line.append_text(cell)
            if i < len(row) - 1:
                line.append(" " * (widths[i] - cell.cell_len + gap))
        line.rstrip()
        lines.append(line)
    return lines


def print_aligned(
    console: Console,
    rows: Sequence[Sequence[Cell]],
    *,
    styles: Sequence[str] = (),
    header: Sequence[str] | None = None,
    header_style: str = "bold dim",
    title: Text | None = None,
    gap: int = 2,
    indent: int = 0,
) -> None:
    """Print rows (under a header row, after a title line) as aligned lines."""
    if title is not None:
        console.print(title, soft_wrap=True)
    every: list[Sequence[Cell]] = []
    if header is not None:
        every.append([Text(h, style=header_style) for h in header])
    every.extend(rows)
    for line in aligned(every, styles=styles, gap=gap, indent=indent):
        console.print(line, soft_wrap=True)
