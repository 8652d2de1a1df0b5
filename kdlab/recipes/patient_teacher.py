"""The patient-teacher track (notebook 08 and ``benchmarks/patient_teacher.py``): distil an MLP
student on random views with the teacher's targets made one of the four ways of
:mod:`kdlab.distill.views` (Beyer et al. 2022)."""

from __future__ import annotations

from torch import nn

from kdlab import runtime
from kdlab.data import ImageSet
from kdlab.distill import Distiller, History
from kdlab.distill.views import TeachingBatches
from kdlab.models import StudentMLP

__all__ = ["distil_with_views"]


def distil_with_views(
    teacher: nn.Module,
    train: ImageSet,
    val: ImageSet,
    mode: str,
    epochs: int,
    *,
    student: nn.Module | None = None,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> tuple[nn.Module, History]:
    """Distil a :class:`~kdlab.models.StudentMLP` (or ``student``) from ``teacher`` on
    random views of ``train`` with the targets of ``mode``: KL at T = 1 only (no labels,
    as in the paper), Adam with a cosine decay over ``epochs``; validation every epoch."""
    runtime.seed_everything(seed)
    student = student or StudentMLP()
    teacher.eval()
    batches = TeachingBatches(teacher, train.x, train.y, mode, batch_size=batch_size, seed=seed)
    distiller = Distiller(
        student, teacher, temperature=1.0, alpha=0.0, lr=lr, lr_schedule="cosine", seed=seed
    )
    history = distiller.fit(batches, epochs, val.loader(1000), progress=progress)
    return student.eval(), history

