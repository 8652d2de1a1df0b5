"""Distilling intermediate activations: a loss term on activations captured by layer name.

:class:`FeatureDistiller` trains on ``CE + weight * term(student activation, teacher
activation)``, where ``term`` is any of the feature or relation losses of
:mod:`kdlab.losses`: FitNets hints (Romero et al. 2015), attention transfer (Zagoruyko and
Komodakis 2017), RKD (Park et al. 2019), similarity-preserving KD (Tung and Mori 2019).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.distill.trainer import Distiller
from kdlab.hooks import capture_activations

__all__ = ["FeatureDistiller"]


class FeatureDistiller(Distiller):
    """``CE(student, y) + weight * term(student[student_layer], teacher[teacher_layer])``.

    ``term`` is any loss of (student activation, teacher activation), e.g.
    :func:`kdlab.losses.attention_transfer_loss`; if it is an ``nn.Module`` with parameters
    (:class:`kdlab.losses.HintLoss`' regressor) they are trained with the student. Layers are
    named as in ``model.named_modules()``. Batches are ``(x, y)``, or
    ``(x, y, teacher_activation)`` with the teacher's activation at ``teacher_layer``
    computed beforehand (exact without augmentation, see :class:`kdlab.distill.Distiller`).
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        term: Callable[[Tensor, Tensor], Tensor],
        *,
        student_layer: str,
        teacher_layer: str,
        weight: float = 1.0,
        lr: float = 1e-3,
        **kwargs,
    ):
        if teacher is None:
            raise ValueError("FeatureDistiller needs a teacher; use Distiller for labels alone")
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"weight must be a number >= 0, got {weight!r}")
        # fail now, not at the first batch, when a layer name is wrong
        with (
            capture_activations(student, student_layer),
            capture_activations(teacher, teacher_layer),
        ):
            pass
        params = list(student.parameters())
        if isinstance(term, nn.Module):
            params += list(term.parameters())
        optimizer = torch.optim.Adam(params, lr=lr)
        super().__init__(student, teacher, lr=lr, optimizer=optimizer, **kwargs)
        if isinstance(term, nn.Module):
            term.to(self.device)
        self.term, self.weight = term, float(weight)
        self.student_layer, self.teacher_layer = student_layer, teacher_layer

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        with capture_activations(self.student, self.student_layer) as s_acts:
            logits = self.student(x)
        teacher_activation = teacher_logits  # the third batch item holds the activation here
        if teacher_activation is None:
            with torch.no_grad(), capture_activations(self.teacher, self.teacher_layer) as t_acts:
                self.teacher(x)
            teacher_activation = t_acts[self.teacher_layer]
        hard = F.cross_entropy(logits, y)
        term = self.term(s_acts[self.student_layer], teacher_activation)
        loss = hard + self.weight * term
        return logits, {"loss": loss, "hard_loss": hard, "feature_loss": term}

