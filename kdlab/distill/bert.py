"""Training BERTs on the one loop of :class:`kdlab.distill.Distiller`: masked-language-model
pre-training, fine-tuning, and DistilBERT's triple-loss distillation (Devlin et al. 2019;
Sanh et al. 2019).

- :class:`MaskedLMTrainer` is BERT's masked-language-model pre-training (:func:`mask_tokens`),
  ``L_MLM = -(1/|M|) sum_{i in M} log p(x_i | x with M masked)``;
- :class:`BertFineTuner` is task fine-tuning on the labels, ``CE(student, y)``;
- :class:`BertDistiller` trains a student on DistilBERT's triple loss with a frozen teacher,
  ``w_soft T^2 KL + w_hard CE + w_cos L_cos`` (:func:`kdlab.losses.distilbert_loss`).

Each overrides only how a batch is prepared and which loss parts it computes (and validates
with :func:`evaluate_classifier`); all three train with AdamW (:func:`bert_adamw`) and BERT's
linear warm-up then linear decay, stepped once per batch. :func:`pretrain_mlm`,
:func:`fine_tune` and :func:`distil` are the short functions that run them.

Data comes as :class:`kdlab.data.tokenizer.Encoded` (ids and masks padded to a fixed
length). Training and evaluation group sentences of similar length and cut each batch to its
longest sentence (:class:`kdlab.data.tokenizer.LengthBatches`): the outputs at the real
positions are the same (padding is masked out of attention), for a fraction of the cost on
short sentences such as SST-2's.

Under ``torchrun`` they train with several processes as :class:`Distiller` does: each rank
takes its share of every length batch (:meth:`LengthBatches.shard`), and the masking draws
from a stream of its own (:func:`kdlab.distill.parallel.rank_seed`; rank 0's is the one a
single process uses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab import runtime
from kdlab.data.tokenizer import Encoded, LengthBatches, length_batches
from kdlab.distill import parallel
from kdlab.distill.trainer import Distiller, History
from kdlab.losses import distilbert_loss

if TYPE_CHECKING:
    from transformers import BertForMaskedLM, PreTrainedModel

Parts = tuple[Any, dict[str, Tensor]]  # loss_parts' output and named loss terms

__all__ = [
    "mask_tokens",
    "bert_adamw",
    "MaskedLMTrainer",
    "BertFineTuner",
    "BertDistiller",
    "pretrain_mlm",
    "fine_tune",
    "distil",
    "evaluate_classifier",
]


def bert_adamw(model: nn.Module, lr: float) -> torch.optim.AdamW:
    """AdamW with BERT's weight decay: 0.01 on the weight matrices and embeddings, none on
    biases and LayerNorm (the parameters with one dimension), trained parameters only."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.dim() > 1]
    no_decay = [p for p in trained if p.dim() <= 1]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
    )


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


def _check_bert_batch(batch: tuple[Any, ...]) -> tuple[Tensor, Tensor, Tensor]:
    if len(batch) != 3:
        raise ValueError(
            f"BERT batches must be (input_ids, attention_mask, labels), got {len(batch)} items; "
            "train on LengthBatches(data, batch_size) of Encoded sentences"
        )
    return batch  # type: ignore[return-value]


class _BertTrainer(Distiller):
    """What the BERT trainers share: batches ``(input_ids, attention_mask, labels)``,
    AdamW (:func:`bert_adamw`) with BERT's ``"linear"`` schedule (warm-up over ``warmup``
    of the steps), and validation on :class:`Encoded` sentences with
    :func:`evaluate_classifier` (``val_accuracy``)."""

    def __init__(self, student: nn.Module, teacher: nn.Module | None, *, lr: float, **kwargs):
        kwargs.setdefault("lr_schedule", "linear")
        optimizer = kwargs.pop("optimizer", None) or bert_adamw(student, lr)
        super().__init__(student, teacher, lr=lr, optimizer=optimizer, **kwargs)

    def prepare_batch(self, batch: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self.to_device(_check_bert_batch(batch))

    def train_accuracy(self, output: Tensor, batch: tuple[Any, ...]) -> float | None:
        labels = batch[2]  # correct answers over the batch size, in double precision
        return float((output.argmax(1) == labels).sum()) / len(labels)

    def validate(self, val: Encoded) -> dict[str, float]:
        return {"val_accuracy": evaluate_classifier(self.student, val)["accuracy"]}


class MaskedLMTrainer(_BertTrainer):
    """Masked-language-model pre-training of a ``BertForMaskedLM`` (no teacher, no labels).

    Each batch is masked on the CPU by :func:`mask_tokens` with a generator seeded with
    ``seed`` (so a run repeats; with several processes each rank has its own stream), and
    a batch where no token was chosen is skipped (on every rank, with several). The
    vocabulary projection runs only at the masked positions, the only ones with a loss.
    Records ``mlm_loss``; there is no accuracy or validation.
    """

    loss_key = "mlm_loss"

    def __init__(
        self,
        model: BertForMaskedLM,
        *,
        tokenizer,
        lr: float = 5e-4,
        probability: float = 0.15,
        seed: int = 0,
        **kwargs,
    ):
        if not hasattr(model, "bert") or not hasattr(model, "cls"):
            raise ValueError(
                f"model must be a BertForMaskedLM (with .bert and .cls), got {type(model).__name__}"
            )
        if not 0 < probability < 1:
            raise ValueError(f"probability must be in (0, 1), got {probability}")
        for attribute in ("mask_token_id", "all_special_ids"):
            if getattr(tokenizer, attribute, None) is None:
                raise ValueError(
                    f"the tokenizer has no {attribute}; pass the tokenizer the data were "
                    "encoded with (kdlab.data.tokenizer.wordpiece_tokenizer)"
                )
        super().__init__(model, None, lr=lr, seed=seed, **kwargs)
        self.tokenizer, self.probability = tokenizer, probability
        # the masking's random stream: one per rank when training with several processes
        stream = parallel.rank_seed(seed) if self.distributed else seed
        self.generator = torch.Generator().manual_seed(stream)

    def prepare_batch(self, batch: tuple[Any, ...]) -> tuple[Any, ...] | None:
        # Masked on the CPU with a CPU generator, so the same seed gives the same masks
        # whatever the device (the cached encoders were trained on these masks).
        ids, mask, _labels = _check_bert_batch(batch)
        corrupted, targets = mask_tokens(
            ids,
            mask,
            mask_token_id=self.tokenizer.mask_token_id,
            vocab_size=self.student.config.vocab_size,
            special_ids=self.tokenizer.all_special_ids,
            probability=self.probability,
            generator=self.generator,
        )
        if not (targets != -100).any():
            return None  # nothing masked: no loss, and no step
        return self.to_device((corrupted, mask, targets))

    def loss_parts(self, corrupted: Tensor, mask: Tensor, targets: Tensor) -> Parts:
        chosen = targets != -100
        hidden = self.student.bert(input_ids=corrupted, attention_mask=mask).last_hidden_state
        loss = F.cross_entropy(self.student.cls(hidden[chosen]), targets[chosen])
        return None, {"mlm_loss": loss}

    def train_accuracy(self, output: Any, batch: tuple[Any, ...]) -> float | None:
        return None

    def fit(self, train, epochs, val=None, **kwargs) -> History:
        if val is not None:  # fail before training, not after the first epoch
            raise ValueError("MaskedLMTrainer has no validation; call fit without val")
        return super().fit(train, epochs, **kwargs)


class BertFineTuner(_BertTrainer):
    """Supervised fine-tuning of a sequence classifier with cross-entropy on the labels (a
    teacher, or a student trained without a teacher). Records ``loss`` and
    ``train_accuracy`` (and ``val_accuracy`` with validation data)."""

    def __init__(self, model: PreTrainedModel, *, lr: float = 2e-4, **kwargs):
        super().__init__(model, None, lr=lr, **kwargs)

    def loss_parts(self, ids: Tensor, mask: Tensor, labels: Tensor) -> Parts:
        logits = self.student(input_ids=ids, attention_mask=mask).logits
        return logits, {"loss": F.cross_entropy(logits, labels)}


class BertDistiller(_BertTrainer):
    """DistilBERT's triple loss with a frozen ``teacher`` (Sanh et al. 2019):

    ``w_soft * T^2 KL(teacher_T || student_T) + w_hard * CE(student, y) + w_cos * L_cos``,
    ``L_cos`` between the last hidden states of student and teacher over real tokens
    (:func:`kdlab.losses.distilbert_loss`). The hidden sizes must match, as they do for
    :func:`kdlab.models.bert.student_from_teacher` and :func:`kdlab.models.bert.random_student`.
    Records ``loss``, ``soft_loss``, ``hard_loss``, ``cos_loss`` and ``train_accuracy``.
    """

    def __init__(
        self,
        student: PreTrainedModel,
        teacher: PreTrainedModel,
        *,
        lr: float = 2e-4,
        temperature: float = 2.0,
        w_soft: float = 1.0,
        w_hard: float = 1.0,
        w_cos: float = 1.0,
        **kwargs,
    ):
        if teacher is None:
            raise ValueError("BertDistiller needs a teacher; use BertFineTuner for labels alone")
        if student is teacher:
            raise ValueError("teacher and student are the same model; pass two models")
        if student.config.hidden_size != teacher.config.hidden_size:
            raise ValueError(
                f"the cosine loss needs equal hidden sizes, got student "
                f"{student.config.hidden_size} and teacher {teacher.config.hidden_size}"
            )
        weights = {"w_soft": w_soft, "w_hard": w_hard, "w_cos": w_cos}
        for name, value in weights.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        super().__init__(student, teacher, lr=lr, temperature=temperature, **kwargs)
        self.weights = weights

    def loss_parts(self, ids: Tensor, mask: Tensor, labels: Tensor) -> Parts:
        with torch.no_grad():
            t = self.teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        s = self.student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        parts = distilbert_loss(
            s.logits,
            t.logits,
            labels,
            s.hidden_states[-1],
            t.hidden_states[-1],
            mask,
            temperature=self.temperature,
            **self.weights,
        )
        return s.logits, parts


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
    progress: bool | None = None,
    device: str | torch.device | None = None,
) -> History:
    """Masked-language-model pre-training of ``model`` on ``data`` (:class:`MaskedLMTrainer`),
    on length batches reshuffled every epoch. ``progress``: a bar over the run, None as
    :func:`kdlab.runtime.progress_default` decides. ``device``: where to train, None for
    :func:`kdlab.runtime.pick_device`; the model goes back where it was afterwards (as for
    :func:`fine_tune` and :func:`distil`)."""
    _check_schedule(epochs, batch_size)
    with runtime.devices_restored(model):
        trainer = MaskedLMTrainer(
            model,
            tokenizer=tokenizer,
            lr=lr,
            probability=probability,
            seed=seed,
            device=runtime.pick_device(device),
        )
        return trainer.fit(LengthBatches(data, batch_size, seed), epochs, progress=progress)


def fine_tune(
    model: PreTrainedModel,
    data: Encoded,
    *,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 2e-4,
    val: Encoded | None = None,
    seed: int = 0,
    progress: bool | None = None,
    device: str | torch.device | None = None,
) -> History:
    """Supervised fine-tuning with cross-entropy on the labels (:class:`BertFineTuner`), the
    teacher or a student trained without a teacher; ``val`` accuracy after each epoch."""
    _check_schedule(epochs, batch_size)
    with runtime.devices_restored(model):
        trainer = BertFineTuner(model, lr=lr, seed=seed, device=runtime.pick_device(device))
        return trainer.fit(LengthBatches(data, batch_size, seed), epochs, val, progress=progress)


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
    progress: bool | None = None,
    device: str | torch.device | None = None,
) -> History:
    """Train ``student`` on DistilBERT's triple loss with a frozen ``teacher``
    (:class:`BertDistiller`, both on ``device``, then back where they were);
    ``val`` accuracy after each epoch."""
    _check_schedule(epochs, batch_size)
    with runtime.devices_restored(student, teacher):
        trainer = BertDistiller(
            student,
            teacher,
            lr=lr,
            temperature=temperature,
            w_soft=w_soft,
            w_hard=w_hard,
            w_cos=w_cos,
            seed=seed,
            device=runtime.pick_device(device),
        )
        return trainer.fit(LengthBatches(data, batch_size, seed), epochs, val, progress=progress)


@torch.no_grad()
def evaluate_classifier(
    model: PreTrainedModel, data: Encoded, batch_size: int = 128
) -> dict[str, float]:
    """Mean cross-entropy, accuracy and error count of a sequence classifier in eval mode."""
    was_training = model.training
    model.eval()
    device = runtime.device_of(model)
    total, correct = 0.0, 0
    for batch in length_batches(data, batch_size):
        ids, mask, labels = (t.to(device, non_blocking=True) for t in batch)
        logits = model(input_ids=ids, attention_mask=mask).logits
        total += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(1) == labels).sum())
    model.train(was_training)
    n = len(data)
    return {"loss": total / n, "accuracy": correct / n, "errors": n - correct, "n": n}
