"""The one training loop of kdlab: :class:`Distiller`.

``Distiller(student, teacher)`` trains the student on
``alpha * CE(student, y) + (1 - alpha) * T^2 * KL(teacher_T || student_T)``
(see :func:`kdlab.losses.distillation_loss`; Hinton et al. 2015). The teacher is frozen:
put in eval mode, ``requires_grad`` switched off, and run under ``torch.no_grad``. With
``teacher=None`` the same loop trains on the labels alone, which is how the course trains
teachers and the from-scratch baselines, so every comparison uses one training loop.

Batches are ``(x, y)``, or ``(x, y, teacher_logits)`` when the teacher's outputs were
computed beforehand. That is exact only when every epoch shows the same inputs (no
augmentation, teacher in eval mode); with augmentation it is the "precomputed teacher"
trap of Beyer et al. (2022), covered in notebook 08.

Other tasks reuse the loop by overriding small hooks, each with a default for ``(x, y)``
batches: :meth:`Distiller.prepare_batch` (check a batch and move it to the device, or skip
it), :meth:`Distiller.loss_parts` (the named loss terms), :meth:`Distiller.examples` and
:meth:`Distiller.train_accuracy` (how a batch is counted), :meth:`Distiller.validate`; and
the class attribute ``loss_key``, the term that is minimised. :mod:`kdlab.distill.bert`
trains BERTs this way.

Under ``torchrun`` the same loop trains with several processes (:mod:`kdlab.distill.parallel`):
the trained modules run in ``DistributedDataParallel``, each rank trains on its share of every
global batch, the epoch's record averages over every rank's examples, rank 0 validates and
alone shows the progress bar. With one process nothing of this runs.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab import runtime
from kdlab.distill import parallel
from kdlab.losses import soft_target_loss
from kdlab.metrics import evaluate

__all__ = ["Distiller", "History", "freeze"]

SCHEDULES = ("constant", "cosine", "linear")


@dataclass
class History:
    """One dict per epoch: the trainer's loss terms (for :class:`Distiller`: ``loss``,
    ``hard_loss``, ``soft_loss``), ``train_accuracy``, the validation scores when
    validation data is given (``val_loss``, ``val_accuracy``) and ``seconds``."""

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


def linear_warmup_factor(steps: int, warmup: float) -> Callable[[int], float]:
    """BERT's learning-rate factor at optimiser step ``t`` (Devlin et al. 2019): linear
    warm-up from ``1 / w`` to 1 over the first ``w = max(1, int(warmup * steps))`` steps,
    then linear decay to 0 at ``steps``: ``min((t + 1) / w, (steps - t) / (steps - w))``."""
    warm = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        return min((step + 1) / warm, max(0.0, (steps - step) / max(1, steps - warm)))

    return factor


class Distiller:
    """Train ``student`` from labels and, when given, a frozen ``teacher``'s soft targets.

    ``alpha`` weighs the hard (label) loss and ``1 - alpha`` the soft loss at
    ``temperature``. Without a teacher, ``alpha`` is ignored and the loss is plain
    cross-entropy. The optimiser defaults to Adam with ``lr`` and ``weight_decay``.
    The learning rate changes once per optimiser step: ``lr_schedule="constant"`` keeps it,
    ``"cosine"`` decays it to zero over the whole run of :meth:`fit` (Loshchilov and Hutter
    2017), ``"linear"`` warms it up over the first ``warmup`` share of the steps, then
    decays it linearly to zero (BERT's schedule, :func:`linear_warmup_factor`).
    ``callbacks`` are called as ``callback(epoch, record)`` after every epoch.

    ``distributed``: None trains with ``DistributedDataParallel`` when a process group of
    more than one process is running (``torchrun`` with :func:`kdlab.distill.parallel.init`
    called); True first joins the group ``torchrun`` set up (an error without it); False
    trains this process alone. An unnumbered CUDA ``device`` is then ``cuda:LOCAL_RANK``.
    A model trained with N processes and the same global batches is the one a single process
    trains, up to float rounding, when it has no batch norm and no dropout (those use each
    rank's part of the batch, and each rank's random stream) and its loss is a mean over
    examples: a mean over a count that differs between the parts (real tokens in
    DistilBERT's cosine loss, masked tokens in MLM) is taken per rank, as DDP does.

    Subclasses change what is trained by overriding the hooks :meth:`prepare_batch`,
    :meth:`loss_parts`, :meth:`examples`, :meth:`train_accuracy` and :meth:`validate`,
    and ``loss_key``; the loop, history, progress bar, device and schedule are shared.
    """

    loss_key = "loss"  # the loss part that is minimised (and shown in the progress bar)

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
        warmup: float = 0.1,
        device: str | torch.device | None = None,
        seed: int = 0,
        distributed: bool | None = None,
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
        if lr_schedule not in SCHEDULES:
            raise ValueError(
                f"lr_schedule must be 'constant', 'cosine' or 'linear', got {lr_schedule!r}"
            )
        if not 0 <= warmup < 1:
            raise ValueError(f"warmup must be in [0, 1) (a share of the steps), got {warmup}")
        self.lr_schedule, self.warmup = lr_schedule, float(warmup)
        if distributed and not parallel.init() and not parallel.launched():
            raise RuntimeError(
                "distributed=True needs the processes torchrun starts (RANK, WORLD_SIZE, ... "
                "are not set); run under torchrun --nproc-per-node N, or pass distributed=None"
            )
        self.distributed = parallel.enabled() and distributed is not False
        self._ddp: nn.Module | None = None  # the trained modules in DistributedDataParallel
        self.device = runtime.pick_device(device)
        if self.distributed:
            self.device = parallel.local_device(self.device)
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

    # -- hooks: what one batch is and how it is scored -------------------------------------

    def to_device(self, batch: tuple[Any, ...]) -> tuple[Any, ...]:
        """``batch`` with every tensor moved to :attr:`device` (other items as they are)."""
        return tuple(t.to(self.device) if isinstance(t, Tensor) else t for t in batch)

    def prepare_batch(self, batch: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """A batch of the training data as :meth:`loss_parts` takes it, on the device; None
        skips it (no step, not counted). Here: ``(x, y)`` or ``(x, y, teacher_logits)``."""
        if len(batch) not in (2, 3):
            raise ValueError(
                f"batches must be (x, y) or (x, y, teacher_logits), got {len(batch)} items"
            )
        if len(batch) == 3 and batch[2] is not None and self.teacher is None:
            raise ValueError(
                "batches carry teacher logits but the Distiller was built without a "
                "teacher; pass teacher=... so alpha and temperature apply"
            )
        return self.to_device(batch)

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

    def examples(self, batch: tuple[Any, ...]) -> int:
        """How many examples ``batch`` (as the data yield it) holds: the weight of its means
        in the epoch's record. Here the length of the labels, its second item."""
        return len(batch[1])

    def train_accuracy(self, output: Any, batch: tuple[Any, ...]) -> float | None:
        """The share of the batch the student got right, from :meth:`loss_parts`' output and
        the prepared batch; None records no ``train_accuracy``. Here: argmax vs ``y``."""
        return float((output.argmax(1) == batch[1]).float().mean())

    def validate(self, val: Iterable[Any]) -> dict[str, float]:
        """The student's scores on ``val`` after an epoch (``val_loss``, ``val_accuracy``);
        subclasses for other tasks override this."""
        scores = evaluate(self.student, val, self.device)
        return {"val_loss": scores["loss"], "val_accuracy": scores["accuracy"]}

    def trained_modules(self) -> list[nn.Module]:
        """The modules whose parameters the optimiser updates, which must stay in step across
        processes: the student and every other module of the trainer (not the teacher) that
        holds one of them, such as a feature-distillation regressor or the peers of mutual
        learning. Used only when training with several processes."""
        updated = {id(p) for group in self.optimizer.param_groups for p in group["params"]}
        modules = [self.student]
        for value in vars(self).values():
            if (
                isinstance(value, nn.Module)
                and value is not self.student
                and value is not self.teacher
                and any(id(p) in updated for p in value.parameters())
            ):
                modules.append(value)
        held = {id(p) for module in modules for p in module.parameters()}
        if updated - held:
            raise ValueError(
                f"the optimiser updates {len(updated - held)} parameter(s) of no module the "
                f"{type(self).__name__} holds; override trained_modules() to name them"
            )
        return modules

    # -- the loop ----------------------------------------------------------------------------

    def _loss_parts(self, prepared: tuple[Any, ...]) -> tuple[Any, dict[str, Tensor]]:
        """:meth:`loss_parts`, through DistributedDataParallel when training with several
        processes (so the backward pass averages the gradients over the ranks)."""
        if not self.distributed:
            return self.loss_parts(*prepared)
        if self._ddp is None:
            self._ddp = parallel.wrap(self.trained_modules(), self.device, self.seed)
        return self._ddp(self.loss_parts, *prepared)

    def train_step(self, *batch: Any) -> dict[str, float] | None:
        """One optimiser step on one batch (``x, y[, teacher_logits]`` here); returns the
        batch's loss terms and training accuracy (means), or None when it was skipped."""
        self.student.train()
        if self.teacher is not None and self.teacher.training:
            raise RuntimeError("the teacher was switched to train mode; call freeze(teacher)")
        prepared = self.prepare_batch(batch)
        # With several processes, a batch skipped on one rank is skipped on all: every rank
        # must take part in each step's gradient averaging.
        if self.distributed and parallel.any_rank(prepared is None):
            return None
        if prepared is None:
            return None
        output, parts = self._loss_parts(prepared)
        self.optimizer.zero_grad(set_to_none=True)
        parts[self.loss_key].backward()
        self.optimizer.step()
        out = {k: float(v.detach()) for k, v in parts.items()}
        accuracy = self.train_accuracy(output, prepared)
        if accuracy is not None:
            out["train_accuracy"] = accuracy
        return out

    def _scheduler(
        self, train: Iterable[Any], epochs: int
    ) -> torch.optim.lr_scheduler.LRScheduler | None:
        if self.lr_schedule == "constant":
            return None
        try:
            steps = epochs * len(train)  # type: ignore[arg-type]
        except TypeError:
            raise ValueError(
                f"lr_schedule={self.lr_schedule!r} needs the number of batches before training; "
                "pass training data with len() (a DataLoader, a list, LengthBatches)"
            ) from None
        if self.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=steps)
        factor = linear_warmup_factor(steps, self.warmup)
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    def fit(
        self,
        train: Iterable[Any],
        epochs: int,
        val: Iterable[Any] | None = None,
        *,
        progress: bool | None = None,
        callbacks: Iterable[Callable[[int, dict[str, float]], None]] = (),
    ) -> History:
        """Train for ``epochs`` passes over ``train``; evaluate on ``val`` after each one.

        An epoch's record holds each loss term and the training accuracy averaged over the
        examples (batch means weighed by :meth:`examples`), the scores of :meth:`validate`
        and ``seconds``, the epoch's wall time with its validation.

        ``progress``: one bar over every step of the run, with the epoch, the loss and the
        time left; None follows :func:`kdlab.runtime.progress_default` (on in full mode, off
        in fast mode or with ``KDLAB_PROGRESS=0``). The bar goes when the run ends.

        With several processes, ``train`` holds the global batches: each rank trains on its
        share of each (:func:`kdlab.distill.parallel.shard`); the record's means are over
        every rank's examples, the validation runs on rank 0, the bar shows on rank 0 only.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
        if self.distributed:
            train = parallel.shard(train)
            progress = progress if parallel.is_main() else False
        scheduler = self._scheduler(train, epochs)
        try:
            total = epochs * len(train)  # type: ignore[arg-type]
        except TypeError:  # data without len(): the bar counts steps without a total
            total = None
        bar = runtime.progress_bar(
            progress=progress, total=total, desc=f"epoch 1/{epochs}", unit="step", leave=False
        )
        try:
            for epoch in range(epochs):
                bar.set_description(f"epoch {epoch + 1}/{epochs}", refresh=False)
                if self.distributed:
                    parallel.set_epoch(train, epoch)
                self._fit_epoch(train, val, scheduler, bar)
                for callback in callbacks:
                    callback(epoch, self.history.last)
        finally:
            bar.close()
        return self.history

    def _fit_epoch(self, train: Iterable[Any], val: Iterable[Any] | None, scheduler, bar) -> None:
        """One pass over ``train`` (and the validation after it), its record appended to
        the history; ``bar`` advances one step per batch."""
        start = time.perf_counter()
        sums: dict[str, float] = {}
        count = 0
        for batch in train:
            step = self.train_step(*batch)
            bar.update()
            if step is None:  # prepare_batch skipped it: no step, not counted
                continue
            if scheduler is not None:
                scheduler.step()
            n = self.examples(batch)
            for k, v in step.items():
                sums[k] = sums.get(k, 0.0) + v * n
            count += n
            bar.set_postfix({self.loss_key: f"{step[self.loss_key]:.3f}"}, refresh=False)
        if self.distributed:  # the means over every rank's examples
            sums, count = parallel.reduce_sums(sums, count)
        if count == 0:
            raise ValueError("the training data yielded no batches")
        record = {k: v / count for k, v in sums.items()}
        if val is not None and self.distributed:  # rank 0 validates, the others get its scores
            record.update(parallel.broadcast(self.validate(val) if parallel.is_main() else None))
        elif val is not None:
            record.update(self.validate(val))
        record["seconds"] = time.perf_counter() - start
        self.history.epochs.append(record)
