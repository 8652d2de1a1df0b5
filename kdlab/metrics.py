"""Metrics over a whole data set: classification accuracy, and for segmentation a
confusion matrix, per-class IoU, mIoU, pixel accuracy and precision-recall curves.

The evaluation passes run the model where it is (:func:`kdlab.runtime.device_of`) and move
each batch there, so a model straight out of a Distiller on a GPU is scored on the GPU; the
results (counts, curves) come back on the host.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassPrecisionRecallCurve

from kdlab import runtime
from kdlab.losses import IGNORE_INDEX

__all__ = [
    "evaluate",
    "confusion_matrix",
    "segmentation_scores",
    "PRCurve",
    "precision_recall_curves",
    "evaluate_segmentation",
]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Iterable[tuple[Tensor, Tensor]],
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """Mean cross-entropy, accuracy and error count of ``model`` (in eval mode) over ``data``,
    each batch moved to ``device`` (None: the model's own, :func:`kdlab.runtime.device_of`)."""
    device = runtime.device_of(model) if device is None else device
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for x, y in data:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluation data yielded no examples")
    return {"loss": total_loss / n, "accuracy": correct / n, "errors": n - correct, "n": n}


def _check_num_classes(num_classes: int) -> None:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")


def _check_labels(name: str, labels: Tensor, num_classes: int) -> None:
    if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
        hint = "; for logits pass logits.argmax(1)" if name == "pred" else ""
        raise ValueError(
            f"{name} must be a tensor of integer class indices, got "
            f"{getattr(labels, 'dtype', type(labels).__name__)}{hint}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{name} must hold class indices in [0, {num_classes - 1}], got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Counts ``M[i, j]`` of pixels of true class ``i`` predicted as ``j`` (int64, C x C).

    Rows are the truth, columns the prediction. Pixels whose target is ``ignore_index``
    are left out, whatever was predicted there.
    """
    _check_num_classes(num_classes)
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise ValueError("pred and target must be tensors of class indices")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got {tuple(pred.shape)} (pred) and "
            f"{tuple(target.shape)} (target); for logits (N, C, H, W) pass logits.argmax(1)"
        )
    _check_labels("pred", pred, num_classes)
    valid = target != ignore_index
    _check_labels("target", target[valid], num_classes)
    index = target[valid].long() * num_classes + pred[valid].long()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def segmentation_scores(confusion: Tensor) -> dict:
    """Per-class IoU, mIoU and pixel accuracy from a confusion matrix (rows = truth).

    ``IoU_c = TP_c / (TP_c + FP_c + FN_c)`` with ``TP_c = M[c, c]``, ``FP_c`` the rest of
    column c and ``FN_c`` the rest of row c (Everingham et al. 2010, "The PASCAL VOC
    Challenge"). A class absent from both truth and prediction has ``0 / 0``: its IoU is
    NaN, not 0 (which would punish the model for a class it never had a chance to find)
    and not 1 (which would reward it for nothing). ``miou`` is the mean over the other
    classes, ``classes_averaged`` says how many; ``pixel_accuracy = sum_c TP_c / sum M``.

    Returns a dict: ``iou`` (float64 tensor of C values), ``miou``, ``classes_averaged``,
    ``pixel_accuracy`` and ``pixels``.
    """
    if (
        not isinstance(confusion, Tensor)
        or confusion.dim() != 2
        or confusion.shape[0] != confusion.shape[1]
    ):
        raise ValueError(
            "confusion must be a square tensor (classes x classes), got "
            f"{tuple(getattr(confusion, 'shape', ())) or type(confusion).__name__}"
        )
    m = confusion.double()
    if (m < 0).any() or not torch.isfinite(m).all():
        raise ValueError("confusion must hold counts >= 0")
    pixels = float(m.sum())
    if pixels == 0:
        raise ValueError("the confusion matrix is empty: no labelled pixel was counted")
    tp = m.diag()
    union = m.sum(0) + m.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp_min(1), torch.full_like(tp, math.nan))
    present = ~iou.isnan()
    return {
        "iou": iou,
        "miou": float(iou[present].mean()),
        "classes_averaged": int(present.sum()),
        "pixel_accuracy": float(tp.sum() / pixels),
        "pixels": int(pixels),
    }


@dataclass(frozen=True)
class PRCurve:
    """One class's precision-recall curve (one-vs-rest over pixels) at fixed thresholds.

    ``precision`` and ``recall`` have one more entry than ``thresholds`` (the last point is
    recall 0, precision 1); precision is NaN where no pixel scores above the threshold.
    ``average_precision = -sum_k (R_{k+1} - R_k) P_k`` (NaN terms as 0, as torchmetrics);
    it is NaN, explicitly, for a class with no labelled pixel (``support == 0``).
    """

    precision: Tensor
    recall: Tensor
    thresholds: Tensor
    average_precision: float
    support: int


def _pr_metric(
    num_classes: int, ignore_index: int, thresholds: int
) -> MulticlassPrecisionRecallCurve:
    _check_num_classes(num_classes)
    if isinstance(thresholds, bool) or not isinstance(thresholds, int) or thresholds < 2:
        raise ValueError(
            f"thresholds must be an int >= 2 (evenly spaced in [0, 1]), got {thresholds!r}"
        )
    return MulticlassPrecisionRecallCurve(
        num_classes, thresholds=thresholds, ignore_index=ignore_index
    )


def _curves(metric: MulticlassPrecisionRecallCurve, support: Tensor) -> list[PRCurve]:
    # small (classes x thresholds) and meant for plotting: on the host
    precision, recall, thresholds = (t.cpu() for t in metric.compute())
    support = support.cpu()
    p, r = precision.nan_to_num(0.0), recall.nan_to_num(0.0)
    ap = -((r[:, 1:] - r[:, :-1]) * p[:, :-1]).sum(1)
    return [
        PRCurve(
            precision[c],
            recall[c],
            thresholds,
            float(ap[c]) if support[c] > 0 else math.nan,
            int(support[c]),
        )
        for c in range(len(support))
    ]


def precision_recall_curves(
    probabilities: Tensor,
    target: Tensor,
    num_classes: int,
    *,
    ignore_index: int = IGNORE_INDEX,
    thresholds: int = 101,
) -> list[PRCurve]:
    """Per-class precision-recall curves of softmax ``probabilities`` ``(N, C, H, W)``
    against ``target`` ``(N, H, W)``, over labelled pixels, at ``thresholds`` evenly spaced
    thresholds in [0, 1] (torchmetrics ``MulticlassPrecisionRecallCurve``; fixed thresholds
    keep memory constant however many pixels there are)."""
    metric = _pr_metric(num_classes, ignore_index, thresholds)
    if probabilities.dim() < 2 or probabilities.shape[1] != num_classes:
        raise ValueError(
            f"probabilities must have shape (N, {num_classes}, H, W), got "
            f"{tuple(probabilities.shape)}"
        )
    valid = target != ignore_index
    _check_labels("target", target[valid], num_classes)
    metric = metric.to(probabilities.device)
    metric.update(probabilities, target)
    support = torch.bincount(target[valid].long(), minlength=num_classes)
    return _curves(metric, support)


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module,
    data: Iterable[tuple[Tensor, Tensor]],
    num_classes: int,
    *,
    ignore_index: int = IGNORE_INDEX,
    device: str | torch.device | None = None,
    pr_thresholds: int | None = None,
) -> dict:
    """One pass of ``model`` (in eval mode) over ``data``, each batch moved to ``device``
    (None: the model's own, :func:`kdlab.runtime.device_of`): mean cross-entropy over
    labelled pixels (``loss``), the confusion matrix (on the host) and
    :func:`segmentation_scores`; with ``pr_thresholds``, also per-class :class:`PRCurve` s
    under ``pr_curves``."""
    _check_num_classes(num_classes)
    device = runtime.device_of(model) if device is None else device
    metric = _pr_metric(num_classes, ignore_index, pr_thresholds) if pr_thresholds else None
    was_training = model.training
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    total_loss = 0.0
    for x, y in data:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, ignore_index=ignore_index, reduction="sum"))
        confusion += confusion_matrix(logits.argmax(1), y, num_classes, ignore_index).cpu()
        if metric is not None:
            metric.update(logits.softmax(1).cpu(), y.cpu())
    model.train(was_training)
    scores = segmentation_scores(confusion)
    out = {"loss": total_loss / scores["pixels"], **scores, "confusion": confusion}
    if metric is not None:
        out["pr_curves"] = _curves(metric, confusion.sum(1))
    return out
