"""Figures the course draws again and again: training curves and comparison bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from kdlab.distill import History

__all__ = ["plot_histories", "plot_bars", "plot_softmax"]


def plot_histories(
    histories: Mapping[str, History],
    keys: Sequence[str] = ("loss", "val_accuracy"),
    *,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One panel per history key (``loss``, ``val_accuracy``, ...), one line per run."""
    if not histories:
        raise ValueError("histories is empty; pass a dict of name -> History")
    fig, axes = plt.subplots(1, len(keys), figsize=figsize or (4.5 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, history in histories.items():
            values = history[key]
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
        ax.set_xlabel("epoch")
        ax.set_title(key.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.tight_layout()
    return fig


def plot_bars(
    table: pd.DataFrame,
    columns: Sequence[str],
    *,
    log: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """One bar panel per column of ``table`` (rows are models), values written on the bars."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(table.columns)}")
    fig, axes = plt.subplots(
        1, len(columns), figsize=figsize or (3.6 * len(columns), 3.2), squeeze=False
    )
    for ax, column in zip(axes[0], columns, strict=True):
        bars = ax.bar(
            table.index.astype(str), table[column], color=plt.cm.tab10.colors[: len(table)]
        )
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(column)
        if log:
            ax.set_yscale("log")
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig


def plot_softmax(
    probabilities: Mapping[str, Sequence[float]],
    classes: Sequence[str],
    ax: Axes | None = None,
) -> Axes:
    """Grouped bars of several probability vectors over the same classes."""
    ax = ax or plt.subplots(figsize=(8, 3))[1]
    n = len(probabilities)
    width = 0.8 / max(n, 1)
    for i, (label, p) in enumerate(probabilities.items()):
        positions = [c + (i - (n - 1) / 2) * width for c in range(len(classes))]
        ax.bar(positions, list(p), width=width, label=label)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_ylabel("probability")
    ax.legend()
    return ax
