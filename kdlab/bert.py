"""A small BERT teacher and DistilBERT-style students (Devlin et al. 2019; Sanh et al. 2019).

- :func:`bert_config` sizes a BERT (``transformers.BertConfig``) for a CPU;
- :func:`pretrain_mlm` is BERT's masked-language-model pre-training and
  :func:`fine_tune` its task fine-tuning; :func:`pretrained_encoder` and
  :func:`trained_teacher` do each once and cache the result;
- :func:`student_from_teacher` is DistilBERT's initialisation: a student with every other
  teacher layer, whose embeddings, layers and head are copies of the teacher's;
- :func:`distil` trains a student on DistilBERT's triple loss
  (:func:`kdlab.losses.distilbert_loss`).

The same functions accept a Hub checkpoint (``BertForSequenceClassification
.from_pretrained("bert-base-uncased", num_labels=2)``) and its tokenizer when online.
Data comes as :class:`kdlab.text.Encoded` (ids and masks padded to a fixed length).
Training and evaluation group sentences of similar length and cut each batch to its
longest sentence: the outputs at the real positions are the same (padding is masked out
of attention), for a fraction of the cost on short sentences such as SST-2's.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import time
import warnings
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab import runtime
from kdlab.cache import cached_model
from kdlab.distill import History, freeze
from kdlab.losses import distilbert_loss
from kdlab.text import Encoded


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    # transformers imports torchao when installed, which logs a pytree notice to stderr.
    logger = logging.getLogger("torch.utils._pytree")
    logger.addFilter(_errors_only)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.removeFilter(_errors_only)


with _quiet_import():
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertForSequenceClassification,
        PreTrainedModel,
    )

__all__ = [
    "RECIPE",
    "FAST_RECIPE",
    "bert_config",
    "bert_classifier",
    "default_layers",
    "student_from_teacher",
    "random_student",
    "mask_tokens",
    "pretrain_mlm",
    "fine_tune",
    "distil",
    "evaluate_classifier",
    "pretrained_encoder",
    "trained_teacher",
    "RandomTokens",
]

# The SST-2 recipe of notebook 06, shared with its benchmark: sizes (sentences; None = all
# 67,349 training phrases), the teacher's shape and the schedules. Hidden size 256 cost
# about 2.5x hidden 128 per sentence on a 2-core CPU. A 3,000-token vocabulary keeps the
# embeddings at a quarter of the teacher, as in BERT-base, so the student keeps 0.63 of
# the parameters (DistilBERT: 0.60).
# MLM pre-training needs long to pay off here. It first sits for several hundred steps at
# the loss of token frequencies alone (6.7 nats) before it uses the context; an encoder
# stopped after 2 epochs (loss 6.1-6.3) fine-tuned no better than random weights, one
# after 20 epochs without dropout (loss 2.7) fine-tuned 3.2-4.1 points better (SST-2 dev,
# one encoder, seeds 0 and 1, with 500, 2,000 and 8,000 labels). Those 20 epochs (about
# 1.3 M sentence passes, 44 minutes on 2 CPU cores) are run once, by the benchmark, and
# cached (`pretrained_encoder`); notebook 06 loads them, or pre-trains for
# `mlm_short_epochs` when they are not cached. One encoder serves every fine-tuning seed,
# as one BERT checkpoint does. With 8,000 labels the teacher clearly beats a small model
# trained from scratch, which a teacher must do to be worth distilling.
RECIPE = {
    "vocab_size": 3000,
    "mlm_sentences": None,
    "train_sentences": 8000,
    "teacher": {"layers": 6, "hidden": 128, "heads": 4},
    "mlm_epochs": 20,
    "mlm_lr": 1e-3,
    "mlm_dropout": 0.0,
    "mlm_batch_size": 64,
    "mlm_seed": 0,
    "mlm_short_epochs": 1,  # notebook 06 when the long pre-training is not cached
    "epochs": 4,
    "lr": 3e-4,
    "batch_size": 32,
    "triple": {"temperature": 2.0, "w_soft": 1.0, "w_hard": 1.0, "w_cos": 1.0},
}
# Fast mode: a tiny model and a few hundred sentences, to check that everything runs.
FAST_RECIPE = RECIPE | {
    "vocab_size": 2000,
    "mlm_sentences": 1500,
    "train_sentences": 600,
    "teacher": {"layers": 4, "hidden": 64, "heads": 2},
    "mlm_epochs": 1,
    "epochs": 3,
    "lr": 1e-3,
}


def bert_config(
    vocab_size: int,
    *,
    layers: int = 6,
    hidden: int = 128,
    heads: int = 4,
    intermediate: int | None = None,
    max_length: int = 64,
    num_labels: int = 2,
    dropout: float = 0.1,
) -> BertConfig:
    """A BERT configuration: ``layers`` blocks of ``heads``-head attention of width ``hidden``
    and a feed-forward layer of ``intermediate`` (default ``4 * hidden``, as in BERT)."""
    for name, value in (("vocab_size", vocab_size), ("layers", layers), ("heads", heads)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if hidden % heads:
        raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate or 4 * hidden,
        max_position_embeddings=max_length,
        num_labels=num_labels,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def bert_classifier(config: BertConfig, seed: int = 0) -> BertForSequenceClassification:
    """A randomly initialised ``BertForSequenceClassification`` (seeded)."""
    runtime.seed_everything(seed)
    return BertForSequenceClassification(config)


# ----------------------------------------------------------------------------- students


def default_layers(num_layers: int) -> tuple[int, ...]:
    """Every other layer, starting with the first: ``(0, 2, 4)`` of 6 (Sanh et al. 2019)."""
    return tuple(range(0, num_layers, 2))


def _encoder_layers(model: nn.Module, name: str) -> nn.ModuleList:
    layers = getattr(getattr(getattr(model, "bert", None), "encoder", None), "layer", None)
    if not isinstance(model, PreTrainedModel) or not isinstance(layers, nn.ModuleList):
        raise ValueError(
            f"{name} must be a transformers BERT model with .bert.encoder.layer (for example "
            f"BertForSequenceClassification), got {type(model).__name__}"
        )
    return layers


def _check_layers(layers: Sequence[int], num_layers: int) -> tuple[int, ...]:
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence):
        raise ValueError(f"layers must be a sequence of layer indices, got {layers!r}")
    chosen = tuple(layers)
    if not chosen:
        raise ValueError("layers is empty; choose at least one teacher layer to copy")
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in chosen):
        raise ValueError(f"layers must hold ints (layer indices), got {chosen!r}")
    outside = [i for i in chosen if not 0 <= i < num_layers]
    if outside:
        raise ValueError(
            f"layers {outside} are out of range: the teacher has {num_layers} layers, "
            f"indices 0 to {num_layers - 1}"
        )
    repeated = sorted({i for i in chosen if chosen.count(i) > 1})
    if repeated:
        raise ValueError(f"layers {repeated} are repeated in {chosen}; choose each layer once")
    if list(chosen) != sorted(chosen):
        raise ValueError(
            f"layers {chosen} are not in increasing order; the student keeps the teacher's "
            f"order, so pass {tuple(sorted(chosen))}"
        )
    return chosen


def student_from_teacher(
    teacher: PreTrainedModel, layers: Sequence[int] | None = None
) -> PreTrainedModel:
    """DistilBERT's initialisation: a student with the teacher's ``layers`` (default every
    other one, :func:`default_layers`), its embeddings and its head, as copies.

    Student layer ``k`` starts as teacher layer ``layers[k]``; everything that is not an
    encoder layer (embeddings, pooler, classifier or MLM head) is copied as is. Sanh et
    al. (2019, section 3) keep the hidden size and take one layer out of two, so the
    student starts close to the teacher's function. Tensors are copied, never shared: a
    student update does not move the teacher. The student has the teacher's class and
    configuration except ``num_hidden_layers`` and is in the teacher's train/eval mode.
    """
    teacher_layers = _encoder_layers(teacher, "teacher")
    chosen = _check_layers(
        default_layers(len(teacher_layers)) if layers is None else layers, len(teacher_layers)
    )
    config = teacher.config.__class__.from_dict(teacher.config.to_dict())
    config.num_hidden_layers = len(chosen)
    student = type(teacher)(config)
    prefix = "bert.encoder.layer."
    source = teacher.state_dict()
    state = {}
    for key, target in student.state_dict().items():
        if key.startswith(prefix):
            index, rest = key[len(prefix) :].split(".", 1)
            origin = f"{prefix}{chosen[int(index)]}.{rest}"
        else:
            origin = key
        if origin not in source or source[origin].shape != target.shape:
            found = tuple(source[origin].shape) if origin in source else "missing"
            raise ValueError(
                f"cannot initialise student {key} {tuple(target.shape)} from teacher "
                f"{origin} ({found}); the teacher's state does not match its configuration"
            )
        state[key] = source[origin].detach().clone()
    student.load_state_dict(state)
    return student.train(teacher.training)


def random_student(teacher: PreTrainedModel, num_layers: int, seed: int = 0) -> PreTrainedModel:
    """A student of the same class and widths as ``teacher`` with ``num_layers`` layers and a
    fresh random initialisation (the ablation of :func:`student_from_teacher`)."""
    teacher_layers = _encoder_layers(teacher, "teacher")
    if not isinstance(num_layers, int) or not 1 <= num_layers <= len(teacher_layers):
        raise ValueError(
            f"num_layers must be an int in [1, {len(teacher_layers)}], got {num_layers!r}"
        )
    config = teacher.config.__class__.from_dict(teacher.config.to_dict())
    config.num_hidden_layers = num_layers
    runtime.seed_everything(seed)
    return type(teacher)(config)


# ----------------------------------------------------------------------------- training


BUCKET = 50  # batches per length bucket


def _batches(
    data: Encoded, batch_size: int, seed: int | None = None
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Batches of similar length, each cut to its longest sentence (right padding assumed).

    With a ``seed``: shuffle, sort each run of ``BUCKET`` batches by length, shuffle the
    batches (a "bucket iterator": random batches with little padding). Without: sorted
    by length, for evaluation, where the order does not matter.
    """
    lengths = data.attention_mask.sum(1)
    if seed is None:
        order = torch.argsort(lengths, stable=True)
        groups = list(order.split(batch_size))
    else:
        g = torch.Generator().manual_seed(seed)
        shuffled = torch.randperm(len(data), generator=g)
        groups = []
        for chunk in shuffled.split(batch_size * BUCKET):
            groups += list(chunk[torch.argsort(lengths[chunk], stable=True)].split(batch_size))
        groups = [groups[i] for i in torch.randperm(len(groups), generator=g).tolist()]
    out = []
    for idx in groups:
        length = int(lengths[idx].max())
        out.append(
            (data.input_ids[idx, :length], data.attention_mask[idx, :length], data.labels[idx])
        )
    return out


def _on(model: nn.Module, *tensors: Tensor) -> list[Tensor]:
    """``tensors`` moved to ``model``'s device (the data stay on the CPU until a batch is used)."""
    device = next(model.parameters()).device
    return [t.to(device, non_blocking=True) for t in tensors]


def _optimizer(
    model: nn.Module, lr: float, steps: int, warmup: float = 0.1
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (weight decay 0.01, none on biases and LayerNorm) with BERT's schedule: linear
    warm-up over the first ``warmup`` share of steps, then linear decay to zero."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() > 1]
    no_decay = [p for p in trained if p.dim() <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )
    warm = max(1, int(warmup * steps))

    def factor(step: int) -> float:
        return min((step + 1) / warm, max(0.0, (steps - step) / max(1, steps - warm)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _check_schedule(epochs: int, batch_size: int) -> None:
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")


def mask_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    *,
    mask_token_id: int,
    vocab_size: int,
    special_ids: Sequence[int],
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """BERT's masking (Devlin et al. 2019, section 3.1): choose ``probability`` of the real,
    non-special tokens; replace 80 % of them by ``[MASK]``, 10 % by a random token and keep
    10 %. Returns the corrupted ids and the labels: the original id where chosen, -100
    (ignored by cross-entropy) elsewhere."""
    if not 0 < probability < 1:
        raise ValueError(f"probability must be in (0, 1), got {probability}")
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(list(special_ids)))
    draw = torch.rand(input_ids.shape, generator=generator)
    chosen = candidates & (draw < probability)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    how = torch.rand(input_ids.shape, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted = torch.where(
        chosen & (how < 0.8), torch.full_like(input_ids, mask_token_id), input_ids
    )
    corrupted = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_ids, corrupted)
    return corrupted, labels


def _record(sums: dict[str, float], count: int, start: float) -> dict[str, float]:
    if count == 0:
        raise ValueError("the training data yielded no batches")
    return {**{k: v / count for k, v in sums.items()}, "seconds": time.perf_counter() - start}


def pretrain_mlm(
    model: BertForMaskedLM,
    data: Encoded,
    *,
    tokenizer,
    epochs: int = 1,
    batch_size: int = 64,
    lr: float = 5e-4,
    probability: float = 0.15,
    seed: int = 0,
) -> History:
    """Masked-language-model pre-training: predict the masked tokens (:func:`mask_tokens`).

    ``L_MLM = -(1/|M|) sum_{i in M} log p(x_i | x with M masked)``. The vocabulary
    projection runs only at the masked positions, the only ones with a loss.
    """
    _check_schedule(epochs, batch_size)
    generator = runtime.seed_everything(seed)
    steps = epochs * math.ceil(len(data) / batch_size)
    optimizer, scheduler = _optimizer(model, lr, steps)
    history = History()
    model.train()
    for epoch in range(epochs):
        start, sums, count = time.perf_counter(), {"mlm_loss": 0.0}, 0
        for ids, mask, _labels in _batches(data, batch_size, seed + epoch):
            corrupted, targets = mask_tokens(
                ids,
                mask,
                mask_token_id=tokenizer.mask_token_id,
                vocab_size=model.config.vocab_size,
                special_ids=tokenizer.all_special_ids,
                probability=probability,
                generator=generator,
            )
            chosen = targets != -100
            if not chosen.any():
                continue
            corrupted, mask, targets, chosen = _on(model, corrupted, mask, targets, chosen)
            hidden = model.bert(input_ids=corrupted, attention_mask=mask).last_hidden_state
            loss = F.cross_entropy(model.cls(hidden[chosen]), targets[chosen])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            sums["mlm_loss"] += float(loss.detach()) * len(ids)
            count += len(ids)
        history.epochs.append(_record(sums, count, start))
    return history


def fine_tune(
    model: PreTrainedModel,
    data: Encoded,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 2e-4,
    val: Encoded | None = None,
    seed: int = 0,
) -> History:
    """Supervised fine-tuning with cross-entropy on the labels (the teacher, or a student
    trained without a teacher); ``val`` accuracy is recorded after each epoch."""
    _check_schedule(epochs, batch_size)
    runtime.seed_everything(seed)
    steps = epochs * math.ceil(len(data) / batch_size)
    optimizer, scheduler = _optimizer(model, lr, steps)
    history = History()
    for epoch in range(epochs):
        model.train()
        start, sums, count = time.perf_counter(), {"loss": 0.0, "train_accuracy": 0.0}, 0
        for batch in _batches(data, batch_size, seed + epoch):
            ids, mask, labels = _on(model, *batch)
            logits = model(input_ids=ids, attention_mask=mask).logits
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            sums["loss"] += float(loss.detach()) * len(ids)
            sums["train_accuracy"] += float((logits.argmax(1) == labels).sum())
            count += len(ids)
        record = _record(sums, count, start)
        if val is not None:
            record["val_accuracy"] = evaluate_classifier(model, val)["accuracy"]
        history.epochs.append(record)
    return history


def distil(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    data: Encoded,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 2e-4,
    temperature: float = 2.0,
    w_soft: float = 1.0,
    w_hard: float = 1.0,
    w_cos: float = 1.0,
    val: Encoded | None = None,
    seed: int = 0,
) -> History:
    """Train ``student`` on DistilBERT's triple loss with a frozen ``teacher``.

    ``w_soft * T^2 KL(teacher_T || student_T) + w_hard * CE(student, y) + w_cos * L_cos``,
    ``L_cos`` between the last hidden states of student and teacher over real tokens
    (:func:`kdlab.losses.distilbert_loss`; Sanh et al. 2019). The hidden sizes must match,
    as they do for :func:`student_from_teacher` and :func:`random_student`.
    """
    _check_schedule(epochs, batch_size)
    if student is teacher:
        raise ValueError("teacher and student are the same model; pass two models")
    if student.config.hidden_size != teacher.config.hidden_size:
        raise ValueError(
            f"the cosine loss needs equal hidden sizes, got student "
            f"{student.config.hidden_size} and teacher {teacher.config.hidden_size}"
        )
    freeze(teacher)
    runtime.seed_everything(seed)
    steps = epochs * math.ceil(len(data) / batch_size)
    optimizer, scheduler = _optimizer(student, lr, steps)
    history = History()
    for epoch in range(epochs):
        student.train()
        start, sums, count = time.perf_counter(), {}, 0
        for batch in _batches(data, batch_size, seed + epoch):
            ids, mask, labels = _on(student, *batch)
            with torch.no_grad():
                t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            s = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            parts = distilbert_loss(
                s.logits,
                t.logits,
                labels,
                s.hidden_states[-1],
                t.hidden_states[-1],
                mask,
                temperature=temperature,
                w_soft=w_soft,
                w_hard=w_hard,
                w_cos=w_cos,
            )
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            scheduler.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(ids)
            sums["train_accuracy"] = sums.get("train_accuracy", 0.0) + float(
                (s.logits.argmax(1) == labels).sum()
            )
            count += len(ids)
        record = _record(sums, count, start)
        if val is not None:
            record["val_accuracy"] = evaluate_classifier(student, val)["accuracy"]
        history.epochs.append(record)
    return history


@torch.no_grad()
def evaluate_classifier(
    model: PreTrainedModel, data: Encoded, batch_size: int = 128
) -> dict[str, float]:
    """Mean cross-entropy, accuracy and error count of a sequence classifier in eval mode."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for batch in _batches(data, batch_size):
        ids, mask, labels = _on(model, *batch)
        logits = model(input_ids=ids, attention_mask=mask).logits
        total += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
    model.train(was_training)
    n = len(data)
    return {"loss": total / n, "accuracy": correct / n, "errors": n - correct, "n": n}


def _fingerprint(*datasets: Encoded | None) -> str:
    digest = hashlib.sha256()
    for data in datasets:
        if data is None:
            digest.update(b"none")
            continue
        for t in (data.input_ids, data.attention_mask, data.labels):
            digest.update(t.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _weights_fingerprint(model: nn.Module | None) -> str:
    if model is None:
        return "none"
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _config_key(config: BertConfig) -> dict:
    return {k: v for k, v in config.to_dict().items() if k != "transformers_version"}


def pretrained_encoder(
    config: BertConfig,
    data: Encoded,
    *,
    tokenizer,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    dropout: float = 0.0,
    seed: int = 0,
    name: str = "sst2-bert-mlm",
    verbose: bool = True,
    train_if_missing: bool = True,
) -> tuple[BertForMaskedLM | None, dict]:
    """A ``BertForMaskedLM`` pre-trained with :func:`pretrain_mlm` on ``data``, trained once
    and cached (:func:`kdlab.cache.cached_model`), keyed by the configuration, the schedule,
    the seed and the data's token ids. With ``train_if_missing=False`` an encoder that is not
    cached is not trained: ``(None, {"status": "not cached", ...})``.

    ``dropout`` replaces the configuration's during pre-training only (the weights do not
    depend on it). The default is none: in our SST-2 runs the MLM loss after 8 epochs was
    3.9 nats without dropout and 4.5 with 0.1; "Cramming" (Geiping and Goldstein 2023)
    also pre-trains without it.
    """
    mlm_config = config.__class__.from_dict(config.to_dict())
    mlm_config.hidden_dropout_prob = mlm_config.attention_probs_dropout_prob = dropout
    key = {
        "config": _config_key(mlm_config),
        "data": _fingerprint(data),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
    }

    def build() -> BertForMaskedLM:
        runtime.seed_everything(seed)
        return BertForMaskedLM(mlm_config)

    def train_fn(model: BertForMaskedLM) -> dict:
        history = pretrain_mlm(
            model,
            data,
            tokenizer=tokenizer,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
        )
        return {"mlm": history.to_dict()}

    return cached_model(
        name, key, build, train_fn, verbose=verbose, train_if_missing=train_if_missing
    )


def trained_teacher(
    config: BertConfig,
    train: Encoded,
    *,
    encoder: BertForMaskedLM | None,
    epochs: int = 3,
    lr: float = 2e-4,
    batch_size: int = 32,
    seed: int = 0,
    name: str = "sst2-bert-teacher",
    verbose: bool = True,
) -> tuple[BertForSequenceClassification, dict]:
    """A BERT teacher fine-tuned on ``train``, starting from the MLM ``encoder``'s
    embeddings and layers (from random weights when None); trained once and cached,
    keyed by the configuration, the schedule, the seed, the data's token ids and the
    encoder's weights.

    The pooler and classifier start random, as when fine-tuning a pre-trained BERT.
    """
    key = {
        "config": _config_key(config),
        "data": _fingerprint(train),
        "encoder": _weights_fingerprint(encoder),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
    }

    def train_fn(model: BertForSequenceClassification) -> dict:
        if encoder is not None:
            fix = "pre-train the encoder with the teacher's configuration"
            try:
                missing, unexpected = model.bert.load_state_dict(
                    encoder.bert.state_dict(), strict=False
                )
            except RuntimeError as err:  # shapes differ
                message = f"the MLM encoder does not fit the teacher: {err}; {fix}"
                raise ValueError(message) from err
            if unexpected or any(not k.startswith("pooler.") for k in missing):
                raise ValueError(
                    f"the MLM encoder does not fit the teacher: missing {missing}, "
                    f"unexpected {unexpected}; {fix}"
                )
        history = fine_tune(model, train, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
        return {"fine_tune": history.to_dict()}

    return cached_model(name, key, lambda: bert_classifier(config, seed), train_fn, verbose=verbose)


class RandomTokens(nn.Module):
    """``model`` behind an input of random floats, for :mod:`kdlab.bench`.

    ``kdlab.bench.latency(m, (length,), batch)`` feeds ``torch.randn(batch, length)``; this
    turns it into token ids in ``[0, vocab_size)`` (cost: one element-wise op) with a full
    attention mask, and returns the logits, so the timing is that of ``length`` real tokens.
    """

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        ids = (x.abs() * 1e4).long() % self.model.config.vocab_size
        return self.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
