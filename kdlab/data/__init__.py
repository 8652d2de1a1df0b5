"""Data sets, found offline first, one file per data set, each with a synthetic stand-in that
says it is synthetic.

- ``base``: :func:`batches`, a fast loader over in-memory tensors;
- ``mnist``: MNIST and Fashion-MNIST (:class:`ImageSet`, :func:`load_mnist_family`);
- ``aerial``: the Dubai aerial imagery for segmentation (:func:`load_aerial`);
- ``sst2``: SST-2 sentences (:func:`load_sst2`);
- ``tokenizer``: a WordPiece tokenizer trained here, and encoded sentences.
"""

from kdlab.data.base import batches
from kdlab.data.mnist import (
    FASHION_CLASSES,
    MNIST_CLASSES,
    ImageSet,
    find_mnist_family,
    load_mnist_family,
    read_idx,
    synthetic_digits,
)
from kdlab.data.sst2 import SentenceSet, load_sst2, synthetic_sentiment

__all__ = [
    "batches",
    "ImageSet",
    "load_mnist_family",
    "find_mnist_family",
    "read_idx",
    "synthetic_digits",
    "FASHION_CLASSES",
    "MNIST_CLASSES",
    "SentenceSet",
    "load_sst2",
    "synthetic_sentiment",
]
