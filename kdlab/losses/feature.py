"""Feature distillation: FitNets hints and attention transfer.

Both compare an intermediate activation of the student with one of the teacher. The
teacher side is always detached: only the student (and the hint regressor) learn.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["HintLoss", "attention_map", "attention_transfer_loss"]


def _check_features(name: str, features: Tensor, dims: tuple[int, ...]) -> None:
    if not isinstance(features, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(features).__name__}")
    if not features.is_floating_point():
        raise ValueError(f"{name} must be floating point, got dtype {features.dtype}")
    if features.dim() not in dims:
        shapes = " or ".join(
            {2: "(batch, features)", 4: "(batch, channels, H, W)"}[d] for d in dims
        )
        raise ValueError(f"{name} must have shape {shapes}, got shape {tuple(features.shape)}")
    if features.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(features.shape)})")


def _check_same_batch_and_space(student: Tensor, teacher: Tensor) -> None:
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise ValueError(
            "student and teacher features must have the same batch size and spatial size, got "
            f"{tuple(student.shape)} (student) and {tuple(teacher.shape)} (teacher); pick layers "
            "with matching resolution or pool one side (F.adaptive_avg_pool2d)"
        )


class HintLoss(nn.Module):
    """FitNets hint loss: ``mean((r(s) - t)^2)`` with a learnable regressor ``r``.

    ``r`` is a 1x1 convolution from ``student_channels`` to ``teacher_channels`` applied
    to the **student's** guided layer ``s`` (for ``(batch, features)`` inputs it acts as a
    linear layer), so the thin student is mapped up to the teacher's hint layer ``t``, never
    the other way round. Romero et al. (2015, "FitNets: Hints for Thin Deep Nets", eq. 3)
    write ``1/2 ||t - r(s)||^2`` summed; this is the mean over all elements, which keeps
    the scale independent of the layer size. Add the module's parameters to the optimiser.
    """

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        for name, value in (
            ("student_channels", student_channels),
            ("teacher_channels", teacher_channels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.regressor = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)

    def forward(self, student_features: Tensor, teacher_features: Tensor) -> Tensor:
        _check_features("student_features", student_features, (2, 4))
        _check_features("teacher_features", teacher_features, (2, 4))
        if student_features.dim() != teacher_features.dim():
            raise ValueError(
                "student and teacher features must both be 2-D or both 4-D, got shapes "
                f"{tuple(student_features.shape)} and {tuple(teacher_features.shape)}"
            )
        _check_same_batch_and_space(student_features, teacher_features)
        expected = (self.regressor.in_channels, self.regressor.out_channels)
        if (student_features.shape[1], teacher_features.shape[1]) != expected:
            raise ValueError(
                f"HintLoss was built for {expected[0]} student and {expected[1]} teacher "
                f"channels, got {student_features.shape[1]} and {teacher_features.shape[1]}"
            )
        flat = student_features.dim() == 2
        s = student_features[:, :, None, None] if flat else student_features
        mapped = self.regressor(s)
        mapped = mapped[:, :, 0, 0] if flat else mapped
        return F.mse_loss(mapped, teacher_features.detach())


def attention_map(features: Tensor, p: float = 2.0) -> Tensor:
    """Spatial attention of ``features`` (B, C, H, W): ``q = vec(sum_c |A_c|^p)``, L2-normalised
    per sample, shape (B, H*W).

    Zagoruyko and Komodakis (2017, "Paying More Attention to Attention", eq. 2 and 3) use
    ``p = 2``. The normalisation makes the map independent of the activation scale, so a
    student and teacher with different channel counts and magnitudes can be compared.
    """
    _check_features("features", features, (4,))
    if isinstance(p, bool) or not isinstance(p, (int, float)) or p <= 0:
        raise ValueError(f"p must be a number > 0, got {p!r}")
    q = features.abs().pow(p).sum(dim=1).flatten(1)
    return F.normalize(q, p=2, dim=1)


def attention_transfer_loss(
    student_features: Tensor, teacher_features: Tensor, p: float = 2.0
) -> Tensor:
    """Attention transfer: ``mean_b || q_s(b) - q_t(b) ||_2`` over the batch, with
    :func:`attention_map` ``q`` of each side (Zagoruyko and Komodakis 2017, eq. 2).

    The paper's variant with the (unsquared) L2 norm of the difference of normalised maps,
    averaged over samples; channel counts may differ, spatial sizes must match. Multiply
    by the paper's ``beta / 2`` yourself.
    """
    _check_features("student_features", student_features, (4,))
    _check_features("teacher_features", teacher_features, (4,))
    _check_same_batch_and_space(student_features, teacher_features)
    diff = attention_map(student_features, p) - attention_map(teacher_features.detach(), p)
    return diff.norm(p=2, dim=1).mean()
