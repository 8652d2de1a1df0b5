"""Distillation for semantic segmentation.

``SegmentationDistiller`` trains a student (such as :class:`kdlab.models.SlimUNet`) on
``alpha * CE + (1 - alpha) * pixel-wise KD`` (Liu et al. 2019, "Structured Knowledge
Distillation for Semantic Segmentation"), with a frozen teacher; the cross-entropy can weigh
rare classes up with :func:`median_frequency_weights` (Eigen and Fergus 2015).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.distill.trainer import Distiller
from kdlab.losses import IGNORE_INDEX, pixel_distillation_loss
from kdlab.metrics import evaluate_segmentation

__all__ = ["SegmentationDistiller", "median_frequency_weights"]


def median_frequency_weights(
    labels: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> Tensor:
    """Class weights for the cross-entropy: ``w_c = median_k f_k / f_c`` (Eigen and Fergus
    2015, "Predicting Depth, Surface Normals and Semantic Labels with a Common Multi-Scale
    Convolutional Architecture", section 4.3).

    ``f_c`` is the frequency of class ``c``: its labelled pixels divided by the labelled
    pixels of the images (first dimension of ``labels``, e.g. patches ``(N, H, W)``) where
    ``c`` appears; the median (the mean of the two middle values for an even count) runs
    over the classes present. A class rarer than the median
    weighs more than 1, a commoner one less. A class absent from ``labels`` gets weight 0:
    it has no pixel to weigh. Ignored pixels count nowhere.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    if not isinstance(labels, Tensor) or labels.dim() < 2:
        raise ValueError(
            "labels must be a tensor of class maps (images, H, W), got "
            f"{getattr(labels, 'shape', type(labels).__name__)}"
        )
    flat = labels.reshape(labels.shape[0], -1).long()
    valid = flat != ignore_index
    if not bool(valid.any()):
        raise ValueError(f"every pixel of labels equals ignore_index={ignore_index}")
    outside = valid & ((flat < 0) | (flat >= num_classes))
    if bool(outside.any()):
        raise ValueError(
            f"labels hold class {int(flat[outside][0])}, outside 0..{num_classes - 1}; "
            f"pass the right num_classes or mark unlabelled pixels with {ignore_index}"
        )
    counts = torch.zeros(flat.shape[0], num_classes, dtype=torch.float64)
    counts.scatter_add_(1, flat.masked_fill(~valid, 0), valid.double())
    per_image = counts.sum(1, keepdim=True)
    present = counts > 0
    pixels = counts.sum(0)
    seen = present.any(0)
    frequency = pixels[seen] / (per_image * present)[:, seen].sum(0)
    weights = torch.zeros(num_classes, dtype=torch.float64)
    weights[seen] = frequency.quantile(0.5) / frequency
    return weights.float()


class SegmentationDistiller(Distiller):
    """:class:`kdlab.distill.Distiller` for per-pixel labels with an ignore index.

    ``loss = alpha * CE(student, y; ignore_index) + (1 - alpha) * pixel KD`` where pixel KD
    is :func:`kdlab.losses.pixel_distillation_loss` at ``temperature`` over the labelled
    pixels. Without a teacher the loss is the cross-entropy alone (teachers and
    from-scratch students train with the same loop). ``class_weights`` (one per class, e.g.
    :func:`median_frequency_weights`) weigh the cross-entropy's pixels by their true class,
    normalised by the summed weights of the batch's labelled pixels (``F.cross_entropy``
    with ``weight``); the KD term stays an unweighted mean over labelled pixels.
    ``train_accuracy`` is the pixel accuracy over labelled pixels; with validation data every
    epoch also records ``val_loss`` (unweighted cross-entropy), ``val_accuracy`` (pixel
    accuracy) and ``val_miou``.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        *,
        num_classes: int = 6,
        ignore_index: int = IGNORE_INDEX,
        class_weights: Tensor | Sequence[float] | None = None,
        **kwargs,
    ):
        super().__init__(student, teacher, **kwargs)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"ignore_index={ignore_index} is a class index (0..{num_classes - 1}); "
                f"use a value outside the classes, such as {IGNORE_INDEX}"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_weights = None
        if class_weights is not None:
            weights = torch.as_tensor(class_weights, dtype=torch.float32).flatten()
            if len(weights) != num_classes or not bool(torch.isfinite(weights).all()):
                raise ValueError(
                    f"class_weights must be {num_classes} finite numbers (one per class), got "
                    f"{weights.tolist()}"
                )
            if bool((weights < 0).any()) or not bool((weights > 0).any()):
                raise ValueError(
                    f"class_weights must be >= 0 and not all 0, got {weights.tolist()}"
                )
            self.class_weights = weights.to(self.device)

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.student(x)
        hard = F.cross_entropy(logits, y, weight=self.class_weights, ignore_index=self.ignore_index)
        valid = y != self.ignore_index
        accuracy = (logits.argmax(1) == y)[valid].float().mean()
        if self.teacher is None:
            return logits, {"loss": hard, "hard_loss": hard, "pixel_accuracy": accuracy}
        if teacher_logits is None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
        soft = pixel_distillation_loss(
            logits, teacher_logits, self.temperature, y, ignore_index=self.ignore_index
        )
        loss = self.alpha * hard + (1 - self.alpha) * soft
        parts = {"loss": loss, "hard_loss": hard, "soft_loss": soft, "pixel_accuracy": accuracy}
        return logits, parts

    def train_step(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> dict[str, float]:
        out = super().train_step(x, y, teacher_logits)
        # the base class counts ignored pixels as errors; keep the labelled-pixel accuracy
        out["train_accuracy"] = out.pop("pixel_accuracy")
        return out

    def validate(self, val: Iterable[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """Validation over labelled pixels only: loss, pixel accuracy and mIoU."""
        scores = evaluate_segmentation(
            self.student, val, self.num_classes, ignore_index=self.ignore_index, device=self.device
        )
        return {
            "val_loss": scores["loss"],
            "val_accuracy": scores["pixel_accuracy"],
            "val_miou": scores["miou"],
        }
