"""kdlab.data.landcover: majority labels and purity against a pixel count by hand, the purity
filter, the 8 views of the square, the loader with precomputed teacher views, the synthetic
fallback that says so, and the real data's split by tile when it is present."""

import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlab.data import landcover
from kdlab.data.aerial import CLASS_NAMES
from kdlab.data.landcover import CLASSES, VIEWS, dihedral, majority_labels
from kdlab.data.patches import AerialPatches, normalise
from kdlab.losses import IGNORE_INDEX

REAL = Path(os.environ.get("KDLAB_DATA", "/nonexistent")) / "dubai-aerial"


def reference_majority(labels: np.ndarray) -> tuple[int, float]:
    """The obvious way: count the labelled pixels, take the most common (lowest on ties)."""
    counts = Counter(int(v) for v in labels.ravel() if v != IGNORE_INDEX)
    if not counts:
        return 0, 0.0
    top = max(counts.values())
    label = min(c for c, n in counts.items() if n == top)
    return label, top / sum(counts.values())


def random_maps(n: int, size: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    maps = rng.integers(0, len(CLASS_NAMES), (n, size, size))
    dominant = rng.integers(0, len(CLASS_NAMES), n)  # make some patches nearly pure
    pure = rng.random((n, size, size)) < rng.random((n, 1, 1))
    maps = np.where(pure, dominant[:, None, None], maps)
    maps[rng.random((n, size, size)) < 0.1] = IGNORE_INDEX
    maps[0] = IGNORE_INDEX  # a patch without a labelled pixel
    return torch.from_numpy(maps.astype(np.uint8))


def test_majority_and_purity_match_a_count_by_hand():
    maps = random_maps(60, 6, seed=1)
    label, purity = majority_labels(maps)
    for i, m in enumerate(maps.numpy()):
        want_label, want_purity = reference_majority(m)
        assert int(label[i]) == want_label, i
        assert float(purity[i]) == pytest.approx(want_purity), i


def test_majority_labels_refuses_bad_input():
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        majority_labels(torch.zeros(4, 4, dtype=torch.uint8))
    with pytest.raises(ValueError, match="outside"):
        majority_labels(torch.full((1, 2, 2), 7, dtype=torch.uint8))


def patches_of(maps: torch.Tensor, seed: int = 0) -> AerialPatches:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (len(maps), 3, *maps.shape[1:]), generator=g).to(torch.uint8)
    tiles = tuple(f"Tile {i % 3 + 1}" for i in range(len(maps)))
    return AerialPatches(images, maps, tiles, "test-aerial")


@pytest.mark.parametrize("min_purity", [0.0, 0.5, 0.8, 1.0])
def test_the_filter_keeps_pure_labelled_patches_only(min_purity):
    maps = random_maps(80, 5, seed=2)
    data = landcover.landcover_from_patches(patches_of(maps), min_purity)
    kept = []
    for i, m in enumerate(maps.numpy()):
        label, purity = reference_majority(m)
        if purity > 0 and purity >= min_purity and CLASS_NAMES[label] != "Unlabeled":
            kept.append((i, label, purity))
    assert len(data) == len(kept)
    assert data.labels.tolist() == [label for _, label, _ in kept]
    assert data.purity.tolist() == pytest.approx([p for _, _, p in kept])
    idx = torch.tensor([i for i, _, _ in kept], dtype=torch.long)
    assert torch.equal(data.maps, maps[idx])
    assert data.tiles == tuple(f"Tile {i % 3 + 1}" for i, _, _ in kept)
    assert sum(data.class_counts().values()) == len(data)
    assert "Unlabeled" not in CLASSES and len(CLASSES) == landcover.NUM_CLASSES == 5


def test_min_purity_out_of_range_is_refused():
    with pytest.raises(ValueError, match="min_purity"):
        landcover.landcover_from_patches(patches_of(random_maps(3, 4, 0)), 1.5)


def test_the_eight_views_are_the_symmetries_of_the_square():
    x = torch.arange(3 * 4 * 4).reshape(1, 3, 4, 4)
    expected = []
    for k in range(VIEWS):
        a = x[0].numpy()[:, :, ::-1] if k >= 4 else x[0].numpy()
        expected.append(np.rot90(a, k % 4, axes=(1, 2)))
    views = [dihedral(x, k)[0].numpy() for k in range(VIEWS)]
    for got, want in zip(views, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len({v.tobytes() for v in views}) == VIEWS  # all 8 differ on an asymmetric image
    with pytest.raises(ValueError, match="view"):
        dihedral(x, 8)


def small_set(n: int = 20) -> landcover.LandCoverSet:
    maps = torch.zeros(n, 4, 4, dtype=torch.uint8)
    maps[:, 0, 0] = torch.arange(n) % 5  # the majority stays 0 (Land): every patch is kept
    data = landcover.landcover_from_patches(patches_of(maps, seed=3), 0.5)
    assert len(data) == n
    return data


def test_loader_hands_each_view_the_teacher_logits_of_that_view():
    data = small_set()
    # logits that name the patch and the view they belong to
    view_logits = torch.tensor([[[i, k] for k in range(VIEWS)] for i in range(len(data))]).float()
    seen_views = set()
    for epoch in range(2):
        for x, y, logits in data.loader(
            6, shuffle=True, seed=epoch, augment=True, view_logits=view_logits
        ):
            for xj, yj, (i, k) in zip(x, y, logits.long().tolist(), strict=True):
                want = normalise(dihedral(data.images[i : i + 1], k))[0]
                assert torch.equal(xj, want)
                assert int(yj) == int(data.labels[i])
                seen_views.add(k)
    assert len(seen_views) > 1  # augmentation draws several views
    plain = next(iter(data.loader(len(data), view_logits=view_logits)))
    assert torch.equal(plain[0], normalise(data.images))
    assert torch.equal(plain[2], view_logits[:, 0])  # no augmentation: view 0


def test_loader_refuses_view_logits_of_the_wrong_shape_and_empty_sets():
    data = small_set(5)
    with pytest.raises(ValueError, match="view_logits"):
        data.loader(2, view_logits=torch.zeros(5, 4, 3))
    with pytest.raises(ValueError, match="empty"):
        data.take(torch.tensor([], dtype=torch.long)).loader(2)


def test_fast_mode_without_the_data_falls_back_to_synthetic_scenes_and_says_so(tmp_path):
    splits = landcover.load_landcover(
        tmp_path, patch_size=16, scale=0.25, min_purity=0.5, fast=True
    )
    assert splits.synthetic
    assert "SYNTHETIC" in splits.describe()
    tiles = [set(getattr(splits, s).tiles) for s in ("train", "val", "test")]
    assert not (tiles[0] & tiles[1] or tiles[0] & tiles[2] or tiles[1] & tiles[2])
    assert all(len(getattr(splits, s)) <= splits.total[s] for s in splits.total)


def test_full_mode_without_the_data_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError):
        landcover.load_landcover(tmp_path / "missing", fast=False)


@pytest.mark.skipif(not REAL.is_dir(), reason="the Dubai aerial imagery is not on this machine")
def test_real_data_is_split_by_tile_with_pure_patches():
    splits = landcover.load_landcover(patch_size=32, scale=0.25, min_purity=0.8)
    assert not splits.synthetic
    assert splits.tiles["val"] == ["Tile 1"] and splits.tiles["test"] == ["Tile 8"]
    for name in ("train", "val", "test"):
        data = getattr(splits, name)
        assert set(data.tiles) <= set(splits.tiles[name])
        assert bool((data.purity >= 0.8).all())
        label, purity = majority_labels(data.maps)
        assert torch.equal(label, data.labels) and torch.equal(purity, data.purity)
