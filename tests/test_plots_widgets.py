"""kdlab.plots and kdlab.widgets: the right panels and marks, entropy against float64."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from kdlab.data.scenes import CLASS_NAMES, PALETTE
from kdlab.distill import History
from kdlab.metrics import precision_recall_curves
from kdlab.plots import (
    OKABE_ITO,
    class_colours,
    plot_bars,
    plot_histories,
    plot_pr_curves,
    plot_segmentation,
    plot_softmax,
)
from kdlab.widgets import TemperatureExplorer, entropy_bits, temperature_curve


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def entropy_bits64(p: np.ndarray) -> np.ndarray:
    """-sum p log2 p along the last axis in float64, with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    safe = np.where(p > 0, p, 1.0)
    return -(p * np.log2(safe)).sum(axis=-1)


def softmax64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def history(values: dict[str, list[float]]) -> History:
    n = len(next(iter(values.values())))
    return History([{k: v[i] for k, v in values.items()} for i in range(n)])


# ------------------------------------------------------------------ plots


def test_plot_histories_one_panel_per_key_one_line_per_run():
    runs = {
        "teacher": history({"loss": [1.0, 0.5, 0.3], "val_accuracy": [0.7, 0.8, 0.85]}),
        "student": history({"loss": [1.2, 0.9], "val_accuracy": [0.6, 0.7]}),
        "no-val": history({"loss": [2.0, 1.0]}),
    }
    fig = plot_histories(runs)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 3 and len(acc_ax.lines) == 2
    assert list(loss_ax.lines[0].get_ydata()) == [1.0, 0.5, 0.3]
    assert list(loss_ax.lines[0].get_xdata()) == [1, 2, 3]
    assert list(acc_ax.lines[1].get_ydata()) == [0.6, 0.7]
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == list(runs)


def test_plot_histories_chosen_keys_and_empty_input():
    runs = {"a": history({"loss": [1.0], "hard_loss": [0.9], "soft_loss": [0.1]})}
    fig = plot_histories(runs, keys=("hard_loss", "soft_loss", "loss"))
    assert len(fig.axes) == 3 and all(len(ax.lines) == 1 for ax in fig.axes)
    assert fig.axes[0].get_title() == "hard loss"
    with pytest.raises(ValueError, match="empty"):
        plot_histories({})


def test_plot_bars_one_panel_per_column_one_bar_per_row():
    table = pd.DataFrame(
        {"MFLOPs": [9.0, 0.5, 0.2], "size_MB": [3.3, 0.8, 0.4], "other": [1, 2, 3]},
        index=["teacher", "student", "tiny"],
    )
    fig = plot_bars(table, ["MFLOPs", "size_MB"], log=True)
    assert len(fig.axes) == 2
    for ax, column in zip(fig.axes, ["MFLOPs", "size_MB"], strict=True):
        assert [p.get_height() for p in ax.patches] == pytest.approx(list(table[column]))
        assert ax.get_title() == column and ax.get_yscale() == "log"
        assert [t.get_text() for t in ax.get_xticklabels()] == list(table.index)


def test_plot_bars_bad_column_raises():
    table = pd.DataFrame({"a": [1.0]}, index=["m"])
    with pytest.raises(ValueError, match=r"\['missing'\]"):
        plot_bars(table, ["a", "missing"])


def test_plot_softmax_groups_bars():
    ax = plot_softmax({"T=1": [0.7, 0.2, 0.1, 0.0], "T=4": [0.4, 0.3, 0.2, 0.1]}, list("abcd"))
    assert len(ax.patches) == 8
    assert [p.get_height() for p in ax.patches[4:]] == pytest.approx([0.4, 0.3, 0.2, 0.1])


# ------------------------------------------------------------------ readable without colour


def line_looks(ax) -> list[tuple]:
    return [(line.get_color(), line.get_linestyle(), line.get_marker()) for line in ax.lines]


def assert_curves_differ_without_colour(ax, n: int):
    looks = line_looks(ax)
    assert len(looks) == n
    assert len({marker for _, _, marker in looks}) == n, looks  # a marker per curve
    assert len({style for _, style, _ in looks}) == min(n, 4), looks  # and a line style
    assert len({colour for colour, _, _ in looks}) == n, looks
    assert {colour.upper() for colour, _, _ in looks} <= set(OKABE_ITO)


def test_plot_histories_curves_differ_by_style_and_marker():
    runs = {f"run {i}": history({"loss": [1.0 / (i + 1), 0.5]}) for i in range(5)}
    (ax,) = plot_histories(runs, keys=("loss",)).axes
    assert_curves_differ_without_colour(ax, 5)


def test_plot_pr_curves_differ_by_style_and_marker():
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 2, (2, 8, 8), generator=g)
    curves = {
        name: precision_recall_curves(torch.rand(2, 2, 8, 8, generator=g).softmax(1), target, 2)
        for name in ("teacher", "student", "pruned")
    }
    fig = plot_pr_curves(curves, ["a", "b"], cols=2)
    for ax in fig.axes:
        assert_curves_differ_without_colour(ax, 3)


def test_plot_softmax_hatches_each_vector():
    vectors = {f"T={t}": [0.5, 0.3, 0.2] for t in (1, 2, 4)}
    ax = plot_softmax(vectors, list("abc"))
    hatches = [ax.patches[3 * i].get_hatch() for i in range(3)]
    assert len(set(hatches)) == 3, hatches


def _linear(rgb: np.ndarray) -> np.ndarray:
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def _lab(rgb: np.ndarray, deficiency: np.ndarray | None = None) -> np.ndarray:
    """CIELAB (D65) of sRGB colours in [0, 1], optionally as seen with a colour-vision
    deficiency (Machado, Oliveira and Fernandes 2009, severity 1, on linear RGB)."""
    linear = _linear(np.asarray(rgb, dtype=np.float64))
    if deficiency is not None:
        linear = np.clip(linear @ deficiency.T, 0, 1)
    xyz = (
        linear
        @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    )
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def _delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """CIEDE2000 colour difference (Sharma, Wu and Dalal 2005)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean**7 / (c_mean**7 + 25**7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    big_dh = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    if c1 * c2 == 0:
        h_mean = h1 + h2
    elif abs(h1 - h2) <= 180:
        h_mean = (h1 + h2) / 2
    else:
        h_mean = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (
        1
        - 0.17 * np.cos(np.radians(h_mean - 30))
        + 0.24 * np.cos(np.radians(2 * h_mean))
        + 0.32 * np.cos(np.radians(3 * h_mean + 6))
        - 0.20 * np.cos(np.radians(4 * h_mean - 63))
    )
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_t = (
        -np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
        * 2
        * np.sqrt(c_mean**7 / (c_mean**7 + 25**7))
    )
    dl, dc, dh_ = (l2 - l1) / s_l, (c2 - c1) / s_c, big_dh / s_h
    return float(np.sqrt(dl**2 + dc**2 + dh_**2 + r_t * dc * dh_))


DEUTERANOPIA = np.array(
    [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.01182, 0.04294, 0.968881]]
)
PROTANOPIA = np.array(
    [
        [0.152286, 1.052583, -0.204868],
        [0.114503, 0.786281, 0.099216],
        [-0.003882, -0.048116, 1.051998],
    ]
)


def closest_pair(colours: np.ndarray, deficiency: np.ndarray | None = None) -> float:
    lab = _lab(colours, deficiency)
    n = len(lab)
    return min(_delta_e2000(lab[i], lab[j]) for i in range(n) for j in range(i + 1, n))


def test_delta_e2000_matches_published_pairs():
    """Pairs 1, 7 and 17 of the CIEDE2000 test data (Sharma et al. 2005, table 1)."""
    pairs = [
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ]
    for lab1, lab2, expected in pairs:
        assert _delta_e2000(np.array(lab1), np.array(lab2)) == pytest.approx(expected, abs=1e-4)


def test_default_class_colours_are_far_apart_also_for_colour_blind_readers():
    colours = class_colours(len(CLASS_NAMES))
    assert closest_pair(colours) >= 20  # clearly different hues
    assert closest_pair(colours, DEUTERANOPIA) >= 10
    assert closest_pair(colours, PROTANOPIA) >= 10
    measured = np.asarray(PALETTE) / 255
    assert closest_pair(measured) < 20  # the data set's two yellows fail the same check
    assert not np.allclose(colours, measured, atol=0.05)
    assert class_colours(7).shape == (7, 3) and class_colours(12).shape == (12, 3)
    assert len({tuple(c) for c in np.round(class_colours(12), 3)}) == 12


def test_plot_segmentation_shows_the_default_colours_with_class_names():
    truth = np.arange(6).reshape(1, 2, 3)
    images = np.zeros((1, 3, 2, 3), dtype=np.uint8)
    fig = plot_segmentation(images, truth, {"model": truth}, class_names=CLASS_NAMES)
    colours = class_colours(6)
    for ax in fig.axes[1:3]:  # the truth and the model's mask
        np.testing.assert_allclose(ax.images[0].get_array(), colours[truth[0]])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(CLASS_NAMES)
    unnamed = plot_segmentation(images, truth, {})  # classes counted from the labels
    assert [t.get_text() for t in unnamed.legends[0].get_texts()] == list("012345")
    own = plot_segmentation(images, truth, {}, PALETTE, class_names=CLASS_NAMES)
    np.testing.assert_allclose(own.axes[1].images[0].get_array(), np.array(PALETTE)[truth[0]] / 255)
    with pytest.raises(ValueError, match="2 class names for 6 palette colours"):
        plot_segmentation(images, truth, {}, PALETTE, class_names=["a", "b"])


# ------------------------------------------------------------------ entropy


@pytest.mark.parametrize("classes", [2, 10, 100])
def test_entropy_bits_matches_float64_reference(classes):
    rng = np.random.default_rng(classes)
    p = rng.dirichlet(np.full(classes, 0.3), size=(4, 5))
    p[0, 0] = 0
    p[0, 0, 0] = 1  # one-hot: 0 bits
    p[0, 1] = 1 / classes  # uniform: log2(C) bits
    p[1, 0, : classes // 2] = 0
    p[1, 0] /= p[1, 0].sum()  # exact zeros next to mass
    got = entropy_bits(torch.tensor(p, dtype=torch.float32))
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got.double().numpy(), entropy_bits64(p), atol=1e-5)
    assert float(got[0, 0]) == pytest.approx(0.0, abs=1e-6)
    assert float(got[0, 1]) == pytest.approx(np.log2(classes), rel=1e-5)


def test_temperature_curve_matches_reference_and_grows():
    z = torch.randn(10, generator=torch.Generator().manual_seed(0)) * 4
    temperatures = [0.5, 1.0, 2.0, 4.0, 8.0, 30.0]
    curve = temperature_curve(z, temperatures)
    reference = [entropy_bits64(softmax64(z.double().numpy() / t)) for t in temperatures]
    np.testing.assert_allclose(curve.double().numpy(), reference, atol=1e-5)
    assert (np.diff(curve.numpy()) > 0).all() and float(curve[-1]) < np.log2(10)
    with pytest.raises(ValueError, match="one vector"):
        temperature_curve(z.unsqueeze(0), temperatures)


# ------------------------------------------------------------------ TemperatureExplorer


def explorer(n: int = 4) -> TemperatureExplorer:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(n, 10, generator=g) * 5
    images = torch.rand(n, 1, 28, 28, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return TemperatureExplorer(logits, images, [f"c{i}" for i in range(10)], labels)


def test_explorer_state_follows_the_sliders():
    ex = explorer()
    first_figure = ex.figure
    assert first_figure is not None and len(first_figure.axes) == 3
    cold = ex.state()
    expected = softmax64(ex.logits[0].double().numpy() / 1.0)
    np.testing.assert_allclose(cold["probabilities"].double().numpy(), expected, atol=1e-6)
    assert cold["entropy_bits"] == pytest.approx(float(entropy_bits64(expected)), abs=1e-5)

    ex.temperature.value = 10.0
    hot = ex.state()
    assert ex.figure is not first_figure  # the slider redrew
    assert hot["entropy_bits"] > cold["entropy_bits"]
    expected = entropy_bits64(softmax64(ex.logits[0].double().numpy() / 10.0))
    assert hot["entropy_bits"] == pytest.approx(float(expected), abs=1e-5)
    assert "T = 10" in ex.figure.axes[1].get_title()

    drawn = ex.figure
    ex.index.value = 2
    assert ex.figure is not drawn
    assert ex.state()["predicted"] == f"c{int(ex.logits[2].argmax())}"


@pytest.mark.parametrize(
    ("logits", "images", "match"),
    [
        (torch.randn(4, 9), torch.rand(4, 28, 28), "10 classes"),
        (torch.randn(10), torch.rand(10, 28, 28), "10 classes"),
        (torch.randn(4, 10), torch.rand(3, 28, 28), "3 images for 4"),
    ],
)
def test_explorer_shape_mismatch_raises(logits, images, match):
    with pytest.raises(ValueError, match=match):
        TemperatureExplorer(logits, images, [str(i) for i in range(10)])
