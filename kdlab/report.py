"""Key results of a notebook, shown to the reader and collected by the course runner.

:func:`key_results` displays a small table and attaches the same numbers under a private
MIME type; ``kdlab course`` reads them back from the executed notebook for its summary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_MIME = "application/vnd.kdlab.results+json"

__all__ = ["key_results", "RESULTS_MIME", "format_value", "save_results"]


def format_value(value: Any) -> str:
    """Numbers with 4 significant digits, everything else as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def key_results(results: dict[str, Any], title: str = "Key results") -> None:
    """Display ``results`` (name -> number or text) as a table (returns None, so a call on
    a cell's last line shows the table once)."""
    clean = {
        str(k): (v if isinstance(v, (int, float, str, bool)) else str(v))
        for k, v in results.items()
    }
    lines = [f"**{title}**", "", "| result | value |", "|---|---|"]
    lines += [f"| {k} | {format_value(v)} |" for k, v in clean.items()]
    markdown = "\n".join(lines)
    text = "\n".join([title] + [f"  {k}: {format_value(v)}" for k, v in clean.items()])
    try:
        from IPython.display import display

        display({"text/markdown": markdown, "text/plain": text, RESULTS_MIME: clean}, raw=True)
    except ImportError:
        print(text)


def save_results(result: dict, path: Path, report: Callable[[dict], str]) -> Path:
    """A benchmark's ending: write ``result`` as JSON to ``path`` first (so a bug in
    ``report`` loses nothing), then print ``report(result)`` and where it was saved."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print()
    print(report(result))
    print(f"\nsaved {path}")
    return path
