"""Rendering rows for people (table) and for scripts (json, csv)."""

from __future__ import annotations

import json
import sys
from typing import Any, Sequence, TextIO

FORMATS = ("table", "json", "csv")


def emit(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str] | None = None,
         out: TextIO | None = None, title: str | None = None) -> None:
    """Write ``rows`` as a rich table, a JSON list of objects, or CSV.

    ``columns`` picks and orders the table/CSV columns; JSON always carries every key.
    """
    out = out or sys.stdout
    if fmt == "json":
        json.dump(list(rows), out, indent=2, default=_jsonable)
        out.write("\n")
        return
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    if columns is not None and len(frame):
        frame = frame[list(columns)]
    if fmt == "csv":
        frame.to_csv(out, index=False)
        return
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "iuf" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[_cell(v) for v in row])
    Console(file=out, width=None if out.isatty() else 220).print(table)


def _cell(v: Any) -> str:
    if hasattr(v, "item") and not isinstance(v, (list, tuple)):
        v = v.item()  # numpy scalars
    if v is None or (isinstance(v, float) and v != v):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def stdout_reader_gone() -> bool:
    """True when standard output is a pipe (or socket) whose reader has gone (``hwface ... | head``).

    Tells a ``BrokenPipeError`` of the output from one of a connection to a device.
    """
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor (captured in-process) or no poll
        return False
