"""Tokens for the SST-2 track: a WordPiece tokenizer trained here, and encoded sentences.

The default tokenizer is WordPiece (the BERT tokenizer's algorithm; Wu et al. 2016) trained
on the training sentences with Hugging Face ``tokenizers``, cached under
``runtime.cache_dir()/models`` next to the models, and wrapped as a
``transformers.PreTrainedTokenizerFast``, so a Hub tokenizer such as ``bert-base-uncased``
(:func:`hub_tokenizer`, online only) goes through exactly the same code.

Encoded sentences are batched by length (:func:`length_batches`, cut to each batch's longest
sentence); :class:`LengthBatches` reshuffles them every epoch for the BERT trainers.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from kdlab import runtime
from kdlab.data.base import batches
from kdlab.data.sst2 import SentenceSet

__all__ = [
    "Encoded",
    "train_wordpiece",
    "wordpiece_tokenizer",
    "hub_tokenizer",
    "encode",
    "length_batches",
    "LengthBatches",
    "SPECIAL_TOKENS",
    "MAX_LENGTH",
]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_LENGTH = 64


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


BUCKET = 50  # batches per length bucket


def length_batches(
    data: Encoded, batch_size: int, seed: int | None = None
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Batches of similar length, each cut to its longest sentence (right padding assumed).

    With a ``seed``: shuffle, sort each run of ``BUCKET`` batches by length, shuffle the
    batches (a "bucket iterator": random batches with little padding). Without: sorted
    by length, for evaluation, where the order does not matter.
    """
    lengths = data.attention_mask.sum(1)
    return [_cut(data, lengths, idx) for idx in _length_groups(lengths, batch_size, seed)]


def _length_groups(lengths: Tensor, batch_size: int, seed: int | None) -> list[Tensor]:
    # The positions of each batch of length_batches, in order.
    if seed is None:
        order = torch.argsort(lengths, stable=True)
        return list(order.split(batch_size))
    g = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(lengths), generator=g)
    groups = []
    for chunk in shuffled.split(batch_size * BUCKET):
        groups += list(chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_size))
    return [groups[i] for i in torch.randperm(len(groups), generator=g).tolist()]


def _cut(data: Encoded, lengths: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    length = int(lengths[idx].max())
    return data.input_ids[idx, :length], data.attention_mask[idx, :length], data.labels[idx]


class LengthBatches:
    """:func:`length_batches` as a re-iterable training set: pass ``k`` (counted from 0)
    yields ``length_batches(data, batch_size, seed + k)``, so every epoch draws new batches
    and a run repeats from the same ``seed``. ``len()`` is the number of batches per pass,
    ``ceil(len(data) / batch_size)``, which a learning-rate schedule needs up front.

    With ``seed=None`` every pass is the same length-sorted order, for evaluation.

    For training with several processes, ``rank`` of ``world_size`` yields its share of the
    same global batches (:meth:`shard`): the positions ``rank, rank + world_size, ...`` of
    each, cut to their own longest sentence; a batch that does not split evenly is padded by
    repeating its first sentences (as ``DistributedSampler`` pads an epoch), so every rank
    takes the same number of steps with parts of the same size.
    """

    def __init__(
        self,
        data: Encoded,
        batch_size: int,
        seed: int | None = 0,
        *,
        rank: int = 0,
        world_size: int = 1,
    ):
        if not isinstance(data, Encoded):
            raise ValueError(
                f"data must be Encoded sentences (kdlab.data.tokenizer.encode), got "
                f"{type(data).__name__}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be an int in [0, {world_size}), got {rank!r}")
        if batch_size % world_size:
            raise ValueError(
                f"the global batch of {batch_size} does not split into {world_size} equal "
                "parts; use a batch size divisible by the number of processes"
            )
        self.data, self.batch_size, self.seed = data, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.passes = 0  # passes started so far: the next one draws seed + passes

    def shard(self, rank: int, world_size: int) -> LengthBatches:
        """This data as rank ``rank`` of ``world_size`` processes reads it, from the same
        pass on."""
        part = LengthBatches(
            self.data, self.batch_size, self.seed, rank=rank, world_size=world_size
        )
        part.passes = self.passes
        return part

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        # A generator: the pass is counted when its first batch is drawn, not when iter()
        # is called (tqdm's asyncio-aware bar calls iter() once more, and never reads it).
        seed = None if self.seed is None else self.seed + self.passes
        self.passes += 1
        if self.world_size == 1:
            yield from length_batches(self.data, self.batch_size, seed)
            return
        lengths = self.data.attention_mask.sum(1)
        for idx in _length_groups(lengths, self.batch_size, seed):
            size = math.ceil(len(idx) / self.world_size) * self.world_size
            padded = idx[torch.arange(size) % len(idx)]
            yield _cut(self.data, lengths, padded[self.rank :: self.world_size])
