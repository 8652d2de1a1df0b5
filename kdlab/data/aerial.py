"""The Dubai aerial imagery ready for semantic segmentation: scenes split into
train/validation/test **by tile**, so no area of the city appears in two splits, and cut
into fixed-size square patches (:func:`load_aerial`).

The scenes (classes, measured palette, reading, the synthetic stand-in) are in
:mod:`kdlab.data.scenes`, the patches (cutting, normalisation, augmentation, batches) in
:mod:`kdlab.data.patches`; their public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kdlab import runtime
from kdlab.data.patches import (
    AerialPatches,
    augment,
    extract_patches,
    make_patches,
    normalise,
    patch_starts,
)
from kdlab.data.scenes import (
    CLASS_NAMES,
    IGNORE_INDEX,
    MEAN,
    NUM_CLASSES,
    PALETTE,
    STD,
    AerialScene,
    class_counts,
    find_aerial,
    labels_to_rgb,
    load_scenes,
    mask_to_labels,
    read_scene,
    synthetic_aerial,
)

__all__ = [
    "CLASS_NAMES",
    "NUM_CLASSES",
    "IGNORE_INDEX",
    "PALETTE",
    "MEAN",
    "STD",
    "AerialScene",
    "AerialPatches",
    "AerialSplits",
    "mask_to_labels",
    "labels_to_rgb",
    "read_scene",
    "find_aerial",
    "load_scenes",
    "synthetic_aerial",
    "class_counts",
    "split_by_tile",
    "patch_starts",
    "extract_patches",
    "make_patches",
    "normalise",
    "augment",
    "load_aerial",
]

DEFAULT_VAL_TILES = ("Tile 1",)
DEFAULT_TEST_TILES = ("Tile 8",)


def split_by_tile(
    tiles: Sequence[str],
    val: int | Sequence[str] = 1,
    test: int | Sequence[str] = 1,
    seed: int = 0,
) -> dict[str, list[str]]:
    """Assign whole tiles to ``train``, ``val`` and ``test``, so no area is in two splits.

    ``val`` and ``test`` are tile names, or a number of tiles drawn at random (seeded)
    from those not named; the remaining tiles are for training.
    """
    names = sorted(set(tiles))
    chosen: dict[str, list[str]] = {}
    for split, want in (("val", val), ("test", test)):
        if isinstance(want, int):
            if want < 1:
                raise ValueError(f"{split} needs at least 1 tile, got {want}")
            continue
        want = [want] if isinstance(want, str) else list(want)
        unknown = [t for t in want if t not in names]
        if not want or unknown:
            raise ValueError(f"{split} tiles {want} must be non-empty and among {names}")
        chosen[split] = want
    if set(chosen.get("val", ())) & set(chosen.get("test", ())):
        raise ValueError(f"val and test share tiles: {chosen}; a tile belongs to one split")
    taken = {t for picked in chosen.values() for t in picked}
    free = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    free = [t for t in free if t not in taken]
    for split, want in (("val", val), ("test", test)):
        if split not in chosen:
            chosen[split], free = sorted(free[:want]), free[want:]
    if not free:
        raise ValueError(f"no tile left for training out of {names}; ask for fewer val/test tiles")
    return {"train": sorted(free), "val": chosen["val"], "test": chosen["test"]}


@dataclass
class AerialSplits:
    """Train, validation and test patches from disjoint tiles, and where they came from."""

    train: AerialPatches
    val: AerialPatches
    test: AerialPatches
    tiles: dict[str, list[str]]
    name: str
    source: str
    scale: float
    patch_size: int
    overlap: int
    ignored: dict[str, int] = field(default_factory=dict)
    scenes: list[AerialScene] = field(default_factory=list, repr=False)

    @property
    def synthetic(self) -> bool:
        return self.name.startswith("synthetic")

    def describe(self) -> str:
        """A few lines: data, resolution, patches per split and tiles, ignored pixels."""
        lines = [
            f"{self.name} from {self.source}: {len(self.scenes)} images at scale {self.scale:g}, "
            f"patches {self.patch_size}x{self.patch_size} with overlap {self.overlap}"
        ]
        for split in ("train", "val", "test"):
            patches = getattr(self, split)
            lines.append(f"  {split}: {len(patches)} patches from {', '.join(self.tiles[split])}")
        total = sum(self.ignored.values())
        if total:
            worst = max(self.ignored, key=self.ignored.get)
            lines.append(
                f"  {total:,} mask pixels of no known colour in {len(self.ignored)} masks set to "
                f"ignore ({IGNORE_INDEX}); most in {worst}: {self.ignored[worst]:,}"
            )
        else:
            lines.append("  every mask pixel has a known colour")
        return "\n".join(lines)


def load_aerial(
    folder: str | Path | None = None,
    *,
    patch_size: int = 256,
    overlap: int = 0,
    scale: float = 1.0,
    val_tiles: int | Sequence[str] | None = None,
    test_tiles: int | Sequence[str] | None = None,
    seed: int = 0,
    per_tile: int | None = None,
    fast: bool | None = None,
    synthetic_fallback: bool | None = None,
) -> AerialSplits:
    """The aerial data cut into patches and split by tile, offline first.

    The real set is looked for as in :func:`find_aerial`. Without it, full mode raises
    ``FileNotFoundError`` saying where to get it; fast mode (``fast``, default
    ``kdlab.fast_mode()``) falls back to :func:`synthetic_aerial` unless
    ``synthetic_fallback=False``. ``val_tiles``/``test_tiles`` are tile names or counts
    (default: Tile 1 for validation and Tile 8 for test on the real set, which hold every
    class; one seeded tile each otherwise). ``scale`` < 1 reads the images downsampled;
    ``per_tile`` keeps the first images of each tile only.
    """
    fast = runtime.fast_mode() if fast is None else fast
    synthetic_fallback = fast if synthetic_fallback is None else synthetic_fallback
    if patch_size < 8:
        raise ValueError(f"patch_size must be >= 8 pixels, got {patch_size}")
    if not 0 <= overlap < patch_size:
        raise ValueError(f"overlap must be in [0, patch_size), got {overlap} for {patch_size}")
    found = find_aerial(folder)
    if found is not None:
        scenes = load_scenes(found, scale=scale, per_tile=per_tile)
        name, source = "dubai-aerial", str(found)
    elif synthetic_fallback:
        size = max(patch_size, round(512 * scale))
        scenes = synthetic_aerial(n_tiles=4, per_tile=per_tile or 2, size=size, seed=seed)
        name, source = "synthetic-aerial", "generated (synthetic: not the Dubai imagery)"
    else:
        scenes = load_scenes(folder)  # raises FileNotFoundError with the how-to
    names = [s.tile for s in scenes]
    real_defaults = all(t in names for t in DEFAULT_VAL_TILES + DEFAULT_TEST_TILES)
    if val_tiles is None:
        val_tiles = DEFAULT_VAL_TILES if real_defaults else 1
    if test_tiles is None:
        test_tiles = DEFAULT_TEST_TILES if real_defaults else 1
    tiles = split_by_tile(names, val_tiles, test_tiles, seed)
    splits = {
        split: make_patches(
            [s for s in scenes if s.tile in tiles[split]], patch_size, overlap, name, source
        )
        for split in ("train", "val", "test")
    }
    return AerialSplits(
        **splits,
        tiles=tiles,
        name=name,
        source=source,
        scale=scale,
        patch_size=patch_size,
        overlap=overlap,
        ignored={s.name: s.ignored for s in scenes if s.ignored},
        scenes=list(scenes),
    )
