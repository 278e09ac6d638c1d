"""What the CLI shows and returns: exit codes, messages on stderr, tables on a terminal, TSV in a pipe, progress bars.

A terminal gets aligned tables (rich); anything else (a pipe, a file, a log) gets one tab-separated line per row
with a header line first, never wrapped, so ``cut``, ``awk`` and logs read it. Progress bars go to stderr and are
drawn only when stderr is a terminal. rich is imported inside the functions that draw, so commands that only
print plain lines (``ls`` into a pipe) start fast.

Every value from a file or the database passes :func:`~dicomtui.core.text.printable` on its way out (control
characters shown as ``\x1b``, never obeyed by the terminal), and tables take it as plain text, never as rich
markup; JSON escapes them as JSON does (:func:`json_text`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from ..core.levels import Column, format_value
from ..core.text import printable

EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 2
"""0 success, 1 partial (some files rejected, some items failed), 2 usage or fatal error."""

T = TypeVar("T")


def console(stderr: bool = False, width: int | None = None):
    """A rich Console on stdout (or stderr) that does not colour numbers and strings by guesswork; ``width``
    overrides the terminal's."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, width=width)


def err(message: str) -> None:
    """One line on stderr, prefixed ``dicomtui:`` like every message the CLI writes there (its lines escaped:
    messages quote values and paths from files)."""
    print(f"dicomtui: {printable(message, multiline=True)}", file=sys.stderr)


# DEL and C1 (0x9B is a one-character CSI) pass json.dumps unescaped (it escapes only C0, and with ensure_ascii
# everything above 0x7E but DEL): written as \u escapes here, so no control character reaches stdout.
_JSON_UNESCAPED_CONTROL = re.compile("[\x7f-\x9f]")


def json_text(value: Any, ensure_ascii: bool = True) -> str:
    """``value`` as indented JSON (``default=str``); no raw control character in the text."""
    text = json.dumps(value, indent=2, default=str, ensure_ascii=ensure_ascii)
    return _JSON_UNESCAPED_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def shorten(path: str, width: int) -> str:
    """``path`` cut at the front with an ellipsis to at most ``width`` characters (the file name stays)."""
    return path if len(path) <= width else "…" + path[-(width - 1):]


def human_bytes(n: float) -> str:
    """``1,234 B``, ``12.1 KiB`` … ``3.4 GiB`` (binary units; GiB is the largest)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def print_tsv(columns: Sequence[str], rows: Iterable[Iterable[str]]) -> None:
    """For pipes: the header line, then one tab-separated line per row (a TAB or LF in a value is shown as ␉ or
    ␊, so it stays one field of one line)."""
    print("\t".join(columns))
    for line in rows:
        print("\t".join(printable(cell) for cell in line))


def print_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]], footer: str) -> None:
    """For a terminal: the rows as an aligned table under the columns' labels, then a dim footer (``3 series``).

    A UID is never wrapped nor cut (it is copied by hand into the next command): UID columns are as wide as
    their longest value and the other columns fold first; on a terminal narrower than that the line runs on
    (the terminal wraps it, whole) rather than losing characters."""
    from rich.table import Table
    from rich.text import Text

    cells = [_cells(columns, row) for row in rows]
    table = Table(box=None, header_style="bold", pad_edge=False)
    for n, col in enumerate(columns):
        if is_uid_column(col.keyword):
            width = max([len(col.label), *(len(line[n]) for line in cells)])
            table.add_column(col.label, no_wrap=True, overflow="ignore", min_width=width)
        else:
            table.add_column(col.label, overflow="fold", min_width=min(len(col.label), 6))
    for line in cells:
        table.add_row(*(Text(cell) for cell in line))  # Text: a value is never rich markup
    out = console()
    needed = sum(c.min_width or 0 for c in table.columns) + 2 * len(columns)  # 2: the padding between columns
    if needed > out.width:  # rich would squeeze columns to nothing: lay the table out wider, the terminal wraps
        out = console(width=needed)
    out.print(table, crop=False)
    out.print(f"[dim]{footer}[/]")


def is_uid_column(keyword: str) -> bool:
    """Whether a column holds UIDs (its PS3.3 keyword ends in UID): never wrapped in a table."""
    return keyword.endswith("UID")


def print_rows(columns: Sequence[Column], rows: Sequence[dict[str, Any]], footer: str) -> None:
    """Database rows as a table on a terminal, else as TSV under the columns' keywords (the footer then goes
    nowhere: pipes get data only)."""
    if not stdout_is_terminal():
        print_tsv([col.keyword for col in columns], (_cells(columns, row) for row in rows))
        return
    print_table(columns, rows, footer)


def _cells(columns: Sequence[Column], row: dict[str, Any]) -> list[str]:
    """A row's values as the level's column model writes them; dates stay YYYYMMDD, as DICOM tools take them."""
    return [printable(format_value(col, row.get(col.keyword), iso_dates=False)) for col in columns]


def print_tag_table(rows) -> None:
    """Aligned columns for a terminal: the tag indented by depth (an item shows its name there), VR, name, value."""
    firsts = ["  " * r.depth + (r.keyword if r.is_item else r.tag) for r in rows]
    names = ["" if r.is_item else (f"{r.keyword} [{r.creator}]" if r.creator else r.keyword) for r in rows]
    w1 = max(map(len, firsts), default=0)
    w2 = max(map(len, names), default=0)
    for first, name, row in zip(firsts, names, rows, strict=True):
        value = f"({row.value})" if row.is_item else row.value
        print(printable(f"{first:<{w1}}  {row.vr:<2}  {name:<{w2}}  {value}".rstrip()))


def progress_bar(*, rate_and_path: bool = False, disable: bool = False):
    """A transient rich Progress on stderr: description, then (once its total is known) bar, done/total, time
    left; elapsed time.

    ``rate_and_path`` adds the task fields ``rate`` (before the time) and ``path`` (after it), as ``import`` shows
    them. The bar is not drawn when ``disable`` is set or stderr is not a terminal.
    """
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    err_console = console(stderr=True)
    columns: list[Any] = [TextColumn("[bold]{task.description}"), *_known_total_columns()]
    if rate_and_path:
        columns += [TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("[dim]{task.fields[path]}")]
    else:
        columns.append(TimeElapsedColumn())
    return Progress(*columns, console=err_console, transient=True, disable=disable or not err_console.is_terminal)


def _known_total_columns() -> list[Any]:
    """Bar, done/total and time left, drawn only once the total is known: before it, a bar would pulse with
    "0/?" and the time left would read "-:--:--"; the description says what is going on instead."""
    from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TimeRemainingColumn
    from rich.text import Text

    class WhenTotalKnown(ProgressColumn):
        def __init__(self, inner: ProgressColumn) -> None:
            super().__init__()
            self.inner = inner

        def render(self, task):
            return self.inner.render(task) if task.total is not None else Text("")

    return [WhenTotalKnown(c) for c in (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())]


def with_progress(work: Callable[[Callable[[int, int], None] | None], T], description: str) -> T:
    """Run ``work(progress)`` with a progress bar on stderr when it is a terminal (else ``work(None)``).

    ``progress(done, total)`` counts items (files, instances); the bar's task starts with an unknown total.
    """
    if not sys.stderr.isatty():
        return work(None)
    with progress_bar() as bar:
        task = bar.add_task(description, total=None)
        return work(lambda done, total: bar.update(task, completed=done, total=total))
