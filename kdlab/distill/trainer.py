"""A small distillation trainer.

``Distiller(student, teacher)`` trains the student on
``alpha * CE(student, y) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``
(see :func:`kdlab.losses.distillation_loss`). The teacher is frozen: put in eval mode,
``requires_grad`` switched off, and run under ``torch.no_grad``. With ``teacher=None``
the same loop trains on the labels alone, which is how the course trains teachers and
the from-scratch baselines, so every comparison uses one training loop.

Batches are ``(x, y)``, or ``(x, y, teacher_logits)`` when the teacher's outputs were
computed beforehand. That is exact only when every epoch shows the same inputs (no
augmentation, teacher in eval mode); with augmentation it is the "precomputed teacher"
trap of Beyer et al. (2022), covered in notebook 08.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from kdlab import runtime
from kdlab.losses import soft_target_loss
from kdlab.metrics import evaluate

__all__ = ["Distiller", "History", "freeze"]


@dataclass
class History:
    """One dict per epoch: ``loss``, ``hard_loss``, ``soft_loss``, ``train_accuracy``,
    ``val_loss``, ``val_accuracy`` (when validation data is given) and ``seconds``."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    def __len__(self) -> int:
        return len(self.epochs)

    @property
    def last(self) -> dict[str, float]:
        return self.epochs[-1] if self.epochs else {}

    def to_dict(self) -> dict[str, list[dict[str, float]]]:
        return {"epochs": self.epochs}


def freeze(model: nn.Module) -> nn.Module:
    """Eval mode and no gradients: a teacher's dropout and batch-norm statistics stay fixed."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class Distiller:
    """Train ``student`` from labels and, when given, a frozen ``teacher``'s soft targets.

    ``alpha`` weighs the hard (label) loss and ``1 - alpha`` the soft loss at
    ``temperature``. Without a teacher, ``alpha`` is ignored and the loss is plain
    cross-entropy. The optimiser defaults to Adam with ``lr`` and ``weight_decay``;
    ``lr_schedule="cosine"`` decays the learning rate to zero over the whole run of
    :meth:`fit` (Loshchilov and Hutter 2017), ``"constant"`` keeps it.
    ``callbacks`` are called as ``callback(epoch, record)`` after every epoch.

    Subclasses change what is distilled by overriding :meth:`loss_parts`.
    """

    def __init__(
        self,
        student: nn.Module,
        teacher: nn.Module | None = None,
        *,
        temperature: float = 4.0,
        alpha: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        optimizer: torch.optim.Optimizer | None = None,
        lr_schedule: str = "constant",
        device: str | torch.device | None = None,
        seed: int = 0,
    ):
        if teacher is student:
            raise ValueError("teacher and student are the same module; pass two models")
        if not any(p.requires_grad for p in student.parameters()):
            raise ValueError(
                "the student has no trainable parameters (requires_grad is False everywhere: "
                "was it frozen as a teacher before?); call student.requires_grad_(True) first"
            )
        if not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1] (weight of the hard loss), got {alpha}")
        if lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.device = runtime.pick_device(device)
        self.seed = seed
        runtime.seed_everything(seed)
        self.student = student.to(self.device)
        self.teacher = freeze(teacher.to(self.device)) if teacher is not None else None
        self.temperature = float(temperature)
        self.alpha = float(alpha) if teacher is not None else 1.0
        self.optimizer = optimizer or torch.optim.Adam(
            self.student.parameters(), lr=lr, weight_decay=weight_decay
        )
        self.history = History()

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Student logits and the named loss terms for one batch; ``"loss"`` is their mix."""
        logits = self.student(x)
        hard = F.cross_entropy(logits, y)
        if self.teacher is None:
            return logits, {"loss": hard, "hard_loss": hard}
        if teacher_logits is None:
            with torch.no_grad():
                teacher_logits = self.teacher(x)
        soft = soft_target_loss(logits, teacher_logits, self.temperature)
        loss = self.alpha * hard + (1 - self.alpha) * soft
        return logits, {"loss": loss, "hard_loss": hard, "soft_loss": soft}

    def train_step(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> dict[str, float]:
        """One optimiser step on one batch; returns the batch's loss terms and accuracy."""
        self.student.train()
        if self.teacher is not None and self.teacher.training:
            raise RuntimeError("the teacher was switched to train mode; call freeze(teacher)")
        if teacher_logits is not None:
            if self.teacher is None:
                raise ValueError(
                    "batches carry teacher logits but the Distiller was built without a "
                    "teacher; pass teacher=... so alpha and temperature apply"
                )
            teacher_logits = teacher_logits.to(self.device)
        x, y = x.to(self.device), y.to(self.device)
        logits, parts = self.loss_parts(x, y, teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        parts["loss"].backward()
        self.optimizer.step()
        out = {k: float(v.detach()) for k, v in parts.items()}
        out["train_accuracy"] = float((logits.argmax(1) == y).float().mean())
        return out

    def validate(self, val: Iterable[tuple[Tensor, Tensor]]) -> dict[str, float]:
        """The student's scores on ``val`` after an epoch (``val_loss``, ``val_accuracy``);
        subclasses for other tasks override this."""
        scores = evaluate(self.student, val, self.device)
        return {"val_loss": scores["loss"], "val_accuracy": scores["accuracy"]}

    def fit(
        self,
        train: Iterable[tuple[Tensor, Tensor]],
        epochs: int,
        val: Iterable[tuple[Tensor, Tensor]] | None = None,
        *,
        progress: bool = True,
        callbacks: Iterable[Callable[[int, dict[str, float]], None]] = (),
    ) -> History:
        """Train for ``epochs`` passes over ``train``; evaluate on ``val`` after each one."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        scheduler = None
        if self.lr_schedule == "cosine":
            steps = epochs * len(train)  # type: ignore[arg-type]
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=steps)
        for epoch in range(epochs):
            start = time.perf_counter()
            sums: dict[str, float] = {}
            count = 0
            bar = tqdm(train, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=not progress)
            for batch in bar:
                if len(batch) not in (2, 3):
                    raise ValueError(
                        f"batches must be (x, y) or (x, y, teacher_logits), got {len(batch)} items"
                    )
                step = self.train_step(*batch)
                if scheduler is not None:
                    scheduler.step()
                y = batch[1]
                n = len(y)
                for k, v in step.items():
                    sums[k] = sums.get(k, 0.0) + v * n
                count += n
                bar.set_postfix(loss=f"{step['loss']:.3f}")
            if count == 0:
                raise ValueError("the training data yielded no batches")
            record = {k: v / count for k, v in sums.items()}
            if val is not None:
                record.update(self.validate(val))
            record["seconds"] = time.perf_counter() - start
            self.history.epochs.append(record)
            for callback in callbacks:
                callback(epoch, record)
        return self.history
