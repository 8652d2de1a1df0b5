"""Argument checks shared by the losses: each failure says what was expected and given."""

from __future__ import annotations

import math

import torch
from torch import Tensor


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
