"""The Dubai aerial imagery as scenes: its classes and mask colours, one image with its class
map, reading them from disk offline first, and a synthetic stand-in.

The data set is "Semantic segmentation of aerial imagery" by Humans in the Loop (CC0,
imagery of Dubai from MBRSC): 8 tiles of 9 RGB JPEG images each, with RGB PNG masks,
laid out as ``Tile N/images/image_part_00K.jpg`` and ``Tile N/masks/image_part_00K.png``.
It is found, offline first, in a folder passed explicitly, then ``$KDLAB_DATA/dubai-aerial``,
then ``<kdlab cache>/data/dubai-aerial``; in each, the tiles may also sit in
``Semantic segmentation dataset/``, the folder the public zip unpacks to (see
:func:`find_aerial`).

The mask colours do **not** match the ones in the archive's ``classes.json``; the palette
below was measured over all 72 masks. A mask pixel of any other colour (a few black pixels,
17 % of one mask) is mapped to :data:`IGNORE_INDEX`, counted and reported, and left out of
losses and scores. Without the real data, :func:`synthetic_aerial` draws aerial-like scenes
(land, roads, buildings, water, vegetation) that say they are synthetic.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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
    "HOW_TO_GET",
    "AerialScene",
    "mask_to_labels",
    "labels_to_rgb",
    "read_scene",
    "find_aerial",
    "load_scenes",
    "synthetic_aerial",
    "class_counts",
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

UNPACKED = "Semantic segmentation dataset"  # the folder the public zip unpacks to
HOW_TO_GET = (
    "Download 'Semantic segmentation of aerial imagery' (Humans in the Loop, CC0; on Kaggle as "
    "humansintheloop/semantic-segmentation-of-aerial-imagery) and unpack it inside the folder "
    f"that KDLAB_DATA points to (it makes '{UNPACKED}/Tile 1' ... 'Tile 8', each with images/ "
    "and masks/), or put the 'Tile N' folders in a folder dubai-aerial there, or pass the "
    "folder that holds them."
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


def _aerial_candidates(folder: str | Path | None) -> list[Path]:
    def unpacked(root: Path) -> list[Path]:  # the public zip unpacked in root or its subfolder
        return [root / "dubai-aerial" / UNPACKED, root / UNPACKED]

    if folder is not None:  # a folder named explicitly is the only place looked at
        root = Path(folder).expanduser()
        return [root, root / "dubai-aerial", *unpacked(root)]
    candidates = []
    user = runtime.data_dir()
    if user is not None:
        candidates += [user / "dubai-aerial", user, *unpacked(user)]
    cache = runtime.cache_dir() / "data"
    return [*candidates, cache / "dubai-aerial", *unpacked(cache)]


def find_aerial(folder: str | Path | None = None) -> Path | None:
    """The folder holding the tiles (``Tile N/images/*.jpg``). With ``folder``: ``folder``
    itself, its ``dubai-aerial``, or the public zip unpacked in either (``dubai-aerial/Semantic
    segmentation dataset``, ``Semantic segmentation dataset``); only there. Otherwise
    ``$KDLAB_DATA/dubai-aerial``, ``$KDLAB_DATA``, the zip unpacked in either, then
    ``<kdlab cache>/data/dubai-aerial`` and the zip unpacked there or in
    ``<kdlab cache>/data``. None when none of them holds the tiles."""
    return next((c for c in _aerial_candidates(folder) if _is_aerial_folder(c)), None)


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
        looked = ", ".join(str(c) for c in _aerial_candidates(folder))
        raise FileNotFoundError(
            f"the Dubai aerial imagery was not found (no Tile N/images/*.jpg in {looked}; "
            f"KDLAB_DATA={runtime.data_dir()}). {HOW_TO_GET}"
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
