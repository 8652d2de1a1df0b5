"""Sentences and tokens: SST-2, a synthetic stand-in, and a WordPiece tokenizer trained here.

SST-2 (the binary Stanford Sentiment Treebank task of GLUE; Socher et al. 2013, Wang et
al. 2019) is read from ``$KDLAB_DATA/sst2/{train,dev,test}.tsv``: one ``sentence<TAB>label``
per line after a ``sentence	label`` header, labels 0 (negative) and 1 (positive). GLUE's
own test split has no labels; the ``test.tsv`` expected here is a labelled one.

The default tokenizer is WordPiece (the BERT tokenizer's algorithm; Wu et al. 2016) trained
on the training sentences with Hugging Face ``tokenizers``, cached under
``runtime.cache_dir()/models`` next to the models, and wrapped as a
``transformers.PreTrainedTokenizerFast``, so a Hub tokenizer such as ``bert-base-uncased``
(:func:`hub_tokenizer`, online only) goes through exactly the same code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from kdlab import runtime
from kdlab.data import batches

__all__ = [
    "SentenceSet",
    "Encoded",
    "find_sst2",
    "read_tsv",
    "load_sst2",
    "synthetic_sentiment",
    "train_wordpiece",
    "wordpiece_tokenizer",
    "hub_tokenizer",
    "encode",
    "SST2_CLASSES",
    "SPECIAL_TOKENS",
    "MAX_LENGTH",
]

SST2_CLASSES = ("negative", "positive")
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_LENGTH = 64
SPLITS = ("train", "dev", "test")
HOW_TO_GET_SST2 = (
    "SST-2 is part of the GLUE benchmark (https://gluebenchmark.com/tasks, 'SST-2'; also "
    "https://huggingface.co/datasets/stanfordnlp/sst2). Put train.tsv, dev.tsv and a labelled "
    "test.tsv (each 'sentence<TAB>label' with a header line) in a folder sst2/ inside the "
    "folder that KDLAB_DATA points to."
)


@dataclass
class SentenceSet:
    """Sentences, their labels ``(N,)`` (0 negative, 1 positive) and where they came from."""

    sentences: list[str]
    labels: Tensor
    name: str
    source: str

    def __post_init__(self) -> None:
        if len(self.sentences) != len(self.labels):
            raise ValueError(
                f"{len(self.sentences)} sentences but {len(self.labels)} labels; they must match"
            )

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def synthetic(self) -> bool:
        return self.name.startswith("synthetic")

    def subset(self, n: int | None, seed: int = 0) -> SentenceSet:
        """A random subset of ``n`` sentences (all of them when n is None or too large)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"subset size must be positive, got {n}")
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return SentenceSet(
            [self.sentences[i] for i in idx.tolist()], self.labels[idx], self.name, self.source
        )


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


def train_wordpiece(sentences: list[str], vocab_size: int = 8000, min_frequency: int = 2):
    """A BERT-style WordPiece tokenizer trained on ``sentences``, as a
    ``transformers.PreTrainedTokenizerFast``.

    Pipeline (as BERT's uncased tokenizer): normalise (lower case, strip accents, clean
    control characters), split on white space and punctuation, cut words into the longest
    vocabulary pieces (continuations carry ``##``), add ``[CLS] ... [SEP]``. The
    vocabulary is grown from characters by merging the pairs that most raise the
    training likelihood (Wu et al. 2016). Decoding joins pieces with single spaces.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import WordPieceTrainer
    from transformers import PreTrainedTokenizerFast

    if not sentences:
        raise ValueError("cannot train a tokenizer on an empty list of sentences")
    if vocab_size < 100:
        raise ValueError(
            f"vocab_size must be at least 100 (characters + specials), got {vocab_size}"
        )
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be >= 1, got {min_frequency}")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator(sentences, trainer=trainer)
    # The trainer numbers pieces in hash-map order, which changes from run to run
    # (huggingface/tokenizers#1794): on SST-2 the same 3,000 pieces got other ids in each
    # run, so a model trained with one tokenizer read garbage through a retrained one.
    # Number them in a fixed order: the special tokens first (as the trainer does), then
    # the pieces sorted. (On a tiny corpus, ties can still change the pieces themselves.)
    pieces = sorted(set(tok.get_vocab()) - set(SPECIAL_TOKENS))
    tok.model = models.WordPiece(
        {piece: i for i, piece in enumerate([*SPECIAL_TOKENS, *pieces])},
        unk_token="[UNK]",
        max_input_chars_per_word=100,
        continuing_subword_prefix="##",
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )


def wordpiece_tokenizer(
    sentences: list[str],
    vocab_size: int = 8000,
    min_frequency: int = 2,
    *,
    verbose: bool = True,
):
    """:func:`train_wordpiece` on ``sentences``, cached: trained once, saved under the kdlab
    cache (``models/wordpiece-<hash>/``, next to the models) and reloaded from there.

    The key hashes the sentences and the settings, so other data trains a new tokenizer.
    Returns the tokenizer and ``"trained"`` or ``"loaded from cache"``.
    """
    from transformers import PreTrainedTokenizerFast

    digest = hashlib.sha256(f"sorted-ids|{vocab_size}|{min_frequency}|".encode())
    for sentence in sentences:
        digest.update(sentence.encode("utf-8") + b"\n")
    folder = runtime.cache_dir() / "models" / f"wordpiece-{digest.hexdigest()[:16]}"
    if (folder / "tokenizer.json").is_file():
        if verbose:
            print(f"tokenizer: loaded from cache ({folder.name})")
        return PreTrainedTokenizerFast.from_pretrained(str(folder)), "loaded from cache"
    tokenizer = train_wordpiece(sentences, vocab_size, min_frequency)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Save to a temporary folder, then rename, so a parallel reader never sees half of it.
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, suffix=".tmp"))
    try:
        tokenizer.save_pretrained(str(tmp))
        os.replace(tmp, folder)
    except OSError:  # another process saved the same tokenizer first
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"tokenizer: trained ({len(tokenizer)} tokens) and cached ({folder.name})")
    return tokenizer, "trained"


def hub_tokenizer(name: str = "bert-base-uncased"):
    """A pre-trained tokenizer from the Hugging Face Hub (needs the internet once).

    The optional path: the rest of kdlab accepts it exactly like :func:`wordpiece_tokenizer`'s.
    """
    if runtime.offline():
        raise RuntimeError(
            f"hub_tokenizer({name!r}) needs the internet, but KDLAB_OFFLINE=1 forbids "
            "downloads; use wordpiece_tokenizer(train_sentences) instead, or unset "
            "KDLAB_OFFLINE"
        )
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name)
    except OSError as err:
        raise RuntimeError(
            f"could not get the tokenizer {name!r} from the Hugging Face Hub (offline, or a "
            f"wrong name?); use wordpiece_tokenizer(train_sentences) instead. Cause: {err}"
        ) from err


@dataclass
class Encoded:
    """Token ids and attention masks ``(N, max_length)`` (1 = real token, 0 = padding),
    labels ``(N,)``."""

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """Batches ``(input_ids, attention_mask, labels)`` over the whole set."""
        return batches(
            self.input_ids,
            self.attention_mask,
            self.labels,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
        )


def encode(tokenizer, data: SentenceSet, max_length: int = MAX_LENGTH) -> Encoded:
    """Tokenize ``data`` to ``[CLS] pieces [SEP]``, truncated and padded to ``max_length``."""
    if max_length < 3:
        raise ValueError(f"max_length must be >= 3 ([CLS], a token, [SEP]), got {max_length}")
    if len(data) == 0:
        raise ValueError("cannot encode an empty set of sentences")
    out = tokenizer(
        list(data.sentences),
        padding="max_length",
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    return Encoded(out["input_ids"], out["attention_mask"], data.labels.clone())
