"""Land-cover classification from the Dubai aerial imagery: one class per patch.

The segmentation patches of :func:`kdlab.data.aerial.load_aerial` (split by tile, so no area
of the city is in two splits) become labelled images: each patch takes the **majority
class** of its mask's labelled pixels, and its **purity** is that class's share of them,

    label = argmax_c n_c,    purity = max_c n_c / sum_c n_c,

with ``n_c`` the pixels of class ``c`` (ignored pixels left out). Patches below
``min_purity`` are dropped (a patch that is half road, half building has no single right
answer), and so are patches whose majority is "Unlabeled". The five classes left are
:data:`CLASSES`. Without the real data, fast mode runs on the synthetic scenes of
:func:`kdlab.data.scenes.synthetic_aerial`, and the set's name says it is synthetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from kdlab import runtime
from kdlab.data.aerial import CLASS_NAMES, IGNORE_INDEX, load_aerial
from kdlab.data.base import ExampleSet
from kdlab.data.patches import AerialPatches, normalise

__all__ = [
    "CLASSES",
    "NUM_CLASSES",
    "VIEWS",
    "dihedral",
    "LandCoverSet",
    "LandCoverSplits",
    "majority_labels",
    "landcover_from_patches",
    "load_landcover",
]

CLASSES = tuple(c for c in CLASS_NAMES if c != "Unlabeled")
NUM_CLASSES = len(CLASSES)
VIEWS = 8  # the symmetries of the square: 4 rotations, each with and without a flip


def dihedral(x: Tensor, k: int) -> Tensor:
    """View ``k`` (0-7) of square images ``x`` (..., S, S): mirrored left-right when
    ``k >= 4``, then turned ``k % 4`` quarter turns (view 0 is ``x`` itself)."""
    if not 0 <= k < VIEWS:
        raise ValueError(f"view must be in [0, {VIEWS}), got {k}")
    return torch.rot90(x.flip(-1) if k >= 4 else x, k % 4, dims=(-2, -1))


def majority_labels(maps: Tensor, num_classes: int = len(CLASS_NAMES)) -> tuple[Tensor, Tensor]:
    """Per class map of ``maps`` (N, H, W): the majority class among its labelled pixels
    (those not :data:`IGNORE_INDEX`) and its purity, ``max_c n_c / sum_c n_c`` (0 for a map
    without a labelled pixel; ties go to the lower class index)."""
    if maps.dim() != 3:
        raise ValueError(f"maps must be class maps of shape (N, H, W), got {tuple(maps.shape)}")
    flat = maps.long().flatten(1)
    known = flat != IGNORE_INDEX
    if bool((flat[known] >= num_classes).any() | (flat[known] < 0).any()):
        raise ValueError(f"class maps hold labels outside [0, {num_classes}) other than ignore")
    counts = torch.zeros(len(flat), num_classes, dtype=torch.long)
    counts.scatter_add_(1, torch.where(known, flat, 0), known.long())
    top, label = counts.max(1)
    purity = top.float() / counts.sum(1).clamp(min=1).float()
    return label, purity


@dataclass
class LandCoverSet(ExampleSet):
    """Labelled patches in memory: ``images`` (N, 3, S, S) uint8, ``labels`` (N,) long
    indices into :data:`CLASSES`, the ``purity`` of each label, the patch's class ``maps``
    (N, S, S) and its tile."""

    images: Tensor
    labels: Tensor
    purity: Tensor
    maps: Tensor
    tiles: tuple[str, ...]
    name: str
    source: str = ""

    _per_example = ("images", "labels", "purity", "maps", "tiles")

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All patches as (normalised float images, long labels)."""
        return normalise(self.images), self.labels

    def class_counts(self) -> dict[str, int]:
        """Patches per class, in the order of :data:`CLASSES`."""
        counts = torch.bincount(self.labels, minlength=NUM_CLASSES).tolist()
        return dict(zip(CLASSES, counts, strict=True))

    def loader(
        self,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        augment: bool = False,
        view_logits: Tensor | None = None,
    ) -> _LandCoverLoader:
        """Batches ``(x, y)``; with ``augment``, one of the :data:`VIEWS` flips/rotations of
        the square per patch (:func:`dihedral`; aerial images have no "up"), a new draw every
        epoch. ``view_logits`` (N, VIEWS, C), a teacher's logits for every view of every
        patch, computed once: batches are then ``(x, y, logits of the view drawn)``, which is
        exact for a teacher in eval mode, since no other view ever occurs."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(self) == 0:
            raise ValueError("cannot make batches from an empty land-cover set")
        if view_logits is not None and (
            view_logits.dim() != 3 or view_logits.shape[:2] != (len(self), VIEWS)
        ):
            raise ValueError(
                f"view_logits must have shape ({len(self)}, {VIEWS}, classes): one row per "
                f"patch and view; got {tuple(view_logits.shape)}"
            )
        return _LandCoverLoader(self, batch_size, shuffle, seed, augment, view_logits)

    def views(self, k: int) -> Tensor:
        """View ``k`` of every patch, normalised (see :func:`dihedral`)."""
        return normalise(dihedral(self.images, k))


class _LandCoverLoader:
    """Batches of (normalised images, labels), optionally shuffled and augmented."""

    def __init__(
        self,
        data: LandCoverSet,
        batch_size: int,
        shuffle: bool,
        seed: int,
        aug: bool,
        view_logits: Tensor | None,
    ):
        self.data, self.batch_size, self.view_logits = data, batch_size, view_logits
        self.shuffle, self.augment, self.epoch, self.seed = shuffle, aug, 0, seed

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # a new order and new views every epoch, reproducible from the seed
        n = len(self.data)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.data.images[idx].clone()
            view = torch.zeros(len(idx), dtype=torch.long)
            if self.augment:
                view = torch.randint(0, VIEWS, (len(idx),), generator=generator)
                for k in view.unique().tolist():
                    x[view == k] = dihedral(x[view == k], k)
            batch = (normalise(x), self.data.labels[idx])
            if self.view_logits is not None:
                batch += (self.view_logits[idx, view],)
            yield batch


def landcover_from_patches(patches: AerialPatches, min_purity: float = 0.8) -> LandCoverSet:
    """The patches whose majority class covers at least ``min_purity`` of their labelled
    pixels, labelled with that class; patches mostly "Unlabeled" are dropped too."""
    if not 0 <= min_purity <= 1:
        raise ValueError(f"min_purity must be in [0, 1] (a share of pixels), got {min_purity}")
    label, purity = majority_labels(patches.labels)
    keep = ((purity >= min_purity) & (purity > 0) & (label < NUM_CLASSES)).nonzero().flatten()
    return LandCoverSet(
        patches.images[keep],
        label[keep],
        purity[keep],
        patches.labels[keep],
        tuple(patches.tiles[i] for i in keep.tolist()),
        patches.name,
        patches.source,
    )


@dataclass
class LandCoverSplits:
    """Train, validation and test land-cover sets from disjoint tiles, and how they were
    made: ``kept`` and ``total`` patches per split before and after the purity filter."""

    train: LandCoverSet
    val: LandCoverSet
    test: LandCoverSet
    tiles: dict[str, list[str]]
    name: str
    source: str
    patch_size: int
    scale: float
    min_purity: float
    total: dict[str, int] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.name.startswith("synthetic")

    def describe(self) -> str:
        """A few lines: where the data came from, and patches per split and class."""
        kind = "SYNTHETIC stand-in, not the Dubai imagery" if self.synthetic else self.source
        lines = [
            f"land cover from {self.name} ({kind}): {self.patch_size}x{self.patch_size} patches "
            f"at scale {self.scale:g}, kept when one class covers >= {self.min_purity:.0%}"
        ]
        for split in ("train", "val", "test"):
            data: LandCoverSet = getattr(self, split)
            counts = ", ".join(f"{c} {n}" for c, n in data.class_counts().items())
            lines.append(
                f"  {split}: {len(data)} of {self.total[split]} patches from "
                f"{', '.join(self.tiles[split])} ({counts})"
            )
        return "\n".join(lines)


def load_landcover(
    folder: str | Path | None = None,
    *,
    patch_size: int = 32,
    scale: float = 0.25,
    min_purity: float = 0.8,
    val_tiles: int | Sequence[str] | None = None,
    test_tiles: int | Sequence[str] | None = None,
    seed: int = 0,
    per_tile: int | None = None,
    fast: bool | None = None,
) -> LandCoverSplits:
    """The Dubai aerial patches of :func:`~kdlab.data.aerial.load_aerial` (same arguments,
    same split by tile: Tile 1 validation, Tile 8 test on the real set) as land-cover
    classes (:func:`landcover_from_patches`). Full mode needs the real data; fast mode
    (``fast``, default ``kdlab.fast_mode()``) falls back to synthetic scenes, saying so."""
    fast = runtime.fast_mode() if fast is None else fast
    splits = load_aerial(
        folder,
        patch_size=patch_size,
        scale=scale,
        val_tiles=val_tiles,
        test_tiles=test_tiles,
        seed=seed,
        per_tile=per_tile,
        fast=fast,
    )
    sets = {s: landcover_from_patches(getattr(splits, s), min_purity) for s in splits.tiles}
    for split, data in sets.items():
        if len(data) == 0:
            raise ValueError(
                f"no {split} patch reaches purity {min_purity:.0%}; lower min_purity or the "
                f"patch size (got {patch_size})"
            )
    return LandCoverSplits(
        **sets,
        tiles=splits.tiles,
        name=splits.name,
        source=splits.source,
        patch_size=patch_size,
        scale=scale,
        min_purity=min_purity,
        total={s: len(getattr(splits, s)) for s in splits.tiles},
    )
