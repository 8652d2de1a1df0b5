"""Sentences: SST-2 and a synthetic stand-in (the tokenizer is in :mod:`kdlab.data.tokenizer`).

SST-2 (the binary Stanford Sentiment Treebank task of GLUE; Socher et al. 2013, Wang et
al. 2019) is read from ``$KDLAB_DATA/sst2/{train,dev,test}.tsv``: one ``sentence<TAB>label``
per line after a ``sentence	label`` header, labels 0 (negative) and 1 (positive). GLUE's
own test split has no labels; the ``test.tsv`` expected here is a labelled one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from kdlab import runtime
from kdlab.data.base import ExampleSet

__all__ = [
    "SentenceSet",
    "find_sst2",
    "read_tsv",
    "load_sst2",
    "synthetic_sentiment",
    "SST2_CLASSES",
]

SST2_CLASSES = ("negative", "positive")
SPLITS = ("train", "dev", "test")
HOW_TO_GET_SST2 = (
    "SST-2 is part of the GLUE benchmark (https://gluebenchmark.com/tasks, 'SST-2'; also "
    "https://huggingface.co/datasets/stanfordnlp/sst2). Put train.tsv, dev.tsv and a labelled "
    "test.tsv (each 'sentence<TAB>label' with a header line) in a folder sst2/ inside the "
    "folder that KDLAB_DATA points to."
)


@dataclass
class SentenceSet(ExampleSet):
    """Sentences, their labels ``(N,)`` (0 negative, 1 positive) and where they came from."""

    sentences: list[str]
    labels: Tensor
    name: str
    source: str

    _per_example = ("sentences", "labels")


def find_sst2() -> Path | None:
    """``$KDLAB_DATA/sst2`` when it holds ``train.tsv``, ``dev.tsv`` and ``test.tsv``."""
    root = runtime.data_dir()
    if root is None:
        return None
    folder = root / "sst2"
    return folder if all((folder / f"{s}.tsv").is_file() for s in SPLITS) else None


def read_tsv(path: str | Path) -> tuple[list[str], Tensor]:
    """Sentences and labels from a ``sentence<TAB>label`` file with that header line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip().split("\t") != ["sentence", "label"]:
        found = repr(lines[0][:60]) if lines else "an empty file"
        raise ValueError(f"{path}: expected the header 'sentence<TAB>label', found {found}")
    sentences, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or fields[1].strip() not in ("0", "1"):
            raise ValueError(
                f"{path}, line {number}: expected 'sentence<TAB>0' or 'sentence<TAB>1', "
                f"got {line[:80]!r}"
            )
        sentences.append(fields[0].strip())
        labels.append(int(fields[1]))
    if not sentences:
        raise ValueError(f"{path} has a header but no labelled sentences")
    return sentences, torch.tensor(labels, dtype=torch.long)


def load_sst2(
    split: str = "train",
    *,
    limit: int | None = None,
    seed: int = 0,
    synthetic_fallback: bool = False,
) -> SentenceSet:
    """SST-2's ``split`` ("train", "dev" or "test"), optionally a random subset of ``limit``.

    Without the files, raises ``FileNotFoundError`` saying where to get them, or, with
    ``synthetic_fallback=True``, returns :func:`synthetic_sentiment` (its name says so).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    folder = find_sst2()
    if folder is None:
        if synthetic_fallback:
            sizes = {"train": 2000, "dev": 400, "test": 400}
            offsets = {"train": 0, "dev": 1, "test": 2}
            return synthetic_sentiment(sizes[split], seed=1000 * offsets[split] + seed).subset(
                limit, seed
            )
        where = runtime.data_dir()
        looked = f"{where / 'sst2'}" if where else "nowhere: KDLAB_DATA is not set"
        raise FileNotFoundError(f"SST-2 not found (looked in {looked}). {HOW_TO_GET_SST2}")
    sentences, labels = read_tsv(folder / f"{split}.tsv")
    return SentenceSet(sentences, labels, "sst2", str(folder)).subset(limit, seed)


_POSITIVE = ("good", "great", "wonderful", "moving", "funny", "charming", "brilliant", "fresh")
_NEGATIVE = ("bad", "dull", "boring", "awful", "tedious", "clumsy", "bland", "messy")
_SUBJECTS = ("the film", "this movie", "the plot", "the acting", "the script", "the ending")
_VERBS = ("is", "was", "feels", "seems")
_ADVERBS = ("", "", "really", "quite", "very", "rather")
_TAILS = ("", "", ".", ", and the music", "from start to finish", "for most of its length")


def synthetic_sentiment(n: int = 2000, seed: int = 0, noise: float = 0.05) -> SentenceSet:
    """A small synthetic two-class sentiment set, for tests and offline fast runs.

    Sentences follow ``subject verb [not] [adverb] adjective [tail]``; the label is the
    adjective's polarity, flipped by "not", so a model must read the negation too; a share
    ``noise`` of the labels is flipped at random so no model is perfect. Its ``name`` is
    ``"synthetic-sentiment"``: results on it say nothing about SST-2.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= noise < 0.5:
        raise ValueError(f"noise must be in [0, 0.5), got {noise}")
    g = torch.Generator().manual_seed(seed)

    def pick(options: tuple[str, ...]) -> str:
        return options[int(torch.randint(len(options), (1,), generator=g))]

    sentences, labels = [], []
    for _ in range(n):
        positive = bool(torch.rand(1, generator=g) < 0.5)
        negated = bool(torch.rand(1, generator=g) < 0.3)
        words = [pick(_SUBJECTS), pick(_VERBS), "not" if negated else "", pick(_ADVERBS)]
        words += [pick(_POSITIVE if positive else _NEGATIVE), pick(_TAILS)]
        flip = bool(torch.rand(1, generator=g) < noise)
        sentences.append(" ".join(w for w in words if w))
        labels.append(int(positive ^ negated ^ flip))
    return SentenceSet(
        sentences, torch.tensor(labels), "synthetic-sentiment", "generated (synthetic)"
    )
