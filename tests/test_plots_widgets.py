"""kdlab.plots and kdlab.widgets: the right panels and marks, entropy against float64."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from kdlab.distill import History
from kdlab.plots import plot_bars, plot_histories, plot_softmax
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
