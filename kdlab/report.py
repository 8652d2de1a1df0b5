"""Results: shown in a notebook, saved by a benchmark, read back, and compared over seeds.

- :func:`key_results` displays a small table and attaches the same numbers under a private
  MIME type; ``kdlab course`` reads them back from the executed notebook for its summary;
- :func:`save_results` is how a benchmark ends (JSON first, then its report), and
  :func:`load_results` how a notebook reads it back, saying where the numbers came from;
- :func:`spread` (mean and sample standard deviation over seeds) and :func:`verdict`,
  which calls a difference within that spread a tie.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS_MIME = "application/vnd.kdlab.results+json"

__all__ = [
    "key_results",
    "RESULTS_MIME",
    "format_value",
    "save_results",
    "results_dir",
    "load_results",
    "spread",
    "format_spread",
    "verdict",
]


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


def results_dir() -> Path:
    """Where benchmarks save their results: ``$KDLAB_RESULTS``, else ``benchmarks/results``
    of the repository this package was installed from."""
    value = os.environ.get("KDLAB_RESULTS", "").strip()
    if value:
        return Path(value).expanduser()
    return Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def load_results(name: str, *, verbose: bool = True) -> dict | None:
    """The results a benchmark saved as ``<name>.json`` in :func:`results_dir`, or None.

    With ``verbose``, say which file the numbers come from and on which machine they were
    measured (they are not the notebook's own run), or how to produce them when absent.
    """
    if not name or "/" in name or name.endswith(".json"):
        raise ValueError(f"name is a results file's stem, e.g. 'soft_targets_mnist', got {name!r}")
    path = results_dir() / f"{name}.json"
    if not path.is_file():
        if verbose:
            scripts = sorted(path.parent.parent.glob("*.py"), key=lambda p: -len(p.stem))
            script = next((p.name for p in scripts if name.startswith(p.stem)), None)
            how = f"`python benchmarks/{script}`" if script else "its benchmark in benchmarks/"
            print(f"No saved results at {path}: {how} writes them there.")
        return None
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); run its benchmark again") from err
    if verbose:
        machine = result.get("machine", "machine not recorded") if isinstance(result, dict) else ""
        print(f"Saved benchmark results, NOT this notebook's run: {path.name} ({machine})")
    return result


def spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of ``values``."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("spread needs at least one value, got none")
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), sd


def format_spread(values: Sequence[float], digits: int = 1) -> str:
    """``"mean ± sd"`` with ``digits`` decimals, e.g. ``"886.3 ± 4.2"``."""
    mean, sd = spread(values)
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def verdict(
    method: Sequence[float], baseline: Sequence[float], *, higher_is_better: bool = True
) -> str:
    """``"better"``, ``"worse"`` or ``"tie"``: the method against the baseline over seeds.

    A difference of means within ``max(sd_method, sd_baseline)`` is a tie: the seeds
    alone move the result that much. With a single value on either side there is no
    spread to judge by, and the verdict is ``"one run"``.
    """
    if min(len(method), len(baseline)) < 2:
        return "one run"
    (m_mean, m_sd), (b_mean, b_sd) = spread(method), spread(baseline)
    diff = (m_mean - b_mean) if higher_is_better else (b_mean - m_mean)
    margin = max(m_sd, b_sd)
    if diff > margin:
        return "better"
    if diff < -margin:
        return "worse"
    return "tie"
