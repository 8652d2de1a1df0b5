"""Training students with the beyond-logits losses of notebook 07, on one shared loop.

- :class:`StudentCNN`: a small CNN student whose stages have the same spatial sizes as
  :class:`kdlab.models.TeacherCNN`'s, so hints and attention maps can be compared.
- :class:`FeatureDistiller`: cross-entropy plus a weighted term on activations captured
  by name (FitNets, attention, RKD, SP, ...).
- :class:`DecoupledDistiller`: cross-entropy plus decoupled KD.
- :class:`MutualDistiller` and :class:`NativeEnsembleDistiller`: the online methods
  (DML, ONE), which need no pre-trained teacher.

All are :class:`kdlab.distill.Distiller` subclasses: same optimiser, schedule, history and
``fit``; ``distiller.student`` is the model to evaluate. :func:`run_method` trains one
and reports its test accuracy, so a comparison differs only in the method.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.data import ImageSet, batches
from kdlab.distill import Distiller
from kdlab.hooks import capture_activations
from kdlab.losses import (
    OnTheFlyNativeEnsemble,
    decoupled_kd_loss,
    mutual_learning_losses,
    one_loss,
)
from kdlab.metrics import evaluate

__all__ = [
    "StudentCNN",
    "FeatureDistiller",
    "DecoupledDistiller",
    "MutualDistiller",
    "NativeEnsembleDistiller",
    "run_method",
]


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class StudentCNN(nn.Module):
    """Two ``conv-BN-ReLU-maxpool`` stages (``width``, ``2 * width`` channels; 14x14 then 7x7
    maps, like ``TeacherCNN``) and a linear head. ``width=8``: about 9k parameters, a
    hundredth of the teacher. ``features.0``/``features.1`` name the stages for hooks."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive int, got {width!r}")
        self.width = width
        self.features = nn.Sequential(_stage(1, width), _stage(width, 2 * width))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


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


class MutualDistiller(Distiller):
    """Deep mutual learning of ``peers`` (no teacher): one Adam step per batch updates every
    peer with :func:`kdlab.losses.mutual_learning_losses`. ``student`` is peer 0."""

    def __init__(
        self, peers: Sequence[nn.Module], *, temperature: float = 1.0, lr: float = 1e-3, **kwargs
    ):
        peers = list(peers)
        if len(peers) < 2 or len({id(p) for p in peers}) != len(peers):
            raise ValueError(f"pass at least 2 distinct peer models, got {len(peers)}")
        params = [p for peer in peers for p in peer.parameters()]
        optimizer = kwargs.pop("optimizer", None) or torch.optim.Adam(params, lr=lr)
        super().__init__(
            peers[0], None, temperature=temperature, lr=lr, optimizer=optimizer, **kwargs
        )
        self.peers = nn.ModuleList(peers).to(self.device)

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.peers.train()
        logits = [peer(x) for peer in self.peers]
        losses = mutual_learning_losses(logits, y, self.temperature)
        return logits[0], {"loss": losses.sum(), "hard_loss": F.cross_entropy(logits[0], y)}


class NativeEnsembleDistiller(Distiller):
    """ONE: trains a :class:`kdlab.losses.OnTheFlyNativeEnsemble` with
    :func:`kdlab.losses.one_loss` (no teacher); ``student`` is ``trunk -> branches[0]``."""

    def __init__(
        self,
        model: OnTheFlyNativeEnsemble,
        *,
        temperature: float = 3.0,
        lr: float = 1e-3,
        **kwargs,
    ):
        if not isinstance(model, OnTheFlyNativeEnsemble):
            raise ValueError(f"model must be an OnTheFlyNativeEnsemble, got {type(model).__name__}")
        optimizer = kwargs.pop("optimizer", None) or torch.optim.Adam(model.parameters(), lr=lr)
        super().__init__(
            model.branch(0), None, temperature=temperature, lr=lr, optimizer=optimizer, **kwargs
        )
        self.model = model.to(self.device)

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.model.train()
        branch_logits, ensemble = self.model(x)
        loss = one_loss(branch_logits, ensemble, y, self.temperature)
        return branch_logits[0], {"loss": loss, "hard_loss": F.cross_entropy(branch_logits[0], y)}


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
