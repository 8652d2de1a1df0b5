"""MNIST and Fashion-MNIST, found offline first.

They are searched in this order:

1. ``$KDLAB_DATA`` (and its ``fashion-mnist/``, ``FashionMNIST/raw/``, ``mnist/``,
   ``MNIST/raw/`` sub-folders; ``FashionMNIST/raw`` and ``MNIST/raw`` are the folders
   torchvision's own download writes under its ``root``), holding the four
   ``*-idx?-ubyte[.gz]`` files;
2. system folders: ``/usr/share/datasets/fashion-mnist`` (Debian's
   ``dataset-fashion-mnist`` package);
3. the kdlab cache, ``<cache>/data/{FashionMNIST,MNIST}/raw`` (and ``fashion-mnist/``,
   ``mnist/``), where a torchvision download lands; a copy there is used offline too, but
   the download itself is tried only when online (``KDLAB_OFFLINE=1`` forbids it).

With nothing found, :func:`load_mnist_family` raises ``FileNotFoundError`` that says how
to get the data, or, when ``synthetic_fallback=True``, returns a small synthetic set whose
``name`` says it is synthetic.
"""

from __future__ import annotations

import gzip
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from kdlab import runtime
from kdlab.data.base import ExampleSet

__all__ = [
    "ImageSet",
    "load_mnist_family",
    "find_mnist_family",
    "read_idx",
    "synthetic_digits",
    "FASHION_CLASSES",
    "MNIST_CLASSES",
]

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = tuple(str(i) for i in range(10))

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SUBFOLDERS = {
    "fashion-mnist": ("", "fashion-mnist", "fashion_mnist", "FashionMNIST/raw"),
    "mnist": ("", "mnist", "MNIST/raw"),
}
_SYSTEM_FOLDERS = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
# Mean and standard deviation of the training pixels in [0, 1].
_NORMALISATION = {"fashion-mnist": (0.2860, 0.3530), "mnist": (0.1307, 0.3081)}
_HOW_TO_GET = {
    "fashion-mnist": (
        "Install Debian's package (`apt-get install -y dataset-fashion-mnist`), or put the four "
        "*-idx?-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist in a folder "
        "and set KDLAB_DATA to it (a torchvision download's FashionMNIST/raw folder under "
        "KDLAB_DATA works too), or run once with internet so torchvision can download them."
    ),
    "mnist": (
        "Put the four MNIST *-idx?-ubyte.gz files in $KDLAB_DATA/mnist (or a torchvision "
        "download's MNIST/raw folder under KDLAB_DATA), or run once with internet so "
        "torchvision can download them."
    ),
}


@dataclass
class ImageSet(ExampleSet):
    """Images ``x`` (N, 1, 28, 28) normalised, labels ``y`` (N,), and where they came from."""

    x: Tensor
    y: Tensor
    name: str
    classes: tuple[str, ...]
    source: str

    _per_example = ("x", "y")

    def without_class(self, label: int) -> ImageSet:
        """The same set with every example of class ``label`` removed."""
        return self.take((self.y != label).nonzero().flatten())


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not, into a NumPy array.

    Format: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then
    each dimension as a big-endian int32, then the data.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile) as err:  # an interrupted download, a misnamed file
        raise ValueError(f"{path} is truncated or not gzip-compressed: {err}") from err
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated: its header is shorter than {ndim} dimensions")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {body.size} bytes")
    return body.reshape(shape)


def _find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _candidate_folders(name: str) -> list[Path]:
    folders: list[Path] = []
    user = runtime.data_dir()
    if user is not None:
        folders += [user / sub if sub else user for sub in _SUBFOLDERS[name]]
    folders += list(_SYSTEM_FOLDERS[name])
    cache = runtime.cache_dir() / "data"
    folders += [cache / sub for sub in _SUBFOLDERS[name] if sub]
    return folders


def find_mnist_family(name: str) -> Path | None:
    """The first folder on the search path that holds all four files of ``name``."""
    _check_name(name)
    for folder in _candidate_folders(name):
        stems = _FILES["train"] + _FILES["test"]
        if all(_find_file(folder, stem) for stem in stems):
            return folder
    return None


def _check_name(name: str) -> None:
    if name not in _SUBFOLDERS:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(_SUBFOLDERS)}")


def _download(name: str) -> Path | None:
    """Let torchvision download ``name`` into the cache; None when that fails (offline)."""
    if runtime.offline():
        return None
    from torchvision import datasets

    cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.MNIST
    root = runtime.cache_dir() / "data"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cls(root, train=True, download=True)
            cls(root, train=False, download=True)
    except Exception:  # any network or mirror failure means "not available"
        return None
    return find_mnist_family(name)


def load_mnist_family(
    name: str = "fashion-mnist",
    split: str = "train",
    *,
    limit: int | None = None,
    seed: int = 0,
    synthetic_fallback: bool = False,
    download: bool = True,
) -> ImageSet:
    """Load MNIST or Fashion-MNIST as normalised tensors, offline first.

    ``limit`` keeps a random subset of that many examples (seeded). With no copy found
    and no download possible, raise ``FileNotFoundError`` saying how to get the data, or
    return :func:`synthetic_digits` when ``synthetic_fallback`` is set.
    """
    _check_name(name)
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = find_mnist_family(name) or (_download(name) if download else None)
    if folder is None:
        if synthetic_fallback:
            n = limit or (2000 if split == "train" else 500)
            return synthetic_digits(n, seed=seed + (0 if split == "train" else 1))
        searched = "\n  ".join(str(p) for p in _candidate_folders(name))
        raise FileNotFoundError(f"{name} not found; searched:\n  {searched}\n{_HOW_TO_GET[name]}")
    images_stem, labels_stem = _FILES[split]
    images = read_idx(_find_file(folder, images_stem))
    labels = read_idx(_find_file(folder, labels_stem))
    mean, std = _NORMALISATION[name]
    x = (torch.from_numpy(images.copy()).float().div_(255).sub_(mean).div_(std)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    classes = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
    return ImageSet(x, y, name, classes, str(folder)).subset(limit, seed)


def synthetic_digits(n: int = 2000, seed: int = 0, noise: float = 0.35) -> ImageSet:
    """A small synthetic 10-class set of 28x28 images, for tests and offline fast runs.

    Each class is a fixed random smooth template; examples are that template shifted by
    up to 2 pixels plus Gaussian noise, so classes overlap a little and a teacher is not
    perfect. Its ``name`` is ``"synthetic-digits"``: results on it say nothing about MNIST.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    g = torch.Generator().manual_seed(1234)  # templates are the same for every split
    coarse = torch.rand(10, 1, 7, 7, generator=g)
    templates = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear")
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    shifts = torch.randint(-2, 3, (n, 2), generator=g)
    x = templates[y].clone()
    for i in range(n):
        x[i] = torch.roll(x[i], shifts=(int(shifts[i, 0]), int(shifts[i, 1])), dims=(1, 2))
    x = x + noise * torch.randn(x.shape, generator=g)
    x = (x - x.mean()) / x.std()
    classes = tuple(f"class {i}" for i in range(10))
    return ImageSet(x, y, "synthetic-digits", classes, "generated (synthetic)")
