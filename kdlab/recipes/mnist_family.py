"""The course's standard set-ups, shared by notebooks, assignments and benchmarks.

One place defines the MNIST-family splits and the teacher recipe, so notebook 02 and
assignment a1 distil from the same cached teacher, and fast mode shrinks all of them
the same way.

Devices, for every recipe: training runs on :func:`kdlab.runtime.pick_device` (a GPU when
there is one, or ``KDLAB_DEVICE``), and the models come back where the caller had them (a
new or cached model: the host), so the cell after a recipe reads the same on any machine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from kdlab import runtime
from kdlab.cache import cached_model
from kdlab.data import ImageSet, batches, load_mnist_family
from kdlab.distill import Distiller, History
from kdlab.metrics import evaluate
from kdlab.models import StudentMLP, TeacherCNN, logits_of

__all__ = [
    "Splits",
    "mnist_family_splits",
    "trained_teacher",
    "train_student",
    "StudentRecipe",
    "STUDENT_RECIPE",
]


@dataclass(frozen=True)
class StudentRecipe:
    """How the MLP student learns: ``alpha * CE + (1 - alpha) * T^2 * KL`` at ``temperature``
    (plain cross-entropy without a teacher), Adam at ``lr`` with ``lr_schedule``, ``epochs``
    passes in batches of ``batch_size``. ``recipe.replace(epochs=3)`` is a variant; a
    misspelt setting is refused, naming the known ones."""

    epochs: int = 20
    temperature: float = 2.0
    alpha: float = 0.5
    lr: float = 1e-3
    batch_size: int = 128
    lr_schedule: str = "cosine"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1] (weight of the hard loss), got {self.alpha}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )

    def replace(self, **changes: float | int | str) -> StudentRecipe:
        """The same recipe with ``changes``; unknown settings raise a ValueError."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown recipe settings {unknown}; known: {known}")
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, float | int | str]:
        """The settings as a plain dict (for cache keys and saved results)."""
        return dataclasses.asdict(self)

    def distiller(
        self, student: nn.Module, teacher: nn.Module | None = None, *, seed: int = 0
    ) -> Distiller:
        """A :class:`~kdlab.distill.Distiller` for ``student`` with this recipe's loss and
        optimiser (the epochs and batch size are the caller's to use)."""
        return Distiller(
            student,
            teacher,
            temperature=self.temperature,
            alpha=self.alpha,
            lr=self.lr,
            lr_schedule=self.lr_schedule,
            seed=seed,
        )

    def loader(self, *tensors: Tensor, seed: int = 0):
        """Shuffled batches of ``tensors`` (inputs, labels and, when distilling, the teacher's
        logits computed beforehand) of this recipe's batch size."""
        return batches(*tensors, batch_size=self.batch_size, shuffle=True, seed=seed)


# The soft-targets recipe for the MLP student, shared by notebooks 02-04 and 09 and the
# benchmarks. Chosen on the validation set: with this CNN teacher, T = 1 or 2 with
# alpha = 0.5 beat T = 4 with alpha = 0.1 (Hinton et al.: lower temperatures suit much
# smaller students).
STUDENT_RECIPE = StudentRecipe()

VAL_SIZE = 5000
FAST_SIZES = (3000, 500, 1000)  # train, validation, test in fast mode


@dataclass
class Splits:
    """Train, validation (held out from the official training set) and test sets;
    ``fast`` says they are the small fast-mode subsets."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    fast: bool = False

    @property
    def name(self) -> str:
        return self.train.name

    @property
    def synthetic(self) -> bool:
        return self.train.synthetic

    def describe(self) -> str:
        kind = "SYNTHETIC stand-in data" if self.synthetic else self.train.source
        return (
            f"{self.name}: {len(self.train)} train / {len(self.val)} validation / "
            f"{len(self.test)} test examples ({kind})"
        )


def mnist_family_splits(
    name: str = "fashion-mnist", fast: bool | None = None, seed: int = 0
) -> Splits:
    """Official training set split into train and a 5,000-example validation set; the
    official test set. Fast mode keeps small random subsets, and falls back to
    :func:`kdlab.data.synthetic_digits` (saying so) when the data is not on this machine.
    """
    fast = runtime.fast_mode() if fast is None else fast
    full = load_mnist_family(
        name,
        "train",
        synthetic_fallback=fast,
        limit=sum(FAST_SIZES[:2]) if fast else None,
        seed=seed,
    )
    test = load_mnist_family(
        name, "test", synthetic_fallback=fast, limit=FAST_SIZES[2] if fast else None, seed=seed
    )
    n_val = FAST_SIZES[1] if fast else VAL_SIZE
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:n_val], order[n_val:]
    return Splits(full.take(train_idx), full.take(val_idx), test, fast)


def trained_teacher(
    splits: Splits,
    *,
    epochs: int | None = None,
    seed: int = 0,
    width: int = 32,
    lr: float = 1e-3,
    batch_size: int = 128,
    verbose: bool | None = None,
) -> tuple[TeacherCNN, dict]:
    """The course's CNN teacher for ``splits``, trained once and then loaded from the cache.

    Default schedule: 4 epochs of Adam with a cosine learning-rate decay (2 in fast mode),
    about 2-3 minutes on a 2-core CPU. The info dict says whether it was trained or
    loaded, and holds its validation and test accuracy. ``verbose``: say what the cache
    did and show the training's progress; None follows
    :func:`kdlab.runtime.progress_default` (on in full mode, off in fast mode).
    """
    verbose = runtime.progress_default(verbose)
    epochs = epochs or (2 if splits.fast else 4)
    config = {
        "data": splits.name,
        "source_synthetic": splits.synthetic,
        "sizes": [len(splits.train), len(splits.val), len(splits.test)],
        "epochs": epochs,
        "seed": seed,
        "width": width,
        "lr": lr,
        "batch_size": batch_size,
        "lr_schedule": "cosine",
    }

    def train(model: TeacherCNN) -> dict:
        distiller = Distiller(model, lr=lr, lr_schedule="cosine", seed=seed)
        history = distiller.fit(
            splits.train.loader(batch_size, shuffle=True, seed=seed),
            epochs,
            splits.val.loader(1000),
            progress=verbose,
        )
        test = evaluate(model, splits.test.loader(1000))
        return {
            "history": history.epochs,
            "test_accuracy": test["accuracy"],
            "test_errors": test["errors"],
        }

    runtime.seed_everything(seed)
    return cached_model("teacher-cnn", config, lambda: TeacherCNN(width), train, verbose=verbose)


def train_student(
    splits: Splits,
    teacher: torch.nn.Module | None = None,
    *,
    student: torch.nn.Module | None = None,
    train: ImageSet | None = None,
    seed: int = 0,
    progress: bool | None = None,
    recipe: StudentRecipe = STUDENT_RECIPE,
    **overrides: float | str,
) -> tuple[torch.nn.Module, History]:
    """Train an MLP student on ``train`` (default ``splits.train``), from the labels alone
    or distilled from ``teacher`` with ``recipe`` (``overrides`` change it);
    ``progress`` as :meth:`kdlab.distill.Distiller.fit` takes it (None:
    :func:`kdlab.runtime.progress_default`).

    The teacher's logits are computed once: exact here, because the inputs do not change
    between epochs (no augmentation) and the teacher is in eval mode. Training runs on the
    Distiller's device; student and teacher are then moved back where they were (a new
    student: the host).
    """
    recipe = recipe.replace(**overrides)
    train = splits.train if train is None else train
    runtime.seed_everything(seed)
    student = student or StudentMLP()
    with runtime.devices_restored(student, teacher):
        distiller = recipe.distiller(student, teacher, seed=seed)
        logits = [logits_of(teacher, train.x)] if teacher is not None else []
        loader = recipe.loader(train.x, train.y, *logits, seed=seed)
        history = distiller.fit(loader, recipe.epochs, splits.val.loader(1000), progress=progress)
    return student.eval(), history
