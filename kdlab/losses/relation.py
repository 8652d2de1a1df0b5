"""Relation distillation: RKD distance and angle, and similarity-preserving KD.

These losses transfer how the examples of a batch relate to each other, not the
individual outputs, so student and teacher embeddings may have different sizes. Inputs
of shape (batch, ...) are flattened to (batch, features); the teacher side is detached.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["rkd_distance_loss", "rkd_angle_loss", "rkd_loss", "similarity_preserving_loss"]

_EPS = 1e-12


def _flat_pair(student: Tensor, teacher: Tensor, min_batch: int) -> tuple[Tensor, Tensor]:
    for name, value in (("student", student), ("teacher", teacher)):
        if not isinstance(value, Tensor) or not value.is_floating_point():
            kind = getattr(value, "dtype", type(value).__name__)
            raise ValueError(f"{name} embeddings must be a floating point tensor, got {kind}")
        if value.dim() < 2:
            raise ValueError(
                f"{name} embeddings must have shape (batch, ...), got {tuple(value.shape)}"
            )
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} embeddings contain NaN or infinite values")
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(
            f"student and teacher must embed the same batch, got {student.shape[0]} and "
            f"{teacher.shape[0]} examples"
        )
    if student.shape[0] < min_batch:
        raise ValueError(
            f"this relation loss needs a batch of at least {min_batch} examples, got "
            f"{student.shape[0]}"
        )
    return student.flatten(1), teacher.detach().flatten(1)


def _normalised_distances(x: Tensor) -> Tensor:
    """Distances ``||x_i - x_j||`` for i != j, divided by their mean (RKD's ``mu``)."""
    diff = x[:, None, :] - x[None, :, :]
    off_diagonal = ~torch.eye(len(x), dtype=torch.bool, device=x.device)
    # the square root is taken off the diagonal only: its gradient at 0 is infinite
    d = diff[off_diagonal].pow(2).sum(dim=1).clamp_min(_EPS).sqrt()
    return d / d.mean().clamp_min(_EPS)


def rkd_distance_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """RKD-D: ``mean_{i != j} smoothL1(||s_i - s_j|| / mu_s, ||t_i - t_j|| / mu_t)``.

    ``mu`` is the mean distance over the batch's ``B (B - 1)`` ordered pairs, so the loss is
    invariant to a common scaling (and to rotations and translations) of either side's
    embeddings (Park et al. 2019, "Relational Knowledge Distillation", eq. 5 and 6;
    smooth L1 is the Huber loss with threshold 1). Needs a batch of at least 2.
    """
    s, t = _flat_pair(student, teacher, min_batch=2)
    return F.smooth_l1_loss(_normalised_distances(s), _normalised_distances(t))


def _cosines(x: Tensor) -> Tensor:
    """``cos[j, i, k] = <e_ij, e_kj>`` with ``e_ij = (x_i - x_j) / ||x_i - x_j||``: the cosine
    of the angle at ``x_j``. Where ``i = j`` or ``k = j``, ``e`` is the zero vector and the
    entry is 0; where ``i = k`` it is 1 (on both sides, so such triplets add no loss)."""
    e = F.normalize(x[:, None, :] - x[None, :, :], p=2, dim=2)  # e[j, i] = unit(x_i - x_j)
    return torch.bmm(e, e.transpose(1, 2))


def rkd_angle_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """RKD-A: ``mean_{i, j, k distinct} smoothL1(cos_s(i, j, k), cos_t(i, j, k))`` where
    ``cos(i, j, k)`` is the cosine of the angle at ``x_j`` between ``x_i - x_j`` and
    ``x_k - x_j`` (Park et al. 2019, eq. 7 and 8). Averaged over the ``B (B-1) (B-2)``
    ordered triplets of distinct examples (the other triplets agree on both sides and are
    summed as zeros, which avoids a B^3 mask); needs a batch of at least 3 distinct
    examples. Memory grows as B^3.
    """
    s, t = _flat_pair(student, teacher, min_batch=3)
    b = len(s)
    total = F.smooth_l1_loss(_cosines(s), _cosines(t), reduction="sum")
    return total / (b * (b - 1) * (b - 2))


def rkd_loss(
    student: Tensor, teacher: Tensor, distance_weight: float = 25.0, angle_weight: float = 50.0
) -> Tensor:
    """``distance_weight * RKD-D + angle_weight * RKD-A``, with Park et al.'s weights
    (25 and 50, section 4.1) as defaults."""
    for name, value in (("distance_weight", distance_weight), ("angle_weight", angle_weight)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return distance_weight * rkd_distance_loss(student, teacher) + angle_weight * rkd_angle_loss(
        student, teacher
    )


def similarity_preserving_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """SP: ``||G_s - G_t||_F^2 / B^2`` where ``G = rownorm(A A^T)`` is the (B, B) batch
    similarity graph of the flattened activations ``A`` (B, features), each row divided by
    its L2 norm (Tung and Mori 2019, "Similarity-Preserving Knowledge Distillation",
    eq. 2-4). Invariant to a common scaling of either side's activations and to any
    rotation of their feature space; the two sides may have different sizes.
    """
    s, t = _flat_pair(student, teacher, min_batch=1)

    def graph(a: Tensor) -> Tensor:
        return F.normalize(a @ a.T, p=2, dim=1)

    return (graph(s) - graph(t)).pow(2).sum() / len(s) ** 2
