"""Pixel-wise distillation for semantic segmentation (Liu et al. 2019)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from kdlab.losses._checks import _check_pair, _check_targets, _check_temperature

__all__ = ["pixel_distillation_loss", "IGNORE_INDEX"]

# The label of a pixel with no class (unlabelled or outside the image), everywhere in kdlab.
IGNORE_INDEX = 255


def pixel_distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float,
    targets: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Per-pixel soft targets: ``T^2 * mean over valid pixels of KL(p_teacher^T || p_student^T)``.

    For logits of shape ``(N, C, H, W)`` (or any ``(N, C, ...)``), at each pixel ``u``
    ``KL_u = sum_c p_c(u) (log p_c(u) - log q_c(u))`` over the classes (dimension 1), with
    ``p = softmax(teacher / T)`` and ``q = softmax(student / T)``. The loss is
    ``T^2 * sum_u KL_u / |valid|``: a pixel whose target equals ``ignore_index`` (no label,
    as at the edge of an annotation) counts neither in the sum nor in the count. Without
    ``targets`` every pixel counts. Liu et al. (2019), "Structured Knowledge Distillation for
    Semantic Segmentation", section 3.1; the ``T^2`` factor keeps the gradient's size
    independent of T (Hinton et al. 2015). The teacher side is detached.
    """
    _check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    if student_logits.dim() < 3:
        raise ValueError(
            "pixel_distillation_loss expects per-pixel logits (batch, classes, H, W), got shape "
            f"{tuple(student_logits.shape)}; for one prediction per example use soft_target_loss"
        )
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    per_pixel = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    if targets is None:
        return per_pixel.mean() * temperature**2
    _check_pixel_targets(targets, student_logits, ignore_index)
    valid = targets != ignore_index
    count = int(valid.sum())
    if count == 0:
        raise ValueError(
            f"every pixel of targets equals ignore_index={ignore_index}, so no pixel is left to "
            "average over; drop such patches or pass targets=None to use every pixel"
        )
    return per_pixel[valid].sum() / count * temperature**2


def _check_pixel_targets(targets: Tensor, logits: Tensor, ignore_index: int) -> None:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"ignore_index must be an int, got {ignore_index!r}")
    if isinstance(targets, Tensor):  # ignored pixels may hold any value, e.g. 255
        targets = targets.masked_fill(targets == ignore_index, 0)
    _check_targets(targets, logits)
