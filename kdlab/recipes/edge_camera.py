"""The edge-camera track (notebook 10 and ``benchmarks/edge_camera.py``): a DenseNet teacher
distilled into a SqueezeNet student on land-cover patches of the Dubai aerial imagery, the
student pre-trained first and then trained further with or without the teacher.

- :class:`EdgeCameraRecipe` holds every setting; :func:`edge_camera_recipe` gives the
  standard one (or the tiny fast-mode one) with some settings changed;
- :func:`landcover_splits`: the labelled patches of :mod:`kdlab.data.landcover`, split by tile;
- :func:`teacher_model`, :func:`student_model`: torchvision's ``DenseNet`` and
  ``squeezenet1_1``, untrained (``weights=None``: nothing is downloaded);
- :func:`trained_teacher` and :func:`pretrained_student`: trained once, then loaded from the
  cache;
- :func:`train_student`: a student from scratch, or a copy of a trained one trained further,
  from the labels alone or distilled (Hinton et al. 2015), through the same loop.

The case (an edge weather-nowcasting camera) distilled a pre-trained DenseNet-201 into a
SqueezeNet about 5 % of its size. DenseNet-201 is ``DenseNet(growth_rate=32,
block_config=(6, 12, 48, 32), num_init_features=64)``, 20.0 M parameters with ImageNet's
1,000 classes. The teacher here keeps its growth rate and stem and shortens its dense
blocks to (2, 4, 32, 32) layers: the first two blocks, which run at the highest resolution
and cost the most time per image, are cut hardest, the last two, which hold most of the
parameters, least. That is 10.2 M parameters with five classes, so SqueezeNet 1.1 (0.73 M)
is about 7 % of it, and one epoch on a laptop CPU takes a minute rather than ten.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import DenseNet, squeezenet1_1

from kdlab import runtime
from kdlab.cache import cached_model
from kdlab.data.landcover import NUM_CLASSES, VIEWS, LandCoverSet, LandCoverSplits, load_landcover
from kdlab.distill import Distiller, History
from kdlab.metrics import evaluate
from kdlab.models import logits_of

__all__ = [
    "EdgeCameraRecipe",
    "edge_camera_recipe",
    "landcover_splits",
    "teacher_model",
    "student_model",
    "trained_teacher",
    "pretrained_student",
    "train_student",
    "teacher_views",
    "accuracy",
    "DENSENET201",
]

# torchvision's densenet201: growth rate, layers per dense block, stem channels
DENSENET201 = {"growth_rate": 32, "block_config": (6, 12, 48, 32), "num_init_features": 64}


@dataclass(frozen=True)
class EdgeCameraRecipe:
    """The settings of the edge-camera track; the defaults are the full-mode standard.

    Data: images read at ``scale``, cut into ``patch`` x ``patch`` patches, kept when one
    class covers ``min_purity`` of the labelled pixels; ``train_patches`` of the training
    ones drawn (seeded, all when None); ``fast`` keeps one image per tile.
    Teacher: ``DenseNet(growth_rate, block_config, init_features)``, ``teacher_epochs`` of
    Adam at ``teacher_lr``. Student: ``squeezenet1_1``; pre-trained (and trained from
    scratch, with or without the teacher) for ``student_epochs`` at ``student_lr``, then
    trained ``further_epochs`` more at ``further_lr`` (a new cosine schedule); distilled:
    ``alpha * CE + (1 - alpha) * T^2 * KL`` at ``temperature``. Every run: batches of
    ``batch_size``, each patch flipped/rotated at random (``augment``), cosine decay.
    """

    fast: bool = False
    scale: float = 0.5
    patch: int = 32
    min_purity: float = 0.8
    train_patches: int | None = 1000
    growth_rate: int = 32
    block_config: tuple[int, ...] = (2, 4, 32, 32)
    init_features: int = 64
    teacher_epochs: int = 5
    teacher_lr: float = 1e-3
    student_epochs: int = 6
    student_lr: float = 1e-3
    further_epochs: int = 3
    further_lr: float = 3e-4
    batch_size: int = 64
    temperature: float = 4.0
    alpha: float = 0.5
    augment: bool = True

    def __post_init__(self) -> None:
        counts = ("patch", "growth_rate", "init_features", "teacher_epochs", "student_epochs")
        for name in (*counts, "further_epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not self.block_config or any(
            isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.block_config
        ):
            raise ValueError(f"block_config must be positive ints, got {self.block_config!r}")
        n = self.train_patches
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"train_patches must be a positive int or None (all), got {n!r}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1], got {self.scale!r}")
        if not 0 <= self.min_purity <= 1:
            raise ValueError(f"min_purity must be in [0, 1], got {self.min_purity!r}")
        for name in ("teacher_lr", "student_lr", "further_lr", "temperature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1] (weight of the hard loss), got {self.alpha}")

    @property
    def per_tile(self) -> int | None:
        """Images read per tile: one in fast mode, all of them otherwise."""
        return 1 if self.fast else None

    def replace(self, **changes: Any) -> EdgeCameraRecipe:
        """The same recipe with ``changes``; unknown settings raise a ValueError."""
        known = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(known))
        if unknown:
            raise ValueError(f"unknown recipe settings {unknown}; known: {known}")
        return dataclasses.replace(self, **changes)

    def settings(self) -> dict[str, Any]:
        """Every setting as plain values (what the benchmark saves)."""
        return {**dataclasses.asdict(self), "block_config": list(self.block_config)}

    def data_config(self, splits: LandCoverSplits) -> dict[str, Any]:
        """What determines the data a model saw (part of every cache key)."""
        return {
            "data": splits.name,
            "scale": self.scale,
            "patch": self.patch,
            "min_purity": self.min_purity,
            "tiles": splits.tiles,
            "train": len(splits.train),
            "fast": self.fast,
            "augment": self.augment,
            "batch_size": self.batch_size,
        }


# Fast mode: one image per tile, a small teacher and a couple of epochs (a smoke run).
_FAST = EdgeCameraRecipe(
    fast=True,
    scale=0.25,
    train_patches=256,
    growth_rate=8,
    block_config=(2, 2, 2, 2),
    init_features=16,
    teacher_epochs=2,
    student_epochs=2,
    further_epochs=1,
)


def edge_camera_recipe(fast: bool | None = None, **changes: Any) -> EdgeCameraRecipe:
    """The standard recipe (``fast``, default ``kdlab.fast_mode()``: a tiny teacher and a
    few epochs) with ``changes``, e.g. ``edge_camera_recipe(temperature=2.0)``."""
    fast = runtime.fast_mode() if fast is None else bool(fast)
    return (_FAST if fast else EdgeCameraRecipe()).replace(**changes)


def landcover_splits(
    recipe: EdgeCameraRecipe, folder: str | Path | None = None, *, seed: int = 0
) -> LandCoverSplits:
    """The land-cover patches of ``recipe``, split by tile (Tile 1 validation, Tile 8 test on
    the real data), ``recipe.train_patches`` of the training ones drawn with ``seed``; in
    fast mode, without the data, synthetic scenes that say so."""
    splits = load_landcover(
        folder,
        patch_size=recipe.patch,
        scale=recipe.scale,
        min_purity=recipe.min_purity,
        per_tile=recipe.per_tile,
        fast=recipe.fast,
        seed=seed,
    )
    splits.train = splits.train.subset(recipe.train_patches, seed=seed)
    return splits


def teacher_model(recipe: EdgeCameraRecipe) -> DenseNet:
    """torchvision's DenseNet with the recipe's growth rate, blocks and stem (untrained)."""
    return DenseNet(
        growth_rate=recipe.growth_rate,
        block_config=recipe.block_config,
        num_init_features=recipe.init_features,
        num_classes=NUM_CLASSES,
    )


def student_model() -> nn.Module:
    """torchvision's SqueezeNet 1.1 for the land-cover classes, untrained (``weights=None``),
    without the ReLU after its last convolution. That ReLU clips every class score at 0, so a
    class whose score falls below 0 on every patch gets no gradient and is never predicted
    again: with it, every student here stopped at land and water (75.6 % on the test tile,
    whatever the seed or the teacher; ``benchmarks/results/edge_camera_relu.json``)."""
    model = squeezenet1_1(weights=None, num_classes=NUM_CLASSES)
    model.classifier[2] = nn.Identity()  # Dropout, Conv2d, ReLU, AdaptiveAvgPool2d
    return model


def accuracy(model: nn.Module, data: Any) -> float:
    """Share of correctly classified patches of ``data`` (a land-cover set)."""
    return evaluate(model, data.loader(256))["accuracy"]


def teacher_views(teacher: nn.Module, data: LandCoverSet) -> Tensor:
    """The teacher's logits for each of the :data:`~kdlab.data.landcover.VIEWS` flips and
    rotations of every patch of ``data``, shape (N, VIEWS, classes): computed once, they
    stand for the teacher on every augmented batch (exact: the frozen teacher is in eval
    mode and no other view occurs), so a distilled epoch costs what a plain one does."""
    return torch.stack([logits_of(teacher, data.views(k)) for k in range(VIEWS)], dim=1)


def _fit(
    model: nn.Module,
    splits: LandCoverSplits,
    recipe: EdgeCameraRecipe,
    *,
    epochs: int,
    lr: float,
    teacher: nn.Module | None = None,
    view_logits: Tensor | None = None,
    temperature: float | None = None,
    seed: int,
    progress: bool | None,
) -> History:
    """``epochs`` of the recipe's loop on the training patches (distilled when ``teacher``,
    from its precomputed ``view_logits`` when given), validated after each epoch; the
    models come back where they were."""
    with runtime.devices_restored(model, teacher):
        trainer = Distiller(
            model,
            teacher,
            temperature=temperature or recipe.temperature,
            alpha=recipe.alpha,
            lr=lr,
            lr_schedule="cosine",
            seed=seed,
        )
        data = splits.train.loader(
            recipe.batch_size, True, seed, augment=recipe.augment, view_logits=view_logits
        )
        return trainer.fit(data, epochs, splits.val.loader(256), progress=progress)


def _cached(
    name: str,
    build_model: Any,
    model_key: Any,
    splits: LandCoverSplits,
    recipe: EdgeCameraRecipe,
    *,
    epochs: int,
    lr: float,
    seed: int,
    verbose: bool | None,
) -> tuple[nn.Module, dict]:
    """``build_model()`` trained on the labels for ``epochs`` at ``lr`` once, then loaded
    from the cache (keyed by the data, ``model_key``, the schedule and the seed)."""
    verbose = runtime.progress_default(verbose)

    def build() -> nn.Module:
        runtime.seed_everything(seed)  # the same initial weights whichever code ran before
        return build_model()

    def fit(model: nn.Module) -> dict:
        history = _fit(model, splits, recipe, epochs=epochs, lr=lr, seed=seed, progress=verbose)
        return {**history.to_dict(), "test_accuracy": accuracy(model, splits.test)}

    config = {**recipe.data_config(splits), "model": model_key, "epochs": epochs, "lr": lr}
    return cached_model(name, {**config, "seed": seed}, build, fit, verbose=verbose)


def trained_teacher(
    splits: LandCoverSplits,
    recipe: EdgeCameraRecipe,
    *,
    seed: int = 0,
    verbose: bool | None = None,
) -> tuple[DenseNet, dict]:
    """The DenseNet teacher of ``recipe``, trained once on the labels, then loaded from the
    cache. Returns it in eval mode and the cache's info (``status``, ``summary``, ...)."""
    key = [recipe.growth_rate, list(recipe.block_config), recipe.init_features]
    return _cached(
        "landcover-densenet-teacher", lambda: teacher_model(recipe), key, splits, recipe,
        epochs=recipe.teacher_epochs, lr=recipe.teacher_lr, seed=seed, verbose=verbose,
    )  # fmt: skip


def pretrained_student(
    splits: LandCoverSplits,
    recipe: EdgeCameraRecipe,
    *,
    seed: int = 0,
    verbose: bool | None = None,
) -> tuple[nn.Module, dict]:
    """SqueezeNet 1.1 trained on the labels alone for ``recipe.student_epochs`` (the case's
    "pre-trained" student), once, then loaded from the cache."""
    return _cached(
        "landcover-squeezenet-student", student_model, "squeezenet1_1 without the last ReLU",
        splits, recipe, epochs=recipe.student_epochs, lr=recipe.student_lr, seed=seed,
        verbose=verbose,
    )  # fmt: skip


def train_student(
    splits: LandCoverSplits,
    recipe: EdgeCameraRecipe,
    *,
    teacher: nn.Module | None = None,
    view_logits: Tensor | None = None,
    start: nn.Module | None = None,
    temperature: float | None = None,
    lr: float | None = None,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[nn.Module, History]:
    """A SqueezeNet trained with the recipe, from the labels alone or distilled from
    ``teacher`` (at ``temperature``, default the recipe's).

    From scratch (``start=None``): ``student_epochs`` at ``student_lr``, from the initial
    weights of ``seed``. Trained further (``start``, e.g. the pre-trained student): a copy of
    ``start`` (left as it is), ``further_epochs`` at ``further_lr`` (or ``lr``). The teacher
    sees the view the student sees: it runs on every augmented batch, or its logits come from
    ``view_logits`` (:func:`teacher_views` of the training patches).
    """
    if view_logits is not None and teacher is None:
        raise ValueError("view_logits were given without the teacher they came from")
    if start is None:
        runtime.seed_everything(seed)
        student, epochs = student_model(), recipe.student_epochs
        lr = lr or recipe.student_lr
    else:
        student, epochs = copy.deepcopy(start).requires_grad_(True), recipe.further_epochs
        lr = lr or recipe.further_lr
    history = _fit(
        student,
        splits,
        recipe,
        epochs=epochs,
        lr=lr,
        teacher=teacher,
        view_logits=view_logits,
        temperature=temperature,
        seed=seed,
        progress=progress,
    )
    return student.eval(), history
