"""The beyond-logits track (notebook 07 and ``benchmarks/methods.py``): one way to train and
score any distiller, so that a comparison differs only in the method."""

from __future__ import annotations

import time
from collections.abc import Callable

from torch import Tensor

from kdlab.data import ImageSet, batches
from kdlab.distill import Distiller
from kdlab.metrics import evaluate

__all__ = ["run_method"]


def run_method(
    make: Callable[[int], Distiller],
    train: ImageSet,
    test: ImageSet,
    *,
    epochs: int,
    seed: int,
    teacher_outputs: Tensor | None = None,
    batch_size: int = 128,
) -> dict[str, float]:
    """Build a distiller with ``make(seed)``, train it ``epochs`` times over ``train``
    (shuffled with ``seed``; ``teacher_outputs``, one row per training example, ride along
    as each batch's third item), and return the student's test accuracy and the mean
    training seconds per epoch."""
    distiller = make(seed)
    tensors = [train.x, train.y] + ([] if teacher_outputs is None else [teacher_outputs])
    loader = batches(*tensors, batch_size=batch_size, shuffle=True, seed=seed)
    start = time.perf_counter()
    distiller.fit(loader, epochs, progress=False)
    seconds = (time.perf_counter() - start) / epochs
    scores = evaluate(distiller.student, test.loader(1000), distiller.device)
    return {"accuracy": scores["accuracy"], "seconds_per_epoch": seconds}

