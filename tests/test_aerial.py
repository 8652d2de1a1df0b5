"""kdlab.data.aerial: colours to classes, a tiny fixture on disk, patches, the split by tile,
joint augmentation, the synthetic scenes, and the real data set when it is present."""

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdlab.data import aerial
from kdlab.data.aerial import NUM_CLASSES, PALETTE
from kdlab.losses import IGNORE_INDEX

REAL = Path(os.environ.get("KDLAB_DATA", "/nonexistent")) / "dubai-aerial"
HEX = ("#8429F6", "#E2A929", "#3C1098", "#FEDD3A", "#6EC1E4", "#9B9B9B")  # measured


def rgb_of(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def reference_labels(mask: np.ndarray) -> np.ndarray:
    """Pixel by pixel with a dict from the measured hex colours: the slow, obvious way."""
    lookup = {rgb_of(h): i for i, h in enumerate(HEX)}
    flat = [lookup.get(tuple(int(v) for v in px), IGNORE_INDEX) for px in mask.reshape(-1, 3)]
    return np.array(flat, dtype=np.uint8).reshape(mask.shape[:2])


def write_pair(tile_dir: Path, stem: str, labels: np.ndarray, *, unknown=(), mask_size=None):
    """A JPEG image and its RGB PNG mask; ``unknown`` pixels get colours not in the palette."""
    (tile_dir / "images").mkdir(parents=True, exist_ok=True)
    (tile_dir / "masks").mkdir(parents=True, exist_ok=True)
    mask = np.array([rgb_of(h) for h in HEX], dtype=np.uint8)[labels]
    for (r, c), colour in unknown:
        mask[r, c] = colour
    rng = np.random.default_rng(labels.size)
    image = rng.integers(0, 256, (*labels.shape, 3), dtype=np.uint8)
    Image.fromarray(image).save(tile_dir / "images" / f"{stem}.jpg")
    mask_image = Image.fromarray(mask)
    if mask_size is not None:
        mask_image = mask_image.resize(mask_size, Image.Resampling.NEAREST)
    mask_image.save(tile_dir / "masks" / f"{stem}.png")
    return mask


@pytest.fixture
def fixture_folder(tmp_path):
    """Four tiles with images of different sizes, one mask with unknown colours and one
    stored as a palette ("P") PNG, as some of the real masks are."""
    root = tmp_path / "dubai-aerial"
    rng = np.random.default_rng(0)
    shapes = {"Tile 1": [(40, 50), (41, 50)], "Tile 2": [(30, 36)], "Tile 3": [(64, 48)]}
    shapes["Tile 4"] = [(33, 70)]
    truth = {}
    for tile, sizes in shapes.items():
        for k, shape in enumerate(sizes, start=1):
            labels = rng.integers(0, NUM_CLASSES, shape).astype(np.uint8)
            unknown = []
            if tile == "Tile 2":
                unknown = [((0, 0), (0, 0, 0)), ((5, 7), (0, 0, 0)), ((9, 9), (0x84, 0x29, 0xF5))]
            mask = write_pair(root / tile, f"image_part_00{k}", labels, unknown=unknown)
            truth[f"{tile}/image_part_00{k}"] = mask
    palette_png = root / "Tile 3" / "masks" / "image_part_001.png"
    Image.open(palette_png).convert("P", palette=Image.Palette.ADAPTIVE).save(palette_png)
    return root, truth


def test_palette_is_the_measured_one_not_classes_json():
    assert PALETTE == tuple(rgb_of(h) for h in HEX)
    assert aerial.CLASS_NAMES[:5] == ("Land", "Water", "Building", "Vegetation", "Road")
    assert NUM_CLASSES == len(aerial.CLASS_NAMES) == 6 and IGNORE_INDEX == 255


def test_mask_to_labels_matches_pixelwise_reference():
    rng = np.random.default_rng(1)
    colours = np.array([rgb_of(h) for h in HEX] + [(0, 0, 0), (0x84, 0x29, 0xF7)], np.uint8)
    mask = colours[rng.integers(0, len(colours), (23, 17))]
    mask[0, :3] = rng.integers(0, 256, (3, 3))  # arbitrary colours too
    np.testing.assert_array_equal(aerial.mask_to_labels(mask), reference_labels(mask))
    back = aerial.labels_to_rgb(aerial.mask_to_labels(mask))
    known = reference_labels(mask) != IGNORE_INDEX
    np.testing.assert_array_equal(back[known], mask[known])
    assert (back[~known] == 0).all()
    with pytest.raises(ValueError, match="RGB"):
        aerial.mask_to_labels(mask[..., 0])


def test_fixture_loads_with_unknown_colours_counted(fixture_folder):
    root, truth = fixture_folder
    scenes = aerial.load_scenes(root)
    assert sorted(s.name for s in scenes) == sorted(truth)
    for scene in scenes:
        mask = truth[scene.name]
        assert scene.image.shape == (*mask.shape[:2], 3) and scene.image.dtype == np.uint8
        expected = reference_labels(mask)
        np.testing.assert_array_equal(scene.labels, expected)
        assert scene.ignored == int((expected == IGNORE_INDEX).sum())
    assert {s.name: s.ignored for s in scenes if s.ignored} == {"Tile 2/image_part_001": 3}
    splits = aerial.load_aerial(root, patch_size=16, val_tiles=["Tile 2"], test_tiles=1)
    assert splits.ignored == {"Tile 2/image_part_001": 3} and not splits.synthetic
    assert "3 mask pixels of no known colour in 1 masks" in splits.describe()


def test_one_pixel_size_mismatch_names_the_file(tmp_path):
    labels = np.zeros((20, 30), np.uint8)
    write_pair(tmp_path / "Tile 1", "image_part_001", labels, mask_size=(30, 21))
    with pytest.raises(ValueError, match="image_part_001.png") as info:
        aerial.load_scenes(tmp_path)
    assert "30x21" in str(info.value) and "30x20" in str(info.value)


def test_missing_mask_names_the_image(tmp_path):
    write_pair(tmp_path / "Tile 1", "image_part_001", np.zeros((8, 8), np.uint8))
    (tmp_path / "Tile 1" / "masks" / "image_part_001.png").unlink()
    with pytest.raises(FileNotFoundError, match="image_part_001.jpg has no mask"):
        aerial.load_scenes(tmp_path)


def test_scale_downsamples_image_and_labels(fixture_folder):
    root, truth = fixture_folder
    half = {s.name: s for s in aerial.load_scenes(root, scale=0.5)}
    for name, mask in truth.items():
        h, w = mask.shape[:2]
        scene = half[name]
        assert scene.labels.shape == (round(h * 0.5), round(w * 0.5))
        assert scene.image.shape[:2] == scene.labels.shape
        # nearest neighbour only ever picks existing labels
        assert set(np.unique(scene.labels)) <= set(np.unique(reference_labels(mask)))


@pytest.mark.parametrize(
    ("length", "size", "overlap"),
    [(100, 32, 0), (96, 32, 0), (100, 32, 8), (32, 32, 0), (20, 32, 0), (257, 256, 128)],
)
def test_patch_starts_cover_the_axis(length, size, overlap):
    starts = aerial.patch_starts(length, size, overlap)
    stride = size - overlap
    expected = 1 if length <= size else math.ceil((length - size) / stride) + 1
    assert len(starts) == expected and starts[0] == 0
    assert all(b - a <= stride for a, b in zip(starts, starts[1:], strict=False))
    covered = np.zeros(max(length, size), bool)
    for s in starts:
        covered[s : s + size] = True
    assert covered[:length].all() and starts[-1] + size >= length
    assert all(s + size <= max(length, size) for s in starts)


def test_extract_patches_counts_contents_and_padding():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (70, 45, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, (70, 45)).astype(np.uint8)
    x, y = aerial.extract_patches(image, labels, size=32, overlap=8)
    rows, cols = aerial.patch_starts(70, 32, 8), aerial.patch_starts(45, 32, 8)
    assert x.shape == (len(rows) * len(cols), 3, 32, 32) and y.shape == (len(x), 32, 32)
    for i, (r, c) in enumerate((r, c) for r in rows for c in cols):
        np.testing.assert_array_equal(x[i].transpose(1, 2, 0), image[r : r + 32, c : c + 32])
        np.testing.assert_array_equal(y[i], labels[r : r + 32, c : c + 32])
    small_x, small_y = aerial.extract_patches(image[:20], labels[:20], size=32)
    assert small_x.shape == (2, 3, 32, 32)
    assert (small_y[:, 20:] == IGNORE_INDEX).all() and (small_x[:, :, 20:] == 0).all()
    np.testing.assert_array_equal(small_y[0, :20], labels[:20, :32])
    with pytest.raises(ValueError, match="overlap"):
        aerial.extract_patches(image, labels, size=32, overlap=32)


def test_split_by_tile_has_no_overlap_and_patches_follow_tiles(fixture_folder):
    root, _ = fixture_folder
    splits = aerial.load_aerial(root, patch_size=16, overlap=4, val_tiles=1, test_tiles=1, seed=3)
    parts = splits.tiles
    assert sorted(parts["train"] + parts["val"] + parts["test"]) == [
        f"Tile {i}" for i in (1, 2, 3, 4)
    ]
    assert len(set(parts["train"]) | set(parts["val"]) | set(parts["test"])) == 4
    for split in ("train", "val", "test"):
        patches = getattr(splits, split)
        assert set(patches.tiles) == set(parts[split])
        expected = sum(
            len(aerial.patch_starts(s.labels.shape[0], 16, 4))
            * len(aerial.patch_starts(s.labels.shape[1], 16, 4))
            for s in splits.scenes
            if s.tile in parts[split]
        )
        assert len(patches) == expected
    other = aerial.split_by_tile([f"Tile {i}" for i in range(1, 9)], val=2, test=2, seed=0)
    again = aerial.split_by_tile([f"Tile {i}" for i in range(1, 9)], val=2, test=2, seed=0)
    assert other == again and len(other["val"]) == len(other["test"]) == 2
    assert not set(other["train"]) & (set(other["val"]) | set(other["test"]))


@pytest.mark.parametrize(
    ("val", "test", "match"),
    [
        (["Tile 1"], ["Tile 1"], "share"),
        (["Tile 9"], 1, "among"),
        (0, 1, "at least"),
        (2, 2, "left"),
    ],
)
def test_split_by_tile_rejects_bad_requests(val, test, match):
    with pytest.raises(ValueError, match=match):
        aerial.split_by_tile(["Tile 1", "Tile 2", "Tile 3"], val=val, test=test)


def test_augment_keeps_image_and_mask_aligned():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, NUM_CLASSES, (64, 9, 9), generator=g)
    x = torch.stack([y * 10, y * 10 + 1, torch.arange(81).view(9, 9).expand(64, 9, 9)], 1)
    ax, ay = aerial.augment(x, y, torch.Generator().manual_seed(1))
    assert torch.equal(ax[:, 0], ay * 10) and torch.equal(ax[:, 1], ay * 10 + 1)
    # every output is one of the 8 symmetries of its input, and several of them occur
    used = set()
    for i in range(64):
        views = [torch.rot90(x[i], k, (-2, -1)) for k in range(4)]
        views += [torch.rot90(x[i].flip(-1), k, (-2, -1)) for k in range(4)]
        hits = [k for k, v in enumerate(views) if torch.equal(v, ax[i])]
        assert hits, f"example {i} is not a flip/rotation of its input"
        used.add(hits[0])
    assert len(used) >= 6
    with pytest.raises(ValueError, match="square"):
        aerial.augment(torch.zeros(2, 3, 4, 5), torch.zeros(2, 4, 5))


def test_loader_batches_are_normalised_and_augmentation_changes_per_epoch():
    scenes = aerial.synthetic_aerial(n_tiles=1, per_tile=1, size=64, seed=0)
    patches = aerial.make_patches(scenes, size=32, name="synthetic-aerial")
    x, y = next(iter(patches.loader(4)))
    mean, std = torch.tensor(aerial.MEAN).view(3, 1, 1), torch.tensor(aerial.STD).view(3, 1, 1)
    expected = (patches.images[:4].double() / 255 - mean.double()) / std.double()
    torch.testing.assert_close(x.double(), expected, rtol=0, atol=1e-5)
    assert y.dtype == torch.long and torch.equal(y, patches.labels[:4].long())
    loader = patches.loader(4, shuffle=True, seed=0, augment=True)
    assert len(loader) == 1
    first, second = next(iter(loader)), next(iter(loader))
    assert not torch.equal(first[1], second[1])


def test_synthetic_aerial_is_deterministic_and_says_so():
    a = aerial.synthetic_aerial(n_tiles=2, per_tile=2, size=96, seed=5)
    b = aerial.synthetic_aerial(n_tiles=2, per_tile=2, size=96, seed=5)
    c = aerial.synthetic_aerial(n_tiles=2, per_tile=2, size=96, seed=6)
    assert [s.name for s in a] == [s.name for s in b] and len(a) == 4
    for sa, sb in zip(a, b, strict=True):
        assert np.array_equal(sa.image, sb.image) and np.array_equal(sa.labels, sb.labels)
    assert not all(np.array_equal(sa.labels, sc.labels) for sa, sc in zip(a, c, strict=True))
    assert all("synthetic" in s.tile for s in a)
    counts = aerial.class_counts([s.labels for s in aerial.synthetic_aerial(4, 2, 128, seed=0)])
    for name in ("Land", "Water", "Building", "Vegetation", "Road"):
        assert counts[name] > 0, f"no {name} in the synthetic scenes"
    assert counts["ignored"] == 0
    with pytest.raises(ValueError, match="size"):
        aerial.synthetic_aerial(size=8)


def test_offline_without_data_full_mode_says_where_fast_mode_falls_back(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="Humans in the Loop"):
        aerial.load_aerial(fast=False)
    splits = aerial.load_aerial(fast=True, patch_size=64, scale=0.25)
    assert splits.synthetic and "synthetic" in splits.source
    assert splits.train.source == splits.val.source == splits.test.source == splits.source
    assert len(splits.train) and len(splits.val) and len(splits.test)
    assert not set(splits.train.tiles) & (set(splits.val.tiles) | set(splits.test.tiles))


def test_class_counts_against_bincount():
    rng = np.random.default_rng(4)
    maps = [rng.choice([0, 1, 2, 3, 4, 5, IGNORE_INDEX], (7, 9)).astype(np.uint8) for _ in range(3)]
    counts = aerial.class_counts(maps)
    flat = np.concatenate([m.ravel() for m in maps])
    for i, name in enumerate(aerial.CLASS_NAMES):
        assert counts[name] == int((flat == i).sum())
    assert counts["ignored"] == int((flat == IGNORE_INDEX).sum())
    assert sum(counts.values()) == flat.size


@pytest.mark.skipif(not REAL.is_dir(), reason="the Dubai aerial imagery is not in KDLAB_DATA")
def test_real_data_set_loads_with_measured_palette():
    scenes = aerial.load_scenes(REAL, scale=0.25)
    assert len(scenes) == 72 and len({s.tile for s in scenes}) == 8
    counts = aerial.class_counts([s.labels for s in scenes])
    total = sum(counts.values())
    assert counts["Land"] / total > 0.4  # the dominant class, as the README measures
    assert all(counts[name] > 0 for name in aerial.CLASS_NAMES)
    ignored = sum(s.ignored for s in scenes)
    worst = max(scenes, key=lambda s: s.ignored)
    assert worst.name == "Tile 8/image_part_003"  # 17 % black, as the README measures
    assert 0 < ignored / (16 * total) < 0.02  # ignored is counted at full resolution
    splits = aerial.load_aerial(REAL, scale=0.25, patch_size=128, fast=False)
    assert splits.tiles["val"] == ["Tile 1"] and splits.tiles["test"] == ["Tile 8"]
    assert len(splits.train) > len(splits.test) > len(splits.val) > 0


def test_public_names_stay_importable_from_aerial():
    """Notebooks, benchmarks and tests import these from kdlab.data.aerial, wherever they live."""
    names = (
        "load_aerial PALETTE class_counts labels_to_rgb AerialSplits AerialPatches AerialScene "
        "augment extract_patches make_patches patch_starts split_by_tile load_scenes "
        "synthetic_aerial mask_to_labels normalise read_scene find_aerial MEAN STD CLASS_NAMES "
        "NUM_CLASSES IGNORE_INDEX"
    ).split()
    assert [n for n in names if not hasattr(aerial, n)] == []
    assert set(aerial.__all__) <= set(dir(aerial))
    from kdlab.data import load_aerial

    assert load_aerial is aerial.load_aerial
