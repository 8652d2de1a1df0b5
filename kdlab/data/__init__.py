"""Data sets, found offline first, each with a synthetic stand-in that says it is synthetic.

- ``base``: :func:`batches`, a fast loader over in-memory tensors, and :class:`ExampleSet`,
  the base of the containers below (provenance, ``len``, seeded ``subset``, ``loader``);
- ``mnist``: MNIST and Fashion-MNIST (:class:`ImageSet`, :func:`load_mnist_family`);
- ``aerial``: the Dubai aerial imagery for segmentation, split by tile and cut into
  patches (:func:`load_aerial`), built on ``scenes`` (classes, palette, reading the
  images, the synthetic scenes) and ``patches`` (cutting, normalisation, augmentation,
  :class:`AerialPatches` and its loader);
- ``landcover``: the same patches as land-cover classification, each labelled by the
  majority class of its mask, impure patches dropped (:func:`load_landcover`);
- ``sst2``: SST-2 sentences (:class:`SentenceSet`, :func:`load_sst2`);
- ``tokenizer``: a WordPiece tokenizer trained here, and encoded sentences.
"""

from kdlab.data.aerial import AerialSplits, load_aerial
from kdlab.data.base import ExampleSet, batches
from kdlab.data.landcover import LandCoverSet, LandCoverSplits, load_landcover
from kdlab.data.mnist import (
    FASHION_CLASSES,
    MNIST_CLASSES,
    ImageSet,
    find_mnist_family,
    load_mnist_family,
    read_idx,
    synthetic_digits,
)
from kdlab.data.patches import AerialPatches
from kdlab.data.sst2 import SentenceSet, load_sst2, synthetic_sentiment

__all__ = [
    "batches",
    "ExampleSet",
    "ImageSet",
    "load_mnist_family",
    "find_mnist_family",
    "read_idx",
    "synthetic_digits",
    "FASHION_CLASSES",
    "MNIST_CLASSES",
    "AerialPatches",
    "AerialSplits",
    "load_aerial",
    "LandCoverSet",
    "LandCoverSplits",
    "load_landcover",
    "SentenceSet",
    "load_sst2",
    "synthetic_sentiment",
]
