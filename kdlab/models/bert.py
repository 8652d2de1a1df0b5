"""Small BERTs and DistilBERT-style students (Devlin et al. 2019; Sanh et al. 2019).

- :func:`bert_config` sizes a BERT (``transformers.BertConfig``) for a CPU, and
  :func:`bert_classifier` builds one for sequence classification;
- :func:`student_from_teacher` is DistilBERT's initialisation: a student with every other
  teacher layer, whose embeddings, layers and head are copies of the teacher's;
  :func:`random_student` is its ablation, the same shape with fresh weights;
- :class:`RandomTokens` lets :mod:`kdlab.bench` time a BERT on random input.

The same functions accept a Hub checkpoint (``BertForSequenceClassification
.from_pretrained("bert-base-uncased", num_labels=2)``) when online.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from kdlab import runtime

with runtime.quiet():  # transformers imports torchao, which logs a notice to stderr
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedModel

__all__ = [
    "bert_config",
    "bert_classifier",
    "default_layers",
    "student_from_teacher",
    "random_student",
    "RandomTokens",
]


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

