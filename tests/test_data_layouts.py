"""The public data layouts, each on a small copy written here: SST-2 exactly as GLUE
distributes it (labelled train and dev, unlabelled test) and with a labelled test, the Dubai
imagery as its public zip unpacks, and MNIST / Fashion-MNIST in torchvision's raw folders."""

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdlab.data import mnist
from kdlab.data import sst2 as text
from kdlab.data.scenes import IGNORE_INDEX, find_aerial, load_scenes
from kdlab.data.sst2 import load_sst2, load_sst2_splits

# ------------------------------------------------------------------ SST-2

WORDS = ("good", "bad", "long", "funny", "dull", "sharp", "warm", "cold", "odd", "plain")


def sentences(n: int, prefix: str) -> list[str]:
    """``n`` distinct sentences, deterministic."""
    return [f"{prefix} {WORDS[i % 10]} {WORDS[(i // 10) % 10]} {i}" for i in range(n)]


def write_labelled(path: Path, rows: list[tuple[str, int]]) -> None:
    body = "".join(f"{s} \t{y}\n" for s, y in rows)  # GLUE's train.tsv has a space before TAB
    path.write_text("sentence\tlabel\n" + body, encoding="utf-8")


def write_glue(folder: Path, n_train: int = 1200, n_dev: int = 40, n_test: int = 25) -> dict:
    """SST-2 as GLUE's SST-2.zip unpacks: train.tsv and dev.tsv labelled, test.tsv
    ``index<TAB>sentence`` without labels. Train has a few repeated phrases, as GLUE's has."""
    folder.mkdir(parents=True)
    train = [(s, i % 2) for i, s in enumerate(sentences(n_train, "train"))]
    train += [train[i] for i in range(0, 60, 3)]  # 20 repeats
    dev = [(s, (i // 3) % 2) for i, s in enumerate(sentences(n_dev, "dev"))]
    write_labelled(folder / "train.tsv", train)
    write_labelled(folder / "dev.tsv", dev)
    test = "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences(n_test, "test")))
    (folder / "test.tsv").write_text("index\tsentence\n" + test, encoding="utf-8")
    return {"train": train, "dev": dev}


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("name", ["SST-2", "sst2", "glue_data/SST-2"])
def test_glue_layout_gives_three_labelled_splits(data_root, name):
    rows = write_glue(data_root / name)
    assert text.find_sst2() == data_root / name
    assert text.sst2_layout(data_root / name) == text.GLUE
    splits = load_sst2_splits()
    train, validation, test = splits
    assert not splits.labelled_test and splits.layout == text.GLUE
    # test is dev.tsv, whole and in order
    assert test.sentences == [s for s, _ in rows["dev"]]
    assert test.labels.tolist() == [y for _, y in rows["dev"]]
    # validation: 872 distinct training sentences; train: every other training example
    assert len(validation) == text.VALIDATION_SIZE == 872
    assert len(set(validation.sentences)) == 872
    labels = dict(rows["train"])
    pairs = zip(validation.sentences, validation.labels.tolist(), strict=True)
    assert all(labels[s] == y for s, y in pairs)
    assert not set(train.sentences) & set(validation.sentences)
    assert set(train.sentences) | set(validation.sentences) == set(labels)
    assert len(train) == sum(s not in set(validation.sentences) for s, _ in rows["train"])
    assert 1200 + 20 - 872 - 20 <= len(train) <= 1200 + 20 - 872
    # it says so
    assert "dev.tsv" in test.source and "test set" in test.source
    assert "held out" in validation.source and "train.tsv" in validation.source
    assert "held out" in train.source
    assert "GLUE" in splits.note and "dev.tsv" in splits.note and "872" in splits.note
    assert train.name == validation.name == test.name == "sst2" and not train.synthetic


def test_glue_hold_out_is_seeded(data_root):
    write_glue(data_root / "SST-2")
    a, b = load_sst2_splits(), load_sst2_splits()
    assert a.validation.sentences == b.validation.sentences
    assert a.train.sentences == b.train.sentences
    other = load_sst2_splits(holdout_seed=1)
    assert other.validation.sentences != a.validation.sentences
    assert other.test.sentences == a.test.sentences
    small = load_sst2_splits(validation_size=100, eval_limit=30, seed=2)
    assert len(small.validation) == 30 and len(small.test) == 30
    again = load_sst2_splits(validation_size=100, eval_limit=30, seed=2)
    assert small.validation.sentences == again.validation.sentences
    assert small.test.sentences == again.test.sentences
    assert set(small.test.sentences) <= set(a.test.sentences)


def test_glue_layout_test_split_alone_says_it_has_no_labels(data_root):
    rows = write_glue(data_root / "SST-2")
    assert len(load_sst2("train")) == len(rows["train"])  # the file, as it is
    assert load_sst2("dev").sentences == [s for s, _ in rows["dev"]]
    with pytest.raises(ValueError, match="GLUE's unlabelled test.tsv") as info:
        load_sst2("test")
    assert "load_sst2_splits" in str(info.value) and "sentence<TAB>label" in str(info.value)
    with pytest.raises(ValueError, match="GLUE's unlabelled test split"):
        text.read_tsv(data_root / "SST-2" / "test.tsv")


def test_without_test_tsv_splits_as_glue(data_root):
    write_glue(data_root / "SST-2")
    (data_root / "SST-2" / "test.tsv").unlink()
    splits = load_sst2_splits(validation_size=50)
    assert splits.layout == text.NO_TEST and not splits.labelled_test
    assert len(splits.validation) == 50 and len(splits.test) == 40


def test_unknown_test_header_and_missing_dev_are_named(data_root):
    folder = data_root / "SST-2"
    write_glue(folder)
    (folder / "test.tsv").write_text("id\ttext\n0\tfine\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'id<TAB>text'.*'index<TAB>sentence'"):
        load_sst2_splits()
    (folder / "dev.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="holds test.tsv, train.tsv; expected"):
        load_sst2_splits()


def test_too_small_train_for_the_hold_out(data_root):
    write_glue(data_root / "SST-2", n_train=800)
    with pytest.raises(ValueError, match="800 distinct sentences: too few to hold out 872"):
        load_sst2_splits()


def test_labelled_test_layout_is_unchanged(data_root):
    folder = data_root / "sst2"
    rows = write_glue(folder)
    labelled_test = [(s, i % 2) for i, s in enumerate(sentences(30, "test"))]
    write_labelled(folder / "test.tsv", labelled_test)
    # a GLUE copy beside it is not used: sst2/ comes first
    write_glue(data_root / "SST-2", n_train=900)
    assert text.sst2_layout(folder) == text.LABELLED
    splits = load_sst2_splits(eval_limit=25, seed=3)
    assert splits.labelled_test and splits.layout == text.LABELLED
    train, validation, test = splits
    for got, want in (
        (train, load_sst2("train")),
        (validation, load_sst2("dev", limit=25, seed=3)),
        (test, load_sst2("test", limit=25, seed=3)),
    ):
        assert got.sentences == want.sentences and torch.equal(got.labels, want.labels)
        assert got.source == str(folder) and got.name == "sst2"
    assert len(train) == len(rows["train"]) and len(validation) == len(test) == 25
    assert set(test.sentences) <= {s for s, _ in labelled_test}


def test_synthetic_fallback_matches_the_split_by_split_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "empty"))
    splits = load_sst2_splits(synthetic_fallback=True, eval_limit=50, seed=4)
    assert splits.labelled_test and splits.train.synthetic
    want = (
        load_sst2("train", synthetic_fallback=True),
        load_sst2("dev", synthetic_fallback=True, limit=50, seed=4),
        load_sst2("test", synthetic_fallback=True, limit=50, seed=4),
    )
    for got, expected in zip(splits, want, strict=True):
        assert got.sentences == expected.sentences
    with pytest.raises(FileNotFoundError, match="SST-2.zip"):
        load_sst2_splits()


# ------------------------------------------------------------------ Dubai aerial imagery

MEASURED = ("#8429F6", "#E2A929", "#3C1098", "#FEDD3A", "#6EC1E4", "#9B9B9B")  # README
CLASSES_JSON = {  # as in the archive: other colours than the masks use
    "classes": [
        {"title": "Water", "shape": "polygon", "color": "#50E3C2"},
        {"title": "Land (unpaved area)", "shape": "polygon", "color": "#F5A623"},
        {"title": "Road", "shape": "polygon", "color": "#DE597F"},
        {"title": "Building", "shape": "polygon", "color": "#D0021B"},
        {"title": "Vegetation", "shape": "polygon", "color": "#417505"},
        {"title": "Unlabeled", "shape": "polygon", "color": "#9B9B9B"},
    ]
}
UNPACKED = "Semantic segmentation dataset"


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def write_unpacked_zip(parent: Path) -> dict[str, np.ndarray]:
    """Two tiny tiles as the public zip unpacks: ``Semantic segmentation dataset/Tile N/
    images/image_part_001.jpg`` and ``masks/image_part_001.png``, plus classes.json."""
    root = parent / UNPACKED
    root.mkdir(parents=True)
    (root / "classes.json").write_text(json.dumps(CLASSES_JSON), encoding="utf-8")
    rng = np.random.default_rng(0)
    truth = {}
    for tile, shape in (("Tile 1", (5, 7)), ("Tile 2", (6, 4))):
        labels = (np.arange(shape[0] * shape[1]) % 6).reshape(shape).astype(np.uint8)
        mask = np.array([rgb(h) for h in MEASURED], dtype=np.uint8)[labels]
        if tile == "Tile 2":
            mask[0, 0] = (0, 0, 0)  # black: not a class
            labels[0, 0] = IGNORE_INDEX
        for sub in ("images", "masks"):
            (root / tile / sub).mkdir(parents=True)
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / tile / "images" / "image_part_001.jpg")
        Image.fromarray(mask).save(root / tile / "masks" / "image_part_001.png")
        truth[f"{tile}/image_part_001"] = labels
    return truth


def check_scenes(scenes, truth) -> None:
    assert [s.name for s in scenes] == sorted(truth)
    for scene in scenes:
        np.testing.assert_array_equal(scene.labels, truth[scene.name])
        assert scene.image.shape == (*truth[scene.name].shape, 3)
    assert [s.ignored for s in scenes] == [0, 1]


@pytest.mark.parametrize("parent", ["", "dubai-aerial"])
def test_dubai_zip_as_unpacked_under_kdlab_data(data_root, parent):
    truth = write_unpacked_zip(data_root / parent if parent else data_root)
    expected = (data_root / parent if parent else data_root) / UNPACKED
    assert find_aerial() == expected
    check_scenes(load_scenes(), truth)


def test_dubai_zip_as_unpacked_in_a_named_folder_or_the_cache(tmp_path, monkeypatch):
    truth = write_unpacked_zip(tmp_path / "downloads")
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    assert find_aerial() is None
    assert find_aerial(tmp_path / "downloads") == tmp_path / "downloads" / UNPACKED
    check_scenes(load_scenes(tmp_path / "downloads"), truth)
    write_unpacked_zip(tmp_path / "cache" / "data")
    assert find_aerial() == tmp_path / "cache" / "data" / UNPACKED


def test_dubai_not_found_names_the_places_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match=UNPACKED) as info:
        load_scenes()
    assert str(tmp_path / "nothing" / "dubai-aerial") in str(info.value)


# ------------------------------------------------------------------ MNIST, torchvision layout

STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx(array: np.ndarray) -> bytes:
    """The IDX format from its definition: 0, 0, type 0x08, ndim, big-endian dims, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_torchvision_raw(root: Path, folder: str) -> dict:
    """``root/<folder>/raw`` as torchvision's download leaves it: each file extracted and
    its ``.gz`` beside it."""
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(len(folder))
    arrays = {}
    for split, n in (("train", 9), ("test", 4)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        for stem, array in zip(STEMS[split], (x, y), strict=True):
            (raw / stem).write_bytes(idx(array))
            (raw / f"{stem}.gz").write_bytes(gzip.compress(idx(array)))
        arrays[split] = (x, y)
    return arrays


@pytest.fixture
def no_system_folders(monkeypatch, tmp_path):
    monkeypatch.setattr(mnist, "_SYSTEM_FOLDERS", {"mnist": (), "fashion-mnist": ()})
    monkeypatch.setenv("KDLAB_OFFLINE", "1")
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("where", ["kdlab-data", "cache"])
@pytest.mark.parametrize(
    ("name", "folder", "mean", "std"),
    [("fashion-mnist", "FashionMNIST", 0.2860, 0.3530), ("mnist", "MNIST", 0.1307, 0.3081)],
)
def test_torchvision_raw_layout(
    no_system_folders, tmp_path, monkeypatch, where, name, folder, mean, std
):
    if where == "kdlab-data":
        monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "data"))
        root = tmp_path / "data"
    else:
        monkeypatch.delenv("KDLAB_DATA", raising=False)
        root = tmp_path / "cache" / "data"
    arrays = write_torchvision_raw(root, folder)
    assert mnist.find_mnist_family(name) == root / folder / "raw"
    other = "mnist" if name == "fashion-mnist" else "fashion-mnist"
    assert mnist.find_mnist_family(other) is None  # the other family's folder is not taken
    for split, (x, y) in arrays.items():
        got = mnist.load_mnist_family(name, split, download=False)
        assert got.name == name and got.source == str(root / folder / "raw")
        np.testing.assert_array_equal(got.y.numpy(), y)
        expected = (x.astype(np.float64) / 255 - mean) / std
        np.testing.assert_allclose(got.x[:, 0].double().numpy(), expected, atol=1e-5)
