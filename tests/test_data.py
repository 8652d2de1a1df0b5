"""kdlab.data: the IDX reader against torchvision's, the offline search path, batching."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets.mnist import read_sn3_pascalvincent_tensor

from kdlab.data import ImageSet, batches, load_mnist_family, read_idx, synthetic_digits
from kdlab.data import mnist as data

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format written from its definition: 0, 0, type 0x08, ndim, big-endian dims."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_mnist_folder(folder: Path, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n, images, labels in (
        ("train", n_train, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ("test", n_test, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    ):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{images}.gz", x)
        write_idx(folder / labels, y)  # one of each: compressed and plain
        arrays[split] = (x, y)
    return arrays


@pytest.fixture
def no_system_data(monkeypatch, tmp_path):
    """Nothing on the search path: empty KDLAB_DATA and cache, no system folders."""
    monkeypatch.setattr(data, "_SYSTEM_FOLDERS", {"mnist": (), "fashion-mnist": ()})
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KDLAB_OFFLINE", "1")
    return tmp_path / "data"


# ------------------------------------------------------------------ read_idx


@pytest.mark.parametrize("shape", [(7,), (3, 28, 28), (2, 5, 4)])
def test_read_idx_matches_torchvision_reader(tmp_path, shape):
    array = np.random.default_rng(len(shape)).integers(0, 256, shape, dtype=np.uint8)
    plain = write_idx(tmp_path / "data-idx-ubyte", array)
    packed = write_idx(tmp_path / "data-idx-ubyte.gz", array)
    reference = read_sn3_pascalvincent_tensor(str(plain)).numpy()
    assert reference.shape == shape
    for path in (plain, packed):
        got = read_idx(path)
        assert got.dtype == np.uint8 and got.shape == shape
        np.testing.assert_array_equal(got, reference)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (idx_bytes(np.zeros((4, 3, 3), np.uint8))[:-5], "truncated"),
        (idx_bytes(np.zeros((4, 3, 3), np.uint8)) + b"\x00", "truncated"),
        (bytes([0, 0, 8, 3, 0, 0, 0]), "truncated"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\x00" * 4, "magic"),
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]), "magic"),
        (b"\x00\x00", "magic"),
    ],
    ids=["body-short", "body-long", "header-short", "float-type", "bad-first-byte", "tiny"],
)
def test_read_idx_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_idx(path)
    packed = tmp_path / "bad-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(content))
    with pytest.raises(ValueError, match=match):
        read_idx(packed)


def test_read_idx_rejects_broken_gzip(tmp_path):
    raw = idx_bytes(np.arange(200, dtype=np.uint8))
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(gzip.compress(raw)[:-10])
    misnamed = tmp_path / "plain-idx1-ubyte.gz"
    misnamed.write_bytes(raw)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(cut)
    with pytest.raises(ValueError, match="not gzip"):
        read_idx(misnamed)


# ------------------------------------------------------------------ load_mnist_family


@pytest.mark.parametrize("subfolder", ["", "mnist", "MNIST/raw"])
def test_load_mnist_family_from_kdlab_data(no_system_data, subfolder):
    arrays = write_mnist_folder(no_system_data / subfolder if subfolder else no_system_data)
    for split in ("train", "test"):
        x_raw, y_raw = arrays[split]
        got = load_mnist_family("mnist", split)
        assert not got.synthetic and got.name == "mnist" and len(got) == len(y_raw)
        assert got.x.shape == (len(y_raw), 1, 28, 28) and got.x.dtype == torch.float32
        expected = (x_raw.astype(np.float64) / 255 - MNIST_MEAN) / MNIST_STD
        np.testing.assert_allclose(got.x[:, 0].double().numpy(), expected, atol=1e-5)
        assert got.y.dtype == torch.long
        np.testing.assert_array_equal(got.y.numpy(), y_raw)
        assert got.classes == tuple(str(i) for i in range(10))
    assert data.find_mnist_family("mnist") == (
        no_system_data / subfolder if subfolder else no_system_data
    )


def test_load_mnist_family_limit_is_a_seeded_subset(no_system_data):
    x_raw, y_raw = write_mnist_folder(no_system_data, n_train=30)["train"]
    full = load_mnist_family("mnist")
    a, b = (
        load_mnist_family("mnist", limit=10, seed=1),
        load_mnist_family("mnist", limit=10, seed=1),
    )
    c = load_mnist_family("mnist", limit=10, seed=2)
    assert len(a) == 10 and torch.equal(a.x, b.x) and not torch.equal(a.x, c.x)
    rows = {tuple(row.flatten().tolist()) for row in full.x}
    assert all(tuple(row.flatten().tolist()) in rows for row in a.x)


def test_missing_file_means_not_found(no_system_data):
    write_mnist_folder(no_system_data)
    (no_system_data / "t10k-labels-idx1-ubyte").unlink()
    assert data.find_mnist_family("mnist") is None
    with pytest.raises(FileNotFoundError):
        load_mnist_family("mnist")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_offline_and_nothing_found_says_how_to_get_it(no_system_data, name):
    with pytest.raises(FileNotFoundError, match="KDLAB_DATA") as info:
        load_mnist_family(name)
    assert name in str(info.value) and str(no_system_data) in str(info.value)
    if name == "fashion-mnist":
        assert "dataset-fashion-mnist" in str(info.value)


def test_synthetic_fallback_says_it_is_synthetic(no_system_data):
    train = load_mnist_family("fashion-mnist", synthetic_fallback=True, limit=64)
    test = load_mnist_family("fashion-mnist", "test", synthetic_fallback=True, limit=32)
    for got, n in ((train, 64), (test, 32)):
        assert got.synthetic and "synthetic" in got.name and "synthetic" in got.source
        assert len(got) == n and got.x.shape == (n, 1, 28, 28)
    assert not torch.equal(train.x[:32], test.x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"name": "cifar"}, "unknown data set"), ({"split": "val"}, "split")],
)
def test_load_mnist_family_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_mnist_family(**kwargs)


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist missing")
def test_real_fashion_mnist_loads_normalised(monkeypatch):
    monkeypatch.delenv("KDLAB_DATA", raising=False)
    train = load_mnist_family("fashion-mnist", "train", download=False)
    test = load_mnist_family("fashion-mnist", "test", download=False)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.x.shape == (60000, 1, 28, 28) and not train.synthetic
    assert abs(float(train.x.mean())) < 0.01 and abs(float(train.x.std()) - 1) < 0.01
    assert torch.equal(torch.bincount(test.y), torch.full((10,), 1000))


# ------------------------------------------------------------------ synthetic and ImageSet


def test_synthetic_digits_is_seeded_and_normalised():
    a, b, c = synthetic_digits(200, seed=0), synthetic_digits(200, seed=0), synthetic_digits(200, 1)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert a.synthetic and a.x.shape == (200, 1, 28, 28) and set(a.y.tolist()) <= set(range(10))
    assert abs(float(a.x.mean())) < 1e-4 and abs(float(a.x.std()) - 1) < 1e-4
    with pytest.raises(ValueError, match="positive"):
        synthetic_digits(0)


def small_set(n: int = 40) -> ImageSet:
    x = torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1).expand(n, 1, 28, 28)
    return ImageSet(x.clone(), torch.arange(n) % 4, "tiny", ("a", "b", "c", "d"), "test")


def test_subset_is_seeded_without_repeats():
    s = small_set()
    a, b = s.subset(15, seed=3), s.subset(15, seed=3)
    assert len(a) == 15 and torch.equal(a.y, b.y) and torch.equal(a.x, b.x)
    ids = a.x[:, 0, 0, 0].long()
    assert len(set(ids.tolist())) == 15
    assert torch.equal(a.y, s.y[ids])  # images and labels stay paired
    assert s.subset(None) is s and s.subset(1000) is s
    assert not torch.equal(s.subset(15, seed=4).x, a.x)
    with pytest.raises(ValueError, match="positive"):
        s.subset(0)


def test_without_class_removes_exactly_that_class():
    s = small_set()
    kept = s.without_class(2)
    assert len(kept) == len(s) - int((s.y == 2).sum()) and 2 not in kept.y.tolist()
    ids = kept.x[:, 0, 0, 0].long()
    assert torch.equal(kept.y, s.y[ids]) and (kept.name, kept.classes) == (s.name, s.classes)


# ------------------------------------------------------------------ batches


def test_batches_shapes_and_order():
    x, y, z = torch.randn(10, 3), torch.arange(10), torch.randn(10, 5)
    got = list(batches(x, y, z, batch_size=4))
    assert [len(b[0]) for b in got] == [4, 4, 2]
    assert all(len(b) == 3 and b[2].shape[1:] == (5,) for b in got)
    assert torch.equal(torch.cat([b[1] for b in got]), y)
    assert torch.equal(torch.cat([b[0] for b in got]), x)


def test_batches_shuffle_is_a_seeded_permutation():
    x, y = torch.arange(50).float().unsqueeze(1), torch.arange(50)

    def order(seed):
        return torch.cat([b[1] for b in batches(x, y, batch_size=8, shuffle=True, seed=seed)])

    first = order(0)
    assert sorted(first.tolist()) == list(range(50)) and not torch.equal(first, y)
    assert torch.equal(first, order(0)) and not torch.equal(first, order(1))
    pairs = next(iter(batches(x, y, batch_size=8, shuffle=True, seed=0)))
    assert torch.equal(pairs[0][:, 0].long(), pairs[1])  # rows stay paired


@pytest.mark.parametrize(
    ("tensors", "batch_size", "match"),
    [
        ((torch.zeros(5, 2), torch.zeros(4)), 2, "same length"),
        ((torch.zeros(5, 2), torch.zeros(5), torch.zeros(6)), 2, "same length"),
        ((torch.zeros(0, 2), torch.zeros(0)), 2, "empty"),
        ((torch.zeros(5, 2),), 2, "at least inputs and labels"),
        ((torch.zeros(5, 2), torch.zeros(5)), 0, "batch_size"),
    ],
)
def test_batches_bad_arguments(tensors, batch_size, match):
    with pytest.raises(ValueError, match=match):
        batches(*tensors, batch_size=batch_size)
