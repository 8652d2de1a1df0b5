"""Figures the course draws again and again: training curves, comparison bars, and for
segmentation the predictions beside the truth and per-class precision-recall curves.

Colours come from the Okabe-Ito palette (Okabe and Ito, "Color Universal Design", 2008),
told apart by readers with any common colour-vision deficiency; curves also differ by line
style and marker, grouped bars by hatching, so no figure needs colour to be read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from kdlab.distill import History
from kdlab.losses import IGNORE_INDEX
from kdlab.metrics import PRCurve

__all__ = [
    "OKABE_ITO",
    "curve_styles",
    "class_colours",
    "plot_histories",
    "plot_bars",
    "plot_softmax",
    "plot_segmentation",
    "plot_pr_curves",
]


# Okabe-Ito: orange, sky blue, bluish green, yellow, blue, vermillion, reddish purple, black.
OKABE_ITO = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
    "#000000",
)
# Curves on white: the dark, saturated colours first, yellow (low contrast) last.
_CURVE_COLOURS = tuple(OKABE_ITO[i] for i in (4, 5, 2, 6, 0, 1, 7, 3))
_LINE_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")


def curve_styles(n: int) -> list[dict]:
    """Keyword arguments of ``Axes.plot`` for ``n`` curves: colour, line style and marker all
    differ between any 8 curves (line styles repeat after 4, colours and markers after 8)."""
    return [
        {
            "color": _CURVE_COLOURS[i % len(_CURVE_COLOURS)],
            "linestyle": _LINE_STYLES[i % len(_LINE_STYLES)],
            "marker": _MARKERS[i % len(_MARKERS)],
        }
        for i in range(n)
    ]


def class_colours(n: int) -> np.ndarray:
    """``n`` RGB colours in [0, 1] to show class masks: Okabe-Ito in its order without black
    (black marks ignored pixels) for up to 7 classes; beyond, no palette keeps every pair
    apart for colour-blind readers, so matplotlib's tab20 (up to 20) or turbo, with a legend."""
    from matplotlib.colors import to_rgb

    if n < 1:
        raise ValueError(f"need at least one class, got {n}")
    if n <= len(OKABE_ITO) - 1:
        return np.array([to_rgb(c) for c in OKABE_ITO[:n]])
    cmap = plt.get_cmap("tab20" if n <= 20 else "turbo")
    return np.asarray(cmap(np.linspace(0, 1, n) if n > 20 else np.arange(n)))[:, :3]


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
    styles = curve_styles(len(histories))
    for ax, key in zip(axes[0], keys, strict=True):
        for style, (name, history) in zip(styles, histories.items(), strict=True):
            values = history[key]
            if values:
                ax.plot(range(1, len(values) + 1), values, label=name, **style)
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
        colours = [_CURVE_COLOURS[i % len(_CURVE_COLOURS)] for i in range(len(table))]
        bars = ax.bar(table.index.astype(str), table[column], color=colours)
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
    """Grouped bars of several probability vectors over the same classes, one colour and
    hatching per vector."""
    ax = ax or plt.subplots(figsize=(8, 3))[1]
    n = len(probabilities)
    width = 0.8 / max(n, 1)
    for i, (label, p) in enumerate(probabilities.items()):
        positions = [c + (i - (n - 1) / 2) * width for c in range(len(classes))]
        ax.bar(
            positions,
            p.tolist() if isinstance(p, torch.Tensor) else list(p),
            width=width,
            label=label,
            color=_CURVE_COLOURS[i % len(_CURVE_COLOURS)],
            hatch=_HATCHES[i % len(_HATCHES)],
            edgecolor="white",
            linewidth=0.5,
        )
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_ylabel("probability")
    ax.legend()
    return ax


def _display_image(image: np.ndarray) -> np.ndarray:
    """(3, H, W) to (H, W, 3) in [0, 1]: uint8 divided by 255, standardised floats
    stretched to their own range (the colours are for looking, not for measuring)."""
    image = np.asarray(image).transpose(1, 2, 0)
    if image.dtype == np.uint8:
        return image / 255.0
    image = image.astype(np.float64)
    if image.min() < 0 or image.max() > 1:
        low, high = image.min(), image.max()
        image = (image - low) / max(high - low, 1e-12)
    return image


def _colour_labels(labels: np.ndarray, colours: np.ndarray, ignore_index: int) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64)
    out = np.zeros((*labels.shape, 3))  # ignored pixels stay black
    known = labels != ignore_index
    if known.any() and (labels[known].min() < 0 or labels[known].max() >= len(colours)):
        raise ValueError(
            f"labels must be class indices in [0, {len(colours) - 1}] or ignore_index="
            f"{ignore_index}, got values in [{labels[known].min()}, {labels[known].max()}]"
        )
    out[known] = colours[labels[known]]
    return out


def _class_count(maps: Mapping[str, np.ndarray], ignore_index: int) -> int:
    """One more than the largest class index in any map (at least 1)."""
    known = [m[m != ignore_index] for m in maps.values()]
    return 1 + max((int(k.max()) for k in known if k.size), default=0)


def plot_segmentation(
    images: torch.Tensor | np.ndarray,
    truth: torch.Tensor | np.ndarray,
    predictions: Mapping[str, torch.Tensor | np.ndarray],
    palette: Sequence[Sequence[float]] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    ignore_index: int = IGNORE_INDEX,
    alpha: float = 1.0,
    size: float = 2.2,
) -> Figure:
    """One row per image: the image, the true mask, then one mask per model.

    ``images`` is ``(N, 3, H, W)`` (uint8 or float), ``truth`` and each prediction are class
    maps ``(N, H, W)``. Each class has a colour-blind-safe colour (:func:`class_colours`),
    named in the legend; ``palette`` gives other RGB colours (0-255 or 0-1), e.g. a data
    set's own mask colours such as ``kdlab.data.aerial.PALETTE``. Ignored pixels are black.
    ``alpha < 1`` blends the masks over the image.
    """
    images = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    truth = truth.cpu().numpy() if isinstance(truth, torch.Tensor) else np.asarray(truth)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (N, 3, H, W), got {images.shape}")
    if truth.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(
            f"truth must have shape {(images.shape[0], *images.shape[2:])} to match the "
            f"images, got {truth.shape}"
        )
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    maps = {"truth": truth}
    for name, pred in predictions.items():
        pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
        if pred.shape != truth.shape:
            raise ValueError(
                f"prediction {name!r} has shape {pred.shape}, expected {truth.shape}; pass "
                "class maps (logits.argmax(1))"
            )
        maps[name] = pred
    if palette is None:
        colours = class_colours(
            len(class_names) if class_names else _class_count(maps, ignore_index)
        )
    else:
        colours = np.asarray(palette, dtype=np.float64)
        if colours.ndim != 2 or colours.shape[1] != 3:
            raise ValueError(
                f"palette must be a sequence of RGB triples, got shape {colours.shape}"
            )
        if colours.max() > 1:
            colours = colours / 255.0
    names = list(class_names) if class_names else [str(c) for c in range(len(colours))]
    if len(names) != len(colours):
        raise ValueError(
            f"{len(names)} class names for {len(colours)} palette colours; give one per class"
        )
    n, cols = len(images), 1 + len(maps)
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n), squeeze=False)
    for i in range(n):
        picture = _display_image(images[i])
        axes[i][0].imshow(picture)
        for j, mask in enumerate(maps.values(), start=1):
            coloured = _colour_labels(mask[i], colours, ignore_index)
            axes[i][j].imshow(alpha * coloured + (1 - alpha) * picture)
    for j, title in enumerate(["image", *maps]):
        axes[0][j].set_title(title)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=c, label=name) for c, name in zip(colours, names, strict=True)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.3 / n, 1, 1))
    return fig


def plot_pr_curves(
    curves: Mapping[str, Sequence[PRCurve]],
    class_names: Sequence[str] | None = None,
    *,
    cols: int = 3,
) -> Figure:
    """One panel per class, one precision-recall curve per model, AP in the legend.

    ``curves`` maps a model's name to its per-class :class:`kdlab.metrics.PRCurve` list
    (from :func:`kdlab.metrics.evaluate_segmentation` with ``pr_thresholds``). Thresholds
    at which a model predicts no pixel (precision undefined) are left out of the line.
    """
    if not curves:
        raise ValueError("curves is empty; pass a dict of model name -> list of PRCurve")
    counts = {name: len(c) for name, c in curves.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"every model needs one curve per class, got {counts}")
    n_classes = next(iter(counts.values()))
    names = list(class_names) if class_names is not None else [str(c) for c in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes")
    rows = math.ceil(n_classes / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    styles = curve_styles(len(curves))
    for c, ax in enumerate(axes.flat):
        if c >= n_classes:
            ax.set_visible(False)
            continue
        for style, (model, model_curves) in zip(styles, curves.items(), strict=True):
            curve = model_curves[c]
            keep = ~torch.isnan(curve.precision)
            ax.plot(
                curve.recall[keep].cpu().numpy(),
                curve.precision[keep].cpu().numpy(),
                label=f"{model} (AP {curve.average_precision:.2f})",
                markevery=0.1,
                markersize=4,
                **style,
            )
        ax.set_title(f"{names[c]} ({model_curves[c].support:,} px)")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
