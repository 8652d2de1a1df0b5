"""Decoupled knowledge distillation (Zhao et al. 2022): target and non-target classes weighed
apart, see :func:`kdlab.losses.decoupled_kd_loss`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.distill.trainer import Distiller
from kdlab.losses import decoupled_kd_loss

__all__ = ["DecoupledDistiller"]


class DecoupledDistiller(Distiller):
    """``CE + DKD``: cross-entropy plus :func:`kdlab.losses.decoupled_kd_loss` with
    ``tc_weight`` (the paper's alpha), ``nc_weight`` (beta) and ``temperature``."""

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module,
        *,
        tc_weight: float = 1.0,
        nc_weight: float = 8.0,
        temperature: float = 4.0,
        **kwargs,
    ):
        if teacher is None:
            raise ValueError("DecoupledDistiller needs a teacher")
        super().__init__(student, teacher, temperature=temperature, **kwargs)
        self.tc_weight, self.nc_weight = tc_weight, nc_weight

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.student(x)
        if teacher_logits is None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
        hard = F.cross_entropy(logits, y)
        dkd = decoupled_kd_loss(
            logits, teacher_logits, y, self.tc_weight, self.nc_weight, self.temperature
        )
        return logits, {"loss": hard + dkd, "hard_loss": hard, "soft_loss": dkd}

