"""Training BERTs: masked-language-model pre-training, fine-tuning, and DistilBERT's
triple-loss distillation (Devlin et al. 2019; Sanh et al. 2019).

- :func:`pretrain_mlm` is BERT's masked-language-model pre-training (:func:`mask_tokens`);
- :func:`fine_tune` is task fine-tuning on the labels;
- :func:`distil` trains a student on DistilBERT's triple loss
  (:func:`kdlab.losses.distilbert_loss`).

Data comes as :class:`kdlab.data.tokenizer.Encoded` (ids and masks padded to a fixed
length). Training and evaluation group sentences of similar length and cut each batch to its
longest sentence (:func:`kdlab.data.tokenizer.length_batches`): the outputs at the real
positions are the same (padding is masked out of attention), for a fraction of the cost on
short sentences such as SST-2's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab import runtime
from kdlab.data.tokenizer import Encoded, length_batches
from kdlab.distill.trainer import History, freeze
from kdlab.losses import distilbert_loss

if TYPE_CHECKING:
    from transformers import BertForMaskedLM, PreTrainedModel

__all__ = ["mask_tokens", "pretrain_mlm", "fine_tune", "distil", "evaluate_classifier"]


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
        for ids, mask, _labels in length_batches(data, batch_size, seed + epoch):
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
        for batch in length_batches(data, batch_size, seed + epoch):
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
        for batch in length_batches(data, batch_size, seed + epoch):
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
    for batch in length_batches(data, batch_size):
        ids, mask, labels = _on(model, *batch)
        logits = model(input_ids=ids, attention_mask=mask).logits
        total += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
    model.train(was_training)
    n = len(data)
    return {"loss": total / n, "accuracy": correct / n, "errors": n - correct, "n": n}

