"""Sentences: SST-2 and a synthetic stand-in (the tokenizer is in :mod:`kdlab.data.tokenizer`).

SST-2 (the binary Stanford Sentiment Treebank task of GLUE; Socher et al. 2013, Wang et
al. 2019) is read from ``$KDLAB_DATA/sst2``, ``$KDLAB_DATA/SST-2`` (the folder GLUE's
archive unpacks to) or ``$KDLAB_DATA/glue_data/SST-2`` (GLUE's download script), the first
that holds ``train.tsv`` and ``dev.tsv``: one ``sentence<TAB>label`` per line after a
``sentence	label`` header, labels 0 (negative) and 1 (positive). Two layouts of
``test.tsv`` are accepted:

- **labelled**: ``test.tsv`` in the same format. The course's splits are then train.tsv,
  dev.tsv (validation) and test.tsv (test).
- **GLUE's**: ``test.tsv`` as GLUE distributes it, ``index<TAB>sentence`` without labels
  (or no ``test.tsv`` at all). Nothing can be scored on it, so :func:`load_sst2_splits`
  evaluates on dev.tsv as the test set and holds out :data:`VALIDATION_SIZE` distinct
  training sentences (seeded; as many as dev.tsv has) as the validation set; the training
  set is train.tsv without them. The sets' ``source`` and the splits' ``note`` say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import Tensor

from kdlab import runtime
from kdlab.data.base import ExampleSet

__all__ = [
    "SentenceSet",
    "SST2Splits",
    "find_sst2",
    "sst2_layout",
    "read_tsv",
    "load_sst2",
    "load_sst2_splits",
    "synthetic_sentiment",
    "SST2_CLASSES",
    "VALIDATION_SIZE",
]

SST2_CLASSES = ("negative", "positive")
SPLITS = ("train", "dev", "test")
FOLDERS = ("sst2", "SST-2", "glue_data/SST-2")
VALIDATION_SIZE = 872  # held out of train.tsv when test.tsv has no labels: the size of dev.tsv
LABELLED, GLUE, NO_TEST = "labelled test.tsv", "GLUE's unlabelled test.tsv", "no test.tsv"
_LABELLED_HEADER, _GLUE_TEST_HEADER = ["sentence", "label"], ["index", "sentence"]
HOW_TO_GET_SST2 = (
    "SST-2 is part of the GLUE benchmark (https://gluebenchmark.com/tasks, 'SST-2'; also "
    "https://huggingface.co/datasets/stanfordnlp/sst2). Unpack GLUE's SST-2.zip inside the "
    "folder that KDLAB_DATA points to (it makes SST-2/ with train.tsv and dev.tsv, "
    "'sentence<TAB>label' with a header line, and an unlabelled test.tsv), or put those "
    "files, optionally with a labelled test.tsv, in a folder sst2/ there."
)


@dataclass
class SentenceSet(ExampleSet):
    """Sentences, their labels ``(N,)`` (0 negative, 1 positive) and where they came from."""

    sentences: list[str]
    labels: Tensor
    name: str
    source: str

    _per_example = ("sentences", "labels")


@dataclass
class SST2Splits:
    """The three labelled sets the course uses; unpacks as ``train, validation, test``.

    ``labelled_test`` says whether ``test`` is a labelled test.tsv (False: GLUE's layout,
    where ``test`` is dev.tsv and ``validation`` is held out of train.tsv); ``layout`` names
    the layout found and ``note`` says where each set comes from."""

    train: SentenceSet
    validation: SentenceSet
    test: SentenceSet
    labelled_test: bool
    layout: str
    note: str

    def __iter__(self) -> Iterator[SentenceSet]:
        return iter((self.train, self.validation, self.test))


def _has_train_and_dev(folder: Path) -> bool:
    return all((folder / f"{s}.tsv").is_file() for s in ("train", "dev"))


def _candidates() -> list[Path]:
    root = runtime.data_dir()
    return [] if root is None else [root / name for name in FOLDERS]


def find_sst2() -> Path | None:
    """The first of ``$KDLAB_DATA/sst2``, ``$KDLAB_DATA/SST-2`` and
    ``$KDLAB_DATA/glue_data/SST-2`` that holds ``train.tsv`` and ``dev.tsv`` (``test.tsv``
    may be labelled, GLUE's unlabelled one, or absent: see :func:`sst2_layout`)."""
    return next((c for c in _candidates() if _has_train_and_dev(c)), None)


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig") as f:
        return [field.strip() for field in f.readline().strip().split("\t")]


def sst2_layout(folder: str | Path) -> str:
    """Which layout ``folder`` holds: :data:`LABELLED` (test.tsv is ``sentence<TAB>label``),
    :data:`GLUE` (test.tsv is GLUE's ``index<TAB>sentence``, without labels) or
    :data:`NO_TEST`; a test.tsv with another header is an error that names it."""
    test = Path(folder) / "test.tsv"
    if not test.is_file():
        return NO_TEST
    header = _header(test)
    if header == _LABELLED_HEADER:
        return LABELLED
    if header == _GLUE_TEST_HEADER:
        return GLUE
    raise ValueError(
        f"{test}: header {'<TAB>'.join(header)!r} is neither a labelled test split "
        "('sentence<TAB>label') nor GLUE's unlabelled one ('index<TAB>sentence')"
    )


def read_tsv(path: str | Path) -> tuple[list[str], Tensor]:
    """Sentences and labels from a ``sentence<TAB>label`` file with that header line."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or lines[0].strip().split("\t") != _LABELLED_HEADER:
        found = repr(lines[0][:60]) if lines else "an empty file"
        glue = bool(lines) and [f.strip() for f in lines[0].split("\t")] == _GLUE_TEST_HEADER
        what = " (GLUE's unlabelled test split: it has no labels)" if glue else ""
        raise ValueError(f"{path}: expected the header 'sentence<TAB>label', found {found}{what}")
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


def _not_found() -> FileNotFoundError:
    candidates = _candidates()
    if not candidates:
        return FileNotFoundError(
            f"SST-2 not found (looked in nowhere: KDLAB_DATA is not set). {HOW_TO_GET_SST2}"
        )
    looked = []
    for folder in candidates:
        if folder.is_dir():
            files = sorted(p.name for p in folder.glob("*.tsv")) or ["no .tsv file"]
            looked.append(f"{folder} (holds {', '.join(files)}; expected train.tsv and dev.tsv)")
        else:
            looked.append(str(folder))
    return FileNotFoundError(f"SST-2 not found (looked in {'; '.join(looked)}). {HOW_TO_GET_SST2}")


def _synthetic(split: str, limit: int | None, seed: int) -> SentenceSet:
    sizes = {"train": 2000, "dev": 400, "test": 400}
    offsets = {"train": 0, "dev": 1, "test": 2}
    return synthetic_sentiment(sizes[split], seed=1000 * offsets[split] + seed).subset(limit, seed)


def load_sst2(
    split: str = "train",
    *,
    limit: int | None = None,
    seed: int = 0,
    synthetic_fallback: bool = False,
) -> SentenceSet:
    """The file ``split``.tsv of SST-2 ("train", "dev" or "test"), optionally a random
    subset of ``limit``. In GLUE's layout "test" has no labels and is an error that says so:
    :func:`load_sst2_splits` gives three labelled sets in either layout.

    Without the files, raises ``FileNotFoundError`` saying where to get them, or, with
    ``synthetic_fallback=True``, returns :func:`synthetic_sentiment` (its name says so).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    folder = find_sst2()
    if folder is None:
        if synthetic_fallback:
            return _synthetic(split, limit, seed)
        raise _not_found()
    if split == "test" and (layout := sst2_layout(folder)) != LABELLED:
        raise ValueError(
            f"{folder} holds SST-2 with {layout}, so there is no labelled 'test' split to "
            "load (expected a test.tsv of 'sentence<TAB>label' lines). load_sst2_splits() "
            "gives three labelled sets for this layout: dev.tsv as the test set and "
            f"{VALIDATION_SIZE} sentences held out of train.tsv as the validation set."
        )
    sentences, labels = read_tsv(folder / f"{split}.tsv")
    return SentenceSet(sentences, labels, "sst2", str(folder)).subset(limit, seed)


def _hold_out(sentences: list[str], size: int, seed: int, folder: Path) -> tuple[Tensor, Tensor]:
    """Positions of the training and the validation examples: ``size`` distinct sentences
    drawn at random (the first copy of each), and every example whose sentence was not
    drawn, so no sentence is in both; both in file order."""
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed))
    held: dict[str, int] = {}
    for i in order.tolist():
        held.setdefault(sentences[i], i)
        if len(held) == size:
            break
    validation = sorted(held.values())
    train = [i for i, s in enumerate(sentences) if s not in held]
    if len(held) < size or not train:
        raise ValueError(
            f"{folder / 'train.tsv'} has {len(set(sentences))} distinct sentences: too few "
            f"to hold out {size} for validation (the test.tsv there has no labels) and keep "
            "some for training"
        )
    return torch.tensor(train), torch.tensor(validation)


def load_sst2_splits(
    *,
    eval_limit: int | None = None,
    seed: int = 0,
    synthetic_fallback: bool = False,
    validation_size: int = VALIDATION_SIZE,
    holdout_seed: int = 0,
) -> SST2Splits:
    """SST-2's training, validation and test sets for whichever layout is present.

    With a labelled test.tsv: train.tsv, dev.tsv and test.tsv, as :func:`load_sst2` reads
    them. With GLUE's unlabelled test.tsv (or none): dev.tsv is the test set, and
    ``validation_size`` distinct sentences of train.tsv, drawn with ``holdout_seed``, are
    the validation set; the training set is train.tsv without those sentences. ``eval_limit``
    keeps a random subset (``seed``) of validation and test. Without the files, as
    :func:`load_sst2` (``synthetic_fallback``: the synthetic train, dev and test sets).
    """
    folder = find_sst2()
    layout = "synthetic" if folder is None else sst2_layout(folder)
    if folder is None or layout == LABELLED:
        train = load_sst2("train", synthetic_fallback=synthetic_fallback)
        validation, test = (
            load_sst2(s, limit=eval_limit, seed=seed, synthetic_fallback=synthetic_fallback)
            for s in ("dev", "test")
        )
        note = (
            "SST-2 not found: synthetic training, validation and test sentences"
            if folder is None
            else f"SST-2 in {folder} has a {layout}: train.tsv, dev.tsv (validation), test.tsv"
        )
        return SST2Splits(train, validation, test, True, layout, note)
    if validation_size <= 0:
        raise ValueError(f"validation_size must be positive, got {validation_size}")
    sentences, labels = read_tsv(folder / "train.tsv")
    train_at, validation_at = _hold_out(sentences, validation_size, holdout_seed, folder)
    whole = SentenceSet(sentences, labels, "sst2", str(folder))
    held = f"{validation_size} sentences held out for validation (seed {holdout_seed})"
    train = replace(whole.take(train_at), source=f"{folder / 'train.tsv'} without the {held}")
    validation = replace(whole.take(validation_at), source=f"{folder / 'train.tsv'}: {held}")
    dev_sentences, dev_labels = read_tsv(folder / "dev.tsv")
    test = SentenceSet(
        dev_sentences, dev_labels, "sst2", f"{folder / 'dev.tsv'}, as the test set ({layout})"
    )
    note = (
        f"SST-2 in {folder} has {layout}, so the test set is dev.tsv ({len(test)} sentences), "
        f"the validation set {validation_size} sentences held out of train.tsv (seed "
        f"{holdout_seed}), and training uses the other {len(train)} examples"
    )
    return SST2Splits(
        train,
        validation.subset(eval_limit, seed),
        test.subset(eval_limit, seed),
        False,
        layout,
        note,
    )


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
