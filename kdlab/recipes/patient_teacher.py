"""The patient-teacher track (notebook 08 and ``benchmarks/patient_teacher.py``): distil an MLP
student on random views with the teacher's targets made one of the four ways of
:mod:`kdlab.distill.views` (Beyer et al. 2022).

- :func:`transfer_setup`: the MNIST-family splits, the course's cached CNN teacher, its test
  accuracy and the small transfer set, the same for the notebook and each benchmark seed;
- :func:`distil_with_views`: one distillation on views, KL at T = 1 without labels;
- :func:`distil_and_score`: the same, timed and scored on the test set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from torch import nn

from kdlab import runtime
from kdlab.data import ImageSet
from kdlab.distill import Distiller, History
from kdlab.distill.views import TeachingBatches
from kdlab.metrics import evaluate
from kdlab.models import StudentMLP
from kdlab.recipes.mnist_family import Splits, mnist_family_splits, trained_teacher

__all__ = ["TransferSetup", "transfer_setup", "distil_with_views", "distil_and_score"]


@dataclass(frozen=True)
class TransferSetup:
    """What every run of the track shares: the ``splits``, the frozen ``teacher`` (in eval
    mode) with the cache's ``teacher_info`` and its ``teacher_accuracy`` on the test set (a
    fraction), and ``train``, the transfer set the student is distilled on."""

    splits: Splits
    teacher: nn.Module
    teacher_info: dict
    teacher_accuracy: float
    train: ImageSet


def transfer_setup(
    data: str = "fashion-mnist",
    n_train: int = 2000,
    *,
    fast: bool | None = None,
    seed: int = 0,
    verbose: bool | None = None,
) -> TransferSetup:
    """The splits of ``data`` (:func:`~kdlab.recipes.mnist_family_splits`), the course's
    cached CNN teacher for them and a seeded transfer set of ``n_train`` training images
    (all of them when fewer): with few images, how the targets are made matters most.
    ``verbose`` goes to :func:`~kdlab.recipes.trained_teacher` (None:
    :func:`kdlab.runtime.progress_default`)."""
    splits = mnist_family_splits(data, fast=fast, seed=seed)
    teacher, info = trained_teacher(splits, seed=seed, verbose=verbose)
    teacher.eval()
    accuracy = evaluate(teacher, splits.test.loader(1000))["accuracy"]
    return TransferSetup(splits, teacher, info, accuracy, splits.train.subset(n_train, seed=seed))


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
    progress: bool | None = None,
) -> tuple[nn.Module, History]:
    """Distil a :class:`~kdlab.models.StudentMLP` (or ``student``) from ``teacher`` on
    random views of ``train`` with the targets of ``mode``: KL at T = 1 only (no labels,
    as in the paper), Adam with a cosine decay over ``epochs``; validation every epoch.
    ``progress`` as :meth:`kdlab.distill.Distiller.fit` takes it (None:
    :func:`kdlab.runtime.progress_default`). Training runs on the Distiller's device (the
    teacher labels each batch there); student and teacher then go back where they were (a
    new student: the host)."""
    runtime.seed_everything(seed)
    student = student or StudentMLP()
    teacher.eval()
    batches = TeachingBatches(teacher, train.x, train.y, mode, batch_size=batch_size, seed=seed)
    with runtime.devices_restored(student, teacher):
        distiller = Distiller(
            student, teacher, temperature=1.0, alpha=0.0, lr=lr, lr_schedule="cosine", seed=seed
        )
        history = distiller.fit(batches, epochs, val.loader(1000), progress=progress)
    return student.eval(), history


def distil_and_score(
    setup: TransferSetup, mode: str, epochs: int, *, seed: int = 0, **options: Any
) -> dict[str, Any]:
    """:func:`distil_with_views` on ``setup`` (``options`` go to it), timed and scored:
    ``student``, ``history``, ``test_accuracy`` and ``val_accuracy`` (per epoch) in %,
    and the training ``seconds``."""
    start = time.perf_counter()
    student, history = distil_with_views(
        setup.teacher, setup.train, setup.splits.val, mode, epochs, seed=seed, **options
    )
    seconds = time.perf_counter() - start
    return {
        "student": student,
        "history": history,
        "test_accuracy": 100 * evaluate(student, setup.splits.test.loader(1000))["accuracy"],
        "val_accuracy": [100 * a for a in history["val_accuracy"]],
        "seconds": seconds,
    }
