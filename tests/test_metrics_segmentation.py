"""Segmentation metrics against a hand-computed confusion matrix, a Python loop and
torchmetrics; the segmentation figures on small inputs."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassAveragePrecision,
    MulticlassConfusionMatrix,
    MulticlassJaccardIndex,
)

from kdlab.metrics import (
    confusion_matrix,
    evaluate_segmentation,
    precision_recall_curves,
    segmentation_scores,
)
from kdlab.plots import plot_pr_curves, plot_segmentation

IGNORE = 255


def random_maps(shape=(3, 9, 11), classes=5, ignored=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, classes, shape, generator=g)
    target[torch.rand(shape, generator=g) < ignored] = IGNORE
    # predictions right about half the time, so the diagonal is not trivial
    noise = torch.randint(0, classes, shape, generator=g)
    keep = torch.rand(shape, generator=g) < 0.5
    pred = torch.where(keep & (target != IGNORE), target, noise)
    return pred, target


def test_confusion_matrix_by_hand():
    # truth:      0 0 1 1 2 ignored   prediction: 0 1 1 1 0 2
    target = torch.tensor([[0, 0, 1], [1, 2, IGNORE]])
    pred = torch.tensor([[0, 1, 1], [1, 0, 2]])
    expected = torch.tensor(
        [
            [1, 1, 0],  # two 0s: one right, one taken for 1
            [0, 2, 0],  # two 1s, both right
            [1, 0, 0],  # the 2 taken for 0; the ignored pixel's 2 is not counted
        ]
    )
    got = confusion_matrix(pred, target, 3)
    assert got.dtype == torch.int64 and torch.equal(got, expected)
    scores = segmentation_scores(got)
    # IoU_0 = 1 / (1 + 1 + 1), IoU_1 = 2 / (2 + 1 + 0), IoU_2 = 0 / (0 + 0 + 1)
    assert scores["iou"].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert scores["miou"] == pytest.approx(1 / 3)
    assert scores["classes_averaged"] == 3
    assert scores["pixel_accuracy"] == pytest.approx(3 / 5)
    assert scores["pixels"] == 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_a_loop_and_torchmetrics(seed):
    pred, target = random_maps(seed=seed)
    got = confusion_matrix(pred, target, 5)
    loop = torch.zeros(5, 5, dtype=torch.int64)
    for p, t in zip(pred.flatten().tolist(), target.flatten().tolist(), strict=True):
        if t != IGNORE:
            loop[t, p] += 1
    assert torch.equal(got, loop)
    reference = MulticlassConfusionMatrix(5, ignore_index=IGNORE)(pred, target)
    assert torch.equal(got, reference.long())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_match_torchmetrics(seed):
    pred, target = random_maps(classes=6, seed=seed)
    scores = segmentation_scores(confusion_matrix(pred, target, 6))
    jaccard = MulticlassJaccardIndex(6, average=None, ignore_index=IGNORE)(pred, target)
    assert torch.allclose(scores["iou"], jaccard.double(), atol=1e-6)
    macro = MulticlassJaccardIndex(6, average="macro", ignore_index=IGNORE)(pred, target)
    assert scores["miou"] == pytest.approx(float(macro), abs=1e-6)
    accuracy = MulticlassAccuracy(6, average="micro", ignore_index=IGNORE)(pred, target)
    assert scores["pixel_accuracy"] == pytest.approx(float(accuracy), abs=1e-6)


def test_class_absent_from_truth_and_prediction_is_nan_and_not_averaged():
    pred, target = random_maps(classes=4, ignored=0.0, seed=3)
    pred[pred == 3], target[target == 3] = 0, 0  # class 3 appears nowhere
    pred[0, 0, 0] = 4  # class 4 only predicted, once: IoU 0, and it counts
    scores = segmentation_scores(confusion_matrix(pred, target, 6))
    iou = scores["iou"]
    assert math.isnan(iou[3]) and math.isnan(iou[5])
    assert iou[4] == 0.0
    assert scores["classes_averaged"] == 4
    assert scores["miou"] == pytest.approx(float(iou[[0, 1, 2, 4]].mean()))
    jaccard = MulticlassJaccardIndex(6, average=None, zero_division=math.nan)(pred, target)
    assert torch.allclose(iou, jaccard.double(), equal_nan=True)


def test_metric_errors():
    pred, target = random_maps()
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(pred[:, :4], target, 5)
    with pytest.raises(ValueError, match=r"argmax\(1\)"):
        confusion_matrix(pred.float(), target, 5)
    with pytest.raises(ValueError, match=r"pred must hold class indices in \[0, 3\]"):
        confusion_matrix(pred, target, 4)
    with pytest.raises(ValueError, match="num_classes"):
        confusion_matrix(pred, target, 1)
    with pytest.raises(ValueError, match="square"):
        segmentation_scores(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="empty"):
        segmentation_scores(torch.zeros(3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="counts >= 0"):
        segmentation_scores(-torch.eye(3))


def pr_reference(probs, target, c, thresholds):
    """Precision and recall of class c, pixels with probability >= each threshold."""
    valid = target != IGNORE
    score = probs[:, c][valid].double().numpy()
    positive = (target[valid] == c).numpy()
    precision, recall = [], []
    for tau in thresholds:
        chosen = score >= tau
        tp = (chosen & positive).sum()
        precision.append(tp / chosen.sum() if chosen.sum() else math.nan)
        recall.append(tp / positive.sum() if positive.sum() else math.nan)
    return np.array(precision), np.array(recall)


def random_probabilities(shape=(2, 4, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(shape, generator=g)).softmax(1)


@pytest.mark.parametrize("seed", [0, 1])
def test_precision_recall_curves_match_direct_counts_and_torchmetrics_ap(seed):
    probs = random_probabilities(seed=seed)
    _, target = random_maps((2, 8, 8), classes=4, seed=seed)
    target[target == 3] = 0  # class 3 has no pixel: no recall, AP NaN on purpose
    curves = precision_recall_curves(probs, target, 4, thresholds=11)
    for c, curve in enumerate(curves):
        precision, recall = pr_reference(probs, target, c, curve.thresholds.tolist())
        assert np.allclose(curve.precision[:-1].numpy(), precision, equal_nan=True, atol=1e-6)
        assert np.allclose(curve.recall[:-1].numpy(), recall, equal_nan=True, atol=1e-6)
        assert curve.support == int((target == c).sum())
    ap = MulticlassAveragePrecision(4, average=None, thresholds=11, ignore_index=IGNORE)
    reference = ap(probs, target)
    for c in range(3):
        assert curves[c].average_precision == pytest.approx(float(reference[c]), abs=1e-6)
    assert math.isnan(curves[3].average_precision) and curves[3].support == 0


class Fixed(torch.nn.Module):
    """A 'model' that returns the logits stored for each input, by its first value."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0].long()]


def test_evaluate_segmentation_streams_batches():
    g = torch.Generator().manual_seed(4)
    logits = 3 * torch.randn(6, 4, 8, 8, generator=g)
    _, target = random_maps((6, 8, 8), classes=4, seed=4)
    x = torch.arange(6).float().view(6, 1, 1, 1).expand(6, 3, 8, 8)
    data = [(x[:4], target[:4]), (x[4:], target[4:])]
    out = evaluate_segmentation(Fixed(logits), data, 4, pr_thresholds=11)
    assert torch.equal(out["confusion"], confusion_matrix(logits.argmax(1), target, 4))
    ce = F.cross_entropy(logits.double(), target, ignore_index=IGNORE)
    assert out["loss"] == pytest.approx(float(ce), rel=1e-5)
    whole = precision_recall_curves(logits.softmax(1), target, 4, thresholds=11)
    for got, ref in zip(out["pr_curves"], whole, strict=True):
        assert torch.allclose(got.precision, ref.precision, equal_nan=True)
        assert got.average_precision == pytest.approx(ref.average_precision, nan_ok=True)
    assert "pr_curves" not in evaluate_segmentation(Fixed(logits), data, 4)


def test_plot_segmentation_and_pr_curves():
    pred, target = random_maps((2, 8, 8), classes=3, seed=5)
    images = torch.rand(2, 3, 8, 8)
    palette = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    fig = plot_segmentation(images, target, {"teacher": pred, "student": pred}, palette)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2 * 4
    plt.close(fig)
    with pytest.raises(ValueError, match="prediction 'student' has shape"):
        plot_segmentation(images, target, {"student": pred[:, :4]}, palette)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 1\]"):
        plot_segmentation(images, target, {}, palette[:2])
    probs = random_probabilities((2, 3, 8, 8), seed=5)
    curves = precision_recall_curves(probs, target, 3, thresholds=11)
    fig = plot_pr_curves({"teacher": curves, "student": curves}, ["a", "b", "c"], cols=2)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 3 and all(len(ax.lines) == 2 for ax in visible)
    plt.close(fig)
    with pytest.raises(ValueError, match="one curve per class"):
        plot_pr_curves({"teacher": curves, "student": curves[:2]})
