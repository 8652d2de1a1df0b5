"""Aerial scenes cut into square patches for training: where patches start, cutting them,
normalising the pixels, a joint flip/rotation of image and mask, and the patch set with its
loader. Images differ in size (509x544 up to 2149x1480 in the Dubai set), hence patches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kdlab.data.base import ExampleSet
from kdlab.data.scenes import MEAN, STD, AerialScene
from kdlab.losses import IGNORE_INDEX

__all__ = [
    "AerialPatches",
    "patch_starts",
    "extract_patches",
    "make_patches",
    "normalise",
    "augment",
]


def patch_starts(length: int, size: int, overlap: int = 0) -> list[int]:
    """Start offsets of patches of ``size`` along an axis of ``length`` with ``overlap``
    pixels shared by neighbours: every ``size - overlap`` pixels, plus one patch flush with
    the far edge when the stride does not land there. A short axis gives one (padded) patch."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError(f"need size >= 1 and 0 <= overlap < size, got {size=} and {overlap=}")
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, size - overlap))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def extract_patches(
    image: np.ndarray, labels: np.ndarray, size: int = 256, overlap: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Square patches covering the whole scene: images (N, 3, size, size) uint8 and class
    maps (N, size, size) uint8. A side shorter than ``size`` is padded with black pixels
    whose labels are :data:`IGNORE_INDEX`."""
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} differ in size")
    height, width = labels.shape
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_INDEX)
    rows, cols = patch_starts(height, size, overlap), patch_starts(width, size, overlap)
    images = [image[r : r + size, c : c + size] for r in rows for c in cols]
    maps = [labels[r : r + size, c : c + size] for r in rows for c in cols]
    return np.stack(images).transpose(0, 3, 1, 2).copy(), np.stack(maps)


def normalise(images: Tensor) -> Tensor:
    """uint8 images (N, 3, H, W) to float, standardised per channel with :data:`MEAN` and
    :data:`STD`."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def augment(
    x: Tensor, y: Tensor, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """The same random flip and 90-degree rotation (one of the 8 symmetries of the square,
    drawn per example) applied to images ``x`` (N, C, S, S) and class maps ``y`` (N, S, S).
    Aerial images have no "up", so all 8 are plausible views."""
    if x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:] or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"need square images (N, C, S, S) and maps (N, S, S), got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    choice = torch.randint(0, 8, (x.shape[0],), generator=generator)
    x, y = x.clone(), y.clone()
    for k in range(1, 8):
        idx = (choice == k).nonzero().flatten()
        if len(idx) == 0:
            continue
        xi, yi = x[idx], y[idx]
        if k >= 4:
            xi, yi = xi.flip(-1), yi.flip(-1)
        x[idx] = torch.rot90(xi, k % 4, dims=(-2, -1))
        y[idx] = torch.rot90(yi, k % 4, dims=(-2, -1))
    return x, y


class _PatchLoader:
    """Batches of (normalised images, long class maps), optionally shuffled and augmented."""

    def __init__(
        self, patches: AerialPatches, batch_size: int, shuffle: bool, seed: int, aug: bool
    ):
        self.patches, self.batch_size = patches, batch_size
        self.shuffle, self.augment, self.epoch, self.seed = shuffle, aug, 0, seed

    def __len__(self) -> int:
        return math.ceil(len(self.patches) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1  # a new order and new views every epoch, reproducible from the seed
        n = len(self.patches)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start : start + self.batch_size]
            x, y = self.patches.images[idx], self.patches.labels[idx]
            if self.augment:
                x, y = augment(x, y, generator)
            yield normalise(x), y.long()


@dataclass
class AerialPatches(ExampleSet):
    """Patches kept decoded in memory: ``images`` (N, 3, S, S) uint8, ``labels`` (N, S, S)
    uint8 with :data:`IGNORE_INDEX` for ignored pixels, the tile of each patch, and where
    they came from (``source``, empty when not given)."""

    images: Tensor
    labels: Tensor
    tiles: tuple[str, ...]
    name: str
    source: str = ""

    _per_example = ("images", "labels", "tiles")
    _subsets_keep_order = True  # a subset keeps its patches in scene order

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All patches as (normalised float images, long class maps)."""
        return normalise(self.images), self.labels.long()

    def loader(
        self, batch_size: int, shuffle: bool = False, seed: int = 0, augment: bool = False
    ) -> _PatchLoader:
        """Batches ``(x, y)``; with ``augment``, a random flip/rotation per patch, applied
        to image and mask together (a new draw every epoch)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(self) == 0:
            raise ValueError("cannot make batches from an empty set of patches")
        return _PatchLoader(self, batch_size, shuffle, seed, augment)


def make_patches(
    scenes: Sequence[AerialScene],
    size: int = 256,
    overlap: int = 0,
    name: str = "aerial",
    source: str = "",
) -> AerialPatches:
    """Cut every scene into patches (see :func:`extract_patches`) and stack them."""
    if not scenes:
        raise ValueError("no scenes to cut into patches")
    images, labels, tiles = [], [], []
    for scene in scenes:
        x, y = extract_patches(scene.image, scene.labels, size, overlap)
        images.append(x)
        labels.append(y)
        tiles += [scene.tile] * len(y)
    return AerialPatches(
        torch.from_numpy(np.concatenate(images)),
        torch.from_numpy(np.concatenate(labels)),
        tuple(tiles),
        name,
        source,
    )
