"""Distillation losses.

Every loss states its formula and its paper. Inputs are validated at this boundary so a
mistake (swapped shapes, a zero temperature, NaN logits) fails with a message that says
what was expected and what was given, instead of training on garbage.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "softmax_with_temperature",
    "soft_target_loss",
    "distillation_loss",
]


def _check_temperature(temperature: float) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")


def _check_logits(name: str, logits: Tensor) -> None:
    if not isinstance(logits, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be floating point logits, got dtype {logits.dtype}")
    if logits.dim() < 2:
        raise ValueError(
            f"{name} must have shape (batch, classes, ...), got shape {tuple(logits.shape)}"
        )
    if logits.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(logits.shape)})")
    if not torch.isfinite(logits).all():
        raise ValueError(f"{name} contains NaN or infinite values; check the model's output")


def _check_pair(student_logits: Tensor, teacher_logits: Tensor) -> None:
    _check_logits("student_logits", student_logits)
    _check_logits("teacher_logits", teacher_logits)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            "student_logits and teacher_logits must have the same shape, got "
            f"{tuple(student_logits.shape)} (student) and {tuple(teacher_logits.shape)} (teacher)"
        )


def _check_targets(targets: Tensor, logits: Tensor) -> None:
    if not isinstance(targets, Tensor) or targets.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            "targets must be a tensor of integer class indices (torch.long), got "
            f"{getattr(targets, 'dtype', type(targets).__name__)}"
        )
    expected = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(targets.shape) != expected:
        raise ValueError(
            f"targets must have shape {expected} to match logits {tuple(logits.shape)}, "
            f"got {tuple(targets.shape)}"
        )
    classes = logits.shape[1]
    if targets.numel() and (targets.min() < 0 or targets.max() >= classes):
        raise ValueError(
            f"targets must lie in [0, {classes - 1}] for {classes} classes, got values in "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )


def softmax_with_temperature(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Soft targets: ``p_i = exp(z_i / T) / sum_j exp(z_j / T)`` over dimension 1.

    Higher T flattens the distribution and reveals the teacher's "dark knowledge" about
    which wrong classes look alike (Hinton, Vinyals and Dean 2015, section 2).
    """
    _check_temperature(temperature)
    _check_logits("logits", logits)
    return F.softmax(logits / temperature, dim=1)


def soft_target_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """Hinton's soft-target loss: ``T^2 * KL(p_teacher^T || p_student^T)``, batch mean.

    ``KL(p || q) = sum_i p_i (log p_i - log q_i)`` summed over classes (dimension 1) and
    averaged over the batch (PyTorch's ``reduction="batchmean"``; ``"mean"`` would also
    divide by the number of classes). Both sides use log-softmax, so logits of 1e4 stay
    finite. The gradient of the soft term scales as ``1/T^2``; multiplying by ``T^2``
    keeps its size comparable to the hard loss when T changes (Hinton et al. 2015,
    "Distilling the Knowledge in a Neural Network", section 2).

    The teacher side is detached: only the student receives a gradient.
    """
    _check_temperature(temperature)
    _check_pair(student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    per_position = (log_p.exp() * (log_p - log_q)).sum(dim=1)
    return per_position.sum() / student_logits.shape[0] * temperature**2


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    temperature: float,
    alpha: float,
) -> Tensor:
    """Hard and soft targets mixed: ``alpha * CE(student, y) + (1 - alpha) * soft_target_loss``.

    Convention: ``alpha`` weighs the **hard** (true-label) cross-entropy and ``1 - alpha``
    the **soft** (teacher) term, so ``alpha=1`` is training from scratch and ``alpha=0``
    is pure distillation. The cross-entropy is at temperature 1 (Hinton et al. 2015
    found a small weight on the hard term works best).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
        raise ValueError(
            f"alpha must be a number in [0, 1] (weight of the hard loss), got {alpha!r}"
        )
    soft = soft_target_loss(student_logits, teacher_logits, temperature)
    _check_targets(targets, student_logits)
    hard = F.cross_entropy(student_logits, targets.long())
    return alpha * hard + (1 - alpha) * soft
