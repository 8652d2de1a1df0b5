"""The segmentation track (notebook 05 and ``benchmarks/segmentation.py``): the aerial data
as both read it, the U-Net teacher's and the slim student's recipe, the cached teacher and
one way to train a student, so that the notebook's run and each of the benchmark's seeds
differ only in the seed.

- :class:`SegmentationRecipe` holds every setting; :func:`segmentation_recipe` gives the
  standard one (or the tiny fast-mode one) with some settings changed;
- :func:`aerial_splits` and :func:`training_patches`: the patches at the recipe's scale and
  size, split by tile, and the seeded subset the models train on;
- :func:`trained_teacher`: the U-Net teacher, trained once and then loaded from the cache;
- :func:`train_student`: the :class:`~kdlab.models.SlimUNet` student from the labels alone
  or distilled pixel by pixel (Liu et al. 2019), through the same loop, on the patches as
  they are or under a random symmetry of the square every epoch;
- :func:`symmetric_logits`: a model's logits averaged over the 8 symmetries of the square,
  the teacher's targets for students trained on those views.

Every model's cross-entropy weighs classes by median frequency over the training patches
(Eigen and Fergus 2015) unless the recipe says ``class_weights=None``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kdlab import runtime
from kdlab.cache import cached_model
from kdlab.data import AerialPatches, AerialSplits, batches, load_aerial
from kdlab.data.aerial import NUM_CLASSES, augment
from kdlab.distill import History, SegmentationDistiller, median_frequency_weights
from kdlab.models import SlimUNet, UNet, logits_of

__all__ = [
    "SegmentationRecipe",
    "segmentation_recipe",
    "aerial_splits",
    "training_patches",
    "trained_teacher",
    "train_student",
    "symmetric_logits",
    "teacher_targets",
]

DEPTH = 4  # U-Net levels of teacher and student: patches must be a multiple of 2**DEPTH
CLASS_WEIGHTS = ("median frequency", None)


@dataclass(frozen=True)
class SegmentationRecipe:
    """The settings of the segmentation track; the defaults are the full-mode standard.

    Data: images read at ``scale`` of their resolution, cut into ``patch`` x ``patch``
    patches, ``train_patches`` of them drawn (seeded) for training; ``fast`` keeps one
    image per tile (a smoke run). Teacher: ``UNet(base=teacher_base)``, ``epochs`` of Adam
    at ``lr``, on augmented patches. Students: ``SlimUNet(base=student_base)``,
    ``student_epochs`` at ``student_lr`` (a tiny network wants a larger step) in batches
    of ``student_batch_size``, on augmented patches when ``student_augment``; the distilled
    one mixes ``alpha * CE + (1 - alpha) * pixel KD`` at ``temperature``. All: ``batch_size``
    (the teacher's), ``lr_schedule``, ``class_weights`` ("median frequency" or None for the
    plain cross-entropy). ``latency_size``: the side of the inputs on which latency is
    measured.
    """

    fast: bool = False
    scale: float = 0.25
    patch: int = 64
    train_patches: int = 1332
    teacher_base: int = 16
    student_base: int = 4
    epochs: int = 6
    student_epochs: int = 12
    batch_size: int = 16
    student_batch_size: int = 32
    student_augment: bool = True
    lr: float = 3e-3
    student_lr: float = 1e-2
    lr_schedule: str = "cosine"
    class_weights: str | None = "median frequency"
    temperature: float = 2.0
    alpha: float = 0.5
    latency_size: int = 256

    def __post_init__(self) -> None:
        counts = ("train_patches", "teacher_base", "student_base", "epochs", "student_epochs")
        for name in (*counts, "batch_size", "student_batch_size", "latency_size", "patch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        multiple = 2**DEPTH
        for name in ("patch", "latency_size"):
            if getattr(self, name) % multiple:
                raise ValueError(
                    f"{name} must be a multiple of {multiple} (the U-Nets have {DEPTH} levels), "
                    f"got {getattr(self, name)}"
                )
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale!r}")
        for name in ("lr", "student_lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not isinstance(self.student_augment, bool):
            raise ValueError(f"student_augment must be True or False, got {self.student_augment!r}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise ValueError(
                f"class_weights must be one of {CLASS_WEIGHTS}, got {self.class_weights!r}"
            )

    @property
    def per_tile(self) -> int | None:
        """Images read per tile: one in fast mode, all of them otherwise."""
        return 1 if self.fast else None

    @property
    def kd(self) -> dict[str, float]:
        """The distilled student's extra arguments to :class:`SegmentationDistiller`."""
        return {"temperature": self.temperature, "alpha": self.alpha}

    def weights(self, train: AerialPatches) -> Tensor | None:
        """The cross-entropy's class weights for the patches ``train`` (None: unweighted)."""
        if self.class_weights is None:
            return None
        return median_frequency_weights(train.labels, NUM_CLASSES)

    def settings(self) -> dict[str, Any]:
        """Every setting as plain values (what ``benchmarks/segmentation.py`` saves)."""
        return {
            "scale": self.scale,
            "patch": self.patch,
            "train_patches": self.train_patches,
            "per_tile": self.per_tile,
            "teacher_base": self.teacher_base,
            "student_base": self.student_base,
            "epochs": self.epochs,
            "student_epochs": self.student_epochs,
            "batch_size": self.batch_size,
            "student_batch_size": self.student_batch_size,
            "student_augment": self.student_augment,
            "lr": self.lr,
            "student_lr": self.student_lr,
            "lr_schedule": self.lr_schedule,
            "class_weights": self.class_weights,
            "temperature": self.temperature,
            "alpha": self.alpha,
            "latency_size": self.latency_size,
        }

    def teacher_config(self, splits: AerialSplits, train: AerialPatches, seed: int) -> dict:
        """What determines the teacher, its cache key: the data, the training patches and
        the teacher's recipe (the students' settings are left out, so changing them never
        retrains the teacher)."""
        return {
            "data": splits.name,
            "scale": self.scale,
            "patch": self.patch,
            "tiles": splits.tiles,
            "train_patches": len(train),
            "recipe": {
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "lr": self.lr,
                "lr_schedule": self.lr_schedule,
            },
            "seed": seed,
            "base": self.teacher_base,
            "class_weights": self.class_weights,
            "fast": self.fast,
        }


# Fast mode: one image per tile, a few patches and epochs, latency on small inputs.
_FAST = SegmentationRecipe(
    fast=True,
    train_patches=16,
    epochs=2,
    student_epochs=4,
    batch_size=8,
    student_batch_size=8,
    latency_size=64,
)


def segmentation_recipe(fast: bool | None = None, **changes: Any) -> SegmentationRecipe:
    """The standard recipe (``fast``, default ``kdlab.fast_mode()``: a few patches and
    epochs) with ``changes``, e.g. ``segmentation_recipe(temperature=1.0)``. The students
    train twice the teacher's epochs (their steps are much cheaper): changing ``epochs``
    alone changes ``student_epochs`` with it."""
    fast = runtime.fast_mode() if fast is None else bool(fast)
    if "epochs" in changes and "student_epochs" not in changes:
        changes["student_epochs"] = 2 * changes["epochs"]
    unknown = set(changes) - {f.name for f in dataclasses.fields(SegmentationRecipe)}
    if unknown:
        raise ValueError(f"unknown recipe settings {sorted(unknown)}")
    return dataclasses.replace(_FAST if fast else SegmentationRecipe(), **changes)


def aerial_splits(
    recipe: SegmentationRecipe, folder: str | Path | None = None, *, seed: int = 0
) -> AerialSplits:
    """The aerial patches of ``recipe`` split by tile (Tile 1 validation, Tile 8 test on the
    real data); in fast mode, without the data, synthetic scenes that say so."""
    return load_aerial(
        folder,
        patch_size=recipe.patch,
        scale=recipe.scale,
        per_tile=recipe.per_tile,
        fast=recipe.fast,
        seed=seed,
    )


def training_patches(splits: AerialSplits, recipe: SegmentationRecipe, seed: int) -> AerialPatches:
    """The ``recipe.train_patches`` training patches drawn with ``seed`` (all when fewer)."""
    return splits.train.subset(recipe.train_patches, seed=seed)


def trained_teacher(
    splits: AerialSplits,
    train: AerialPatches,
    val: Iterable[tuple[Tensor, Tensor]],
    recipe: SegmentationRecipe,
    *,
    seed: int = 0,
    verbose: bool | None = None,
) -> tuple[UNet, dict]:
    """The U-Net teacher of ``recipe`` trained on ``train`` (validated on the batches
    ``val`` every epoch), once, then loaded from the cache: :class:`SegmentationDistiller`
    without a teacher (the class-weighted cross-entropy over labelled pixels) on patches
    flipped and rotated at random. Returns the model in eval mode and the cache's info
    (``status``, ``summary`` with the history's ``epochs``, ``train_seconds``). ``verbose``:
    say what the cache did and show the training's progress; None follows
    :func:`kdlab.runtime.progress_default`."""
    verbose = runtime.progress_default(verbose)

    def build() -> UNet:
        runtime.seed_everything(seed)  # the same initial weights whichever code ran before
        return UNet(3, NUM_CLASSES, base=recipe.teacher_base, depth=DEPTH)

    def fit(model: nn.Module) -> dict:
        trainer = SegmentationDistiller(
            model,
            None,
            num_classes=NUM_CLASSES,
            lr=recipe.lr,
            lr_schedule=recipe.lr_schedule,
            seed=seed,
            class_weights=recipe.weights(train),
        )
        data = train.loader(recipe.batch_size, shuffle=True, seed=seed, augment=True)
        return trainer.fit(data, recipe.epochs, val, progress=verbose).to_dict()

    config = recipe.teacher_config(splits, train, seed)
    return cached_model("aerial-unet-teacher", config, build, fit, verbose=verbose)


def train_student(
    train: AerialPatches,
    val: Iterable[tuple[Tensor, Tensor]],
    recipe: SegmentationRecipe,
    *,
    teacher: nn.Module | None = None,
    teacher_logits: Tensor | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[SlimUNet, History]:
    """A :class:`~kdlab.models.SlimUNet` trained on ``train`` with the student recipe: from
    the labels alone, or with ``teacher`` distilled pixel by pixel. Both students start
    from the same weights (``seed``), see the same batches and run the same loop; only the
    loss differs.

    The teacher's logits are computed once (or passed as ``teacher_logits``, one map per
    training patch, :func:`teacher_targets`) and ride along with each batch. Without
    augmentation they are the teacher's plain logits, exact because the frozen teacher is
    in eval mode. With ``recipe.student_augment`` they are :func:`symmetric_logits`, and each
    patch's map turns and flips with the patch: exact too, since the mean over the 8
    symmetries is equivariant. ``progress`` as :meth:`kdlab.distill.Distiller.fit` takes it (None:
    :func:`kdlab.runtime.progress_default`). Training runs on the trainer's device; the
    student comes back on the host and the teacher where it was.
    """
    if teacher is None and teacher_logits is not None:
        raise ValueError("teacher_logits were given without the teacher they came from")
    x, y = train.tensors()
    extra: tuple[Tensor, ...] = ()
    if teacher is not None:
        if teacher_logits is None:
            teacher_logits = teacher_targets(teacher, x, recipe)
        if teacher_logits.shape != (len(x), NUM_CLASSES, *x.shape[2:]):
            raise ValueError(
                f"teacher_logits must hold one ({NUM_CLASSES}, H, W) map per training patch, "
                f"shape {(len(x), NUM_CLASSES, *x.shape[2:])}, got {tuple(teacher_logits.shape)}"
            )
        extra = (teacher_logits,)
    runtime.seed_everything(seed)
    student = SlimUNet(3, NUM_CLASSES, base=recipe.student_base, depth=DEPTH)
    with runtime.devices_restored(student, teacher):
        trainer = SegmentationDistiller(
            student,
            teacher,
            num_classes=NUM_CLASSES,
            lr=recipe.student_lr,
            lr_schedule=recipe.lr_schedule,
            seed=seed,
            class_weights=recipe.weights(train),
            **(recipe.kd if teacher is not None else {}),
        )
        size = recipe.student_batch_size
        if recipe.student_augment:
            data: Iterable = _SymmetricViews(x, y, *extra, batch_size=size, seed=seed)
        else:
            data = batches(x, y, *extra, batch_size=size, shuffle=True, seed=seed)
        history = trainer.fit(data, recipe.student_epochs, val, progress=progress)
    return student.eval(), history


def teacher_targets(teacher: nn.Module, x: Tensor, recipe: SegmentationRecipe) -> Tensor:
    """The teacher's logits for the training images ``x`` that the students distil: its
    :func:`symmetric_logits` when they train on augmented views, its plain logits otherwise."""
    return symmetric_logits(teacher, x) if recipe.student_augment else logits_of(teacher, x, 16)


def symmetric_logits(model: nn.Module, x: Tensor, batch_size: int = 16) -> Tensor:
    """``model``'s logits for ``x`` (N, C, S, S) averaged over the 8 symmetries ``g`` of the
    square, each mapped back: ``(1/8) sum_g g^-1 f(g x)``. The mean is equivariant (the map
    of a turned patch is the turned map), so it stays the exact target for every view of
    :func:`kdlab.data.augment`; it is also test-time augmentation of the model."""
    total = torch.zeros(())
    for k in range(8):
        view = x.flip(-1) if k >= 4 else x
        out = logits_of(model, torch.rot90(view, k % 4, dims=(-2, -1)), batch_size)
        out = torch.rot90(out, -(k % 4), dims=(-2, -1))
        total = total + (out.flip(-1) if k >= 4 else out)
    return total / 8


class _SymmetricViews:
    """Shuffled batches ``(x, y, *maps)`` with each patch under a random symmetry of the
    square (:func:`kdlab.data.augment`), its class map and its other maps (teacher logits)
    under the same one; a new order and new views every epoch, reproducible from ``seed``."""

    def __init__(self, x: Tensor, y: Tensor, *maps: Tensor, batch_size: int, seed: int):
        self.x, self.y, self.maps = x, y, maps
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        order = torch.randperm(len(self.x), generator=generator)
        for idx in order.split(self.batch_size):
            channels = [self.x[idx], *(m[idx] for m in self.maps)]
            stacked, y = augment(torch.cat(channels, 1), self.y[idx], generator)
            views = stacked.split([c.shape[1] for c in channels], 1)
            yield (views[0], y, *views[1:])
