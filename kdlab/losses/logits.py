"""Logit distillation: soft targets at a temperature (Hinton et al. 2015) and decoupled KD
(Zhao et al. 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from kdlab.losses._checks import _check_logits, _check_pair, _check_targets, _check_temperature

__all__ = [
    "softmax_with_temperature",
    "soft_target_loss",
    "distillation_loss",
    "decoupled_kd_loss",
]


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


def decoupled_kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    alpha: float = 1.0,
    beta: float = 8.0,
    temperature: float = 4.0,
) -> Tensor:
    """Decoupled KD: ``alpha * TCKD + beta * NCKD`` (Zhao et al. 2022, "Decoupled Knowledge
    Distillation", eq. 1-7), both batch means scaled by ``T^2``.

    With ``p_t`` the probability of the true class at temperature T,
    ``TCKD = KL([p_t^T, 1 - p_t^T] || [p_t^S, 1 - p_t^S])`` (binary: target vs the rest) and
    ``NCKD = KL(p_hat^T || p_hat^S)`` over the non-target classes, renormalised among
    themselves. Plain KD is ``TCKD + (1 - p_t^T) NCKD``: DKD frees NCKD from that weight,
    which is small exactly when the teacher is confident. Logits are (batch, classes);
    paper defaults ``alpha=1, beta=8, T=4``; add the cross-entropy yourself.
    """
    _check_temperature(temperature)
    for name, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0 (weight of its term), got {value!r}")
    _check_pair(student_logits, teacher_logits)
    if student_logits.dim() != 2 or student_logits.shape[1] < 3:
        raise ValueError(
            "decoupled_kd_loss needs logits of shape (batch, classes) with at least 3 classes, "
            f"got {tuple(student_logits.shape)}"
        )
    _check_targets(targets, student_logits)
    batch, classes = student_logits.shape
    target_mask = F.one_hot(targets.long(), classes).bool()

    def split(logits: Tensor) -> tuple[Tensor, Tensor]:
        """Binary log-probabilities [log p_t, log(1 - p_t)] and log p_hat over non-targets."""
        z = logits / temperature
        log_all = torch.logsumexp(z, dim=1)
        others = z[~target_mask].view(batch, classes - 1)
        log_rest = torch.logsumexp(others, dim=1)
        binary = torch.stack([z[target_mask] - log_all, log_rest - log_all], dim=1)
        return binary, others - log_rest[:, None]

    def kl(log_p: Tensor, log_q: Tensor) -> Tensor:
        return (log_p.exp() * (log_p - log_q)).sum() / batch * temperature**2

    binary_s, hat_s = split(student_logits)
    binary_t, hat_t = split(teacher_logits.detach())
    return alpha * kl(binary_t, binary_s) + beta * kl(hat_t, hat_s)
