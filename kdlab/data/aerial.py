"""The Dubai aerial imagery for semantic segmentation: classes, patches, a split by tile.

The data set is "Semantic segmentation of aerial imagery" by Humans in the Loop (CC0,
imagery of Dubai from MBRSC): 8 tiles of 9 RGB JPEG images each, with RGB PNG masks,
laid out as ``Tile N/images/image_part_00K.jpg`` and ``Tile N/masks/image_part_00K.png``.
It is found, offline first, in a folder passed explicitly, then ``$KDLAB_DATA/dubai-aerial``,
then ``<kdlab cache>/data/dubai-aerial``.

The mask colours do **not** match the ones in the archive's ``classes.json``; the palette
below was measured over all 72 masks. A mask pixel of any other colour (a few black pixels,
17 % of one mask) is mapped to :data:`IGNORE_INDEX`, counted and reported, and left out of
losses and scores. Images differ in size (509x544 up to 2149x1480), so they are cut into
fixed-size square patches; the split into train/validation/test is **by tile**, so no
area of the city appears in two splits. Without the real data, :func:`synthetic_aerial`
draws aerial-like scenes (land, roads, buildings, water, vegetation) that say they are
synthetic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from kdlab import runtime
from kdlab.losses import IGNORE_INDEX

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

CLASS_NAMES = ("Land", "Water", "Building", "Vegetation", "Road", "Unlabeled")
NUM_CLASSES = len(CLASS_NAMES)
# Measured mask colours (#8429F6, #E2A929, #3C1098, #FEDD3A, #6EC1E4, #9B9B9B), in the
# order of CLASS_NAMES; classes.json in the archive lists other colours and is wrong.
PALETTE = (
    (0x84, 0x29, 0xF6),
    (0xE2, 0xA9, 0x29),
    (0x3C, 0x10, 0x98),
    (0xFE, 0xDD, 0x3A),
    (0x6E, 0xC1, 0xE4),
    (0x9B, 0x9B, 0x9B),
)
# Per-channel mean and standard deviation of the 72 images' pixels in [0, 1].
MEAN = (0.5251, 0.5317, 0.5459)
STD = (0.2898, 0.2952, 0.3108)

DEFAULT_VAL_TILES = ("Tile 1",)
DEFAULT_TEST_TILES = ("Tile 8",)
HOW_TO_GET = (
    "Download 'Semantic segmentation of aerial imagery' (Humans in the Loop, CC0; on Kaggle as "
    "humansintheloop/semantic-segmentation-of-aerial-imagery), unpack it so that the folder "
    "holds 'Tile 1' ... 'Tile 8', and pass that folder or set KDLAB_DATA to its parent, "
    "named dubai-aerial."
)


def mask_to_labels(mask: np.ndarray) -> np.ndarray:
    """Class index per pixel of an RGB mask (H, W, 3): exact colour match with
    :data:`PALETTE`, :data:`IGNORE_INDEX` for any other colour."""
    if mask.ndim != 3 or mask.shape[2] != 3 or mask.dtype != np.uint8:
        raise ValueError(
            f"mask must be a uint8 RGB array of shape (H, W, 3), got {mask.dtype} {mask.shape}"
        )
    rgb = mask.astype(np.int32)
    keys = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    labels = np.full(keys.shape, IGNORE_INDEX, dtype=np.uint8)
    for index, (r, g, b) in enumerate(PALETTE):
        labels[keys == (r << 16) | (g << 8) | b] = index
    return labels


def labels_to_rgb(labels: np.ndarray | Tensor) -> np.ndarray:
    """The RGB mask (H, W, 3) of a class-index map, black where pixels are ignored."""
    labels = np.asarray(labels)
    colours = np.zeros((256, 3), dtype=np.uint8)
    colours[:NUM_CLASSES] = PALETTE
    return colours[labels.astype(np.uint8)]


@dataclass
class AerialScene:
    """One image (H, W, 3 uint8) and its class-index map (H, W uint8), from ``tile``.

    ``ignored`` counts the mask pixels of no known colour, at the file's full resolution.
    """

    tile: str
    name: str
    image: np.ndarray
    labels: np.ndarray
    ignored: int = 0


def read_scene(image_path: str | Path, mask_path: str | Path, scale: float = 1.0) -> AerialScene:
    """Read one image and its mask; ``scale`` < 1 downsamples both (the image with area
    averaging, the class map with nearest neighbour, so no class is invented)."""
    image_path, mask_path = Path(image_path), Path(mask_path)
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    if not mask_path.is_file():
        raise FileNotFoundError(f"{image_path} has no mask: expected {mask_path}")
    with Image.open(image_path) as image_file, Image.open(mask_path) as mask_file:
        if image_file.size != mask_file.size:
            raise ValueError(
                f"mask {mask_path} is {mask_file.size[0]}x{mask_file.size[1]} pixels but its "
                f"image {image_path} is {image_file.size[0]}x{image_file.size[1]}; every mask "
                "must have its image's size (re-export or remove the pair)"
            )
        size = image_file.size
        target = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
        if scale < 1:
            image_file.draft("RGB", target)  # JPEG decodes at a reduced size: much faster
        image = image_file.convert("RGB")
        labels = mask_to_labels(np.asarray(mask_file.convert("RGB")))
    ignored = int((labels == IGNORE_INDEX).sum())
    if scale < 1:
        image = image.resize(target, Image.Resampling.BOX)
        labels = np.asarray(Image.fromarray(labels).resize(target, Image.Resampling.NEAREST))
    tile = image_path.parent.parent.name
    return AerialScene(tile, f"{tile}/{image_path.stem}", np.asarray(image), labels, ignored)


def _is_aerial_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*/images/*.jpg"))


def find_aerial(folder: str | Path | None = None) -> Path | None:
    """The data folder: ``folder`` (or its ``dubai-aerial``) when given; otherwise
    ``$KDLAB_DATA/dubai-aerial``, ``$KDLAB_DATA``, then ``<kdlab cache>/data/dubai-aerial``.
    None when none of them holds ``*/images/*.jpg``."""
    candidates = []
    if folder is not None:  # a folder named explicitly is the only place looked at
        candidates += [Path(folder).expanduser(), Path(folder).expanduser() / "dubai-aerial"]
    else:
        user = runtime.data_dir()
        if user is not None:
            candidates += [user / "dubai-aerial", user]
        candidates.append(runtime.cache_dir() / "data" / "dubai-aerial")
    return next((c for c in candidates if _is_aerial_folder(c)), None)


@functools.lru_cache(maxsize=4)
def _read_folder(folder: str, scale: float, per_tile: int | None) -> tuple[AerialScene, ...]:
    # Decoded once per process: notebooks and benchmarks reload the same data many times.
    scenes = []
    for tile in sorted(p for p in Path(folder).iterdir() if (p / "images").is_dir()):
        images = sorted((tile / "images").glob("*.jpg"))[:per_tile]
        for image in images:
            mask = tile / "masks" / f"{image.stem}.png"
            scenes.append(read_scene(image, mask, scale))
    return tuple(scenes)


def load_scenes(
    folder: str | Path | None = None, *, scale: float = 1.0, per_tile: int | None = None
) -> list[AerialScene]:
    """Every image of the data set as an :class:`AerialScene` (the first ``per_tile`` of
    each tile when given). Raises ``FileNotFoundError`` saying how to get the data."""
    if per_tile is not None and per_tile < 1:
        raise ValueError(f"per_tile must be >= 1 or None, got {per_tile}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    found = find_aerial(folder)
    if found is None:
        looked = f"{folder} and " if folder is not None else ""
        raise FileNotFoundError(
            f"the Dubai aerial imagery was not found in {looked}$KDLAB_DATA/dubai-aerial "
            f"(KDLAB_DATA={runtime.data_dir()}). {HOW_TO_GET}"
        )
    return list(_read_folder(str(found.resolve()), float(scale), per_tile))


def _smooth_field(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth random values in [0, 1]: a ``cells`` x ``cells`` grid upsampled bicubically."""
    coarse = Image.fromarray(rng.random((cells, cells)).astype(np.float32), mode="F")
    field_ = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC))
    return (field_ - field_.min()) / max(float(np.ptp(field_)), 1e-6)


# Typical colours of each class (RGB), in the order of CLASS_NAMES.
_SYNTHETIC_COLOURS = np.array(
    [(196, 170, 130), (40, 95, 125), (150, 150, 160), (70, 110, 55), (110, 110, 115)]
    + [(170, 150, 120)],
    dtype=np.float32,
)


def _synthetic_scene(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    land, water, building, vegetation, road, unlabeled = range(NUM_CLASSES)
    labels = np.full((size, size), land, dtype=np.uint8)
    shade = np.zeros((size, size, 3), dtype=np.float32)  # per-building roof colour
    yy, xx = np.mgrid[0:size, 0:size] / size
    # Water: a smooth coastline entering from one side, on most scenes.
    if rng.random() < 0.6:
        ramp = (xx, 1 - xx, yy, 1 - yy)[rng.integers(4)]
        labels[ramp + 0.25 * _smooth_field(rng, size, 4) < rng.uniform(0.25, 0.45)] = water
    # Roads: straight bands a few pixels wide, horizontal and vertical.
    width = max(2, size // 40)
    for coordinate in (yy, xx):
        for centre in rng.choice(np.arange(width, size - width), rng.integers(1, 3), False):
            labels[(np.abs(coordinate * size - centre) < width) & (labels != water)] = road
    # Buildings: rectangles on dry land, each with its own roof colour.
    for _ in range(rng.integers(4, 12)):
        h, w = rng.integers(size // 20, size // 7, 2)
        top, left = rng.integers(0, size - h), rng.integers(0, size - w)
        if (labels[top : top + h, left : left + w] == land).all():
            labels[top : top + h, left : left + w] = building
            shade[top : top + h, left : left + w] = rng.uniform(-50, 60)
    # Vegetation: smooth blobs on the remaining land; sometimes an unlabeled lot.
    blobs = _smooth_field(rng, size, 6) > rng.uniform(0.65, 0.8)
    labels[blobs & (labels == land)] = vegetation
    if rng.random() < 0.5:
        h, w = rng.integers(size // 12, size // 6, 2)
        top, left = rng.integers(0, size - h), rng.integers(0, size - w)
        lot = labels[top : top + h, left : left + w]
        lot[lot == land] = unlabeled
    texture = 25 * (_smooth_field(rng, size, max(2, size // 8)) - 0.5)[..., None]
    noise = rng.normal(0, 6, (size, size, 3)).astype(np.float32)
    image = _SYNTHETIC_COLOURS[labels] + shade + texture + noise
    return np.clip(image, 0, 255).astype(np.uint8), labels


def synthetic_aerial(
    n_tiles: int = 4, per_tile: int = 2, size: int = 256, seed: int = 0
) -> list[AerialScene]:
    """Aerial-like scenes for tests and offline runs: sandy land, a coastline of water,
    straight roads, rectangular buildings, vegetation blobs and a rare unlabeled lot, with
    texture and noise. The same ``seed`` gives the same scenes. Tiles are named
    ``"synthetic tile k"``: results on them say nothing about the real imagery."""
    for name, value, low in (
        ("n_tiles", n_tiles, 1),
        ("per_tile", per_tile, 1),
        ("size", size, 32),
    ):
        if not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    rng = np.random.default_rng(seed)
    scenes = []
    for t in range(1, n_tiles + 1):
        for k in range(1, per_tile + 1):
            image, labels = _synthetic_scene(rng, size)
            tile = f"synthetic tile {t}"
            scenes.append(AerialScene(tile, f"{tile}/scene {k}", image, labels))
    return scenes


def class_counts(labels: Sequence[np.ndarray] | np.ndarray | Tensor) -> dict[str, int]:
    """Pixels of each class and of ``"ignored"`` in one class map or a list of them."""
    if isinstance(labels, (np.ndarray, Tensor)):
        labels = [labels]
    counts = np.zeros(256, dtype=np.int64)
    for item in labels:
        counts += np.bincount(np.asarray(item, dtype=np.uint8).ravel(), minlength=256)
    result = {name: int(counts[i]) for i, name in enumerate(CLASS_NAMES)}
    result["ignored"] = int(counts[NUM_CLASSES:].sum())
    return result


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
class AerialPatches:
    """Patches kept decoded in memory: ``images`` (N, 3, S, S) uint8, ``labels`` (N, S, S)
    uint8 with :data:`IGNORE_INDEX` for ignored pixels, and the tile of each patch."""

    images: Tensor
    labels: Tensor
    tiles: tuple[str, ...]
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def synthetic(self) -> bool:
        return self.name.startswith("synthetic")

    def subset(self, n: int | None, seed: int = 0) -> AerialPatches:
        """A seeded random subset of ``n`` patches (all of them when None or too many)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"subset size must be positive, got {n}")
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        idx = idx.sort().values
        tiles = tuple(self.tiles[i] for i in idx.tolist())
        return AerialPatches(self.images[idx], self.labels[idx], tiles, self.name)

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
    scenes: Sequence[AerialScene], size: int = 256, overlap: int = 0, name: str = "aerial"
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
    )


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
            [s for s in scenes if s.tile in tiles[split]], patch_size, overlap, name
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
