"""Hidden-state distillation: DistilBERT's cosine loss and its triple loss (Sanh et al. 2019)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from kdlab.losses._checks import _check_targets
from kdlab.losses.logits import soft_target_loss

__all__ = ["MLM_IGNORE", "cosine_hidden_loss", "distilbert_loss"]

MLM_IGNORE = -100  # the MLM label of a token with nothing to predict (PyTorch's ignore_index)


def _check_hidden(student_hidden: Tensor, teacher_hidden: Tensor, attention_mask: Tensor) -> None:
    for name, h in (("student_hidden", student_hidden), ("teacher_hidden", teacher_hidden)):
        if not isinstance(h, Tensor) or not h.is_floating_point() or h.dim() != 3:
            raise ValueError(
                f"{name} must be a floating-point tensor of shape (batch, length, hidden), got "
                f"{getattr(h, 'dtype', type(h).__name__)} of shape {tuple(getattr(h, 'shape', ()))}"
            )
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            "student_hidden and teacher_hidden must have the same shape (batch, length, hidden), "
            f"got {tuple(student_hidden.shape)} and {tuple(teacher_hidden.shape)}; with different "
            "hidden sizes, project the student's states with a learned nn.Linear first"
        )
    if not isinstance(attention_mask, Tensor) or tuple(attention_mask.shape) != tuple(
        student_hidden.shape[:2]
    ):
        raise ValueError(
            f"attention_mask must be a tensor of shape {tuple(student_hidden.shape[:2])} "
            f"(batch, length), got {tuple(getattr(attention_mask, 'shape', ()))}"
        )
    if (
        attention_mask.dtype != torch.bool
        and not ((attention_mask == 0) | (attention_mask == 1)).all()
    ):
        raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token)")


def cosine_hidden_loss(
    student_hidden: Tensor, teacher_hidden: Tensor, attention_mask: Tensor
) -> Tensor:
    """Mean of ``1 - cos(h_s, h_t)`` over the real (non-padding) positions.

    ``L_cos = (1 / |M|) sum_{(b, i) in M} (1 - <h_s[b,i], h_t[b,i]> / (|h_s[b,i]| |h_t[b,i]|))``
    with ``M`` the positions where ``attention_mask`` is 1. Hidden states are
    ``(batch, length, hidden)``. Padding positions are left out entirely (their values
    never matter); averaging over them would dilute the loss by the padding share. It
    aligns the *directions* of the student's and teacher's hidden states, DistilBERT's
    third loss (Sanh et al. 2019, section 3; PyTorch's ``CosineEmbeddingLoss`` with
    target 1). The teacher side is detached.
    """
    _check_hidden(student_hidden, teacher_hidden, attention_mask)
    keep = attention_mask.bool()
    if not keep.any():
        raise ValueError("attention_mask selects no position (all padding); nothing to compare")
    s, t = student_hidden[keep], teacher_hidden.detach()[keep]
    if not (torch.isfinite(s).all() and torch.isfinite(t).all()):
        raise ValueError("hidden states contain NaN or infinite values at real positions")
    return (1 - F.cosine_similarity(s, t, dim=-1, eps=1e-8)).mean()


def _check_weight(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")


def _mlm_soft_and_hard(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    attention_mask: Tensor,
    temperature: float,
) -> tuple[Tensor, Tensor]:
    """The soft loss over the real tokens and the hard loss over the masked ones (``mlm=True``
    of :func:`distilbert_loss`)."""
    for name, z in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        if not isinstance(z, Tensor) or z.dim() != 3 or z.shape[:2] != attention_mask.shape:
            raise ValueError(
                f"with mlm=True, {name} must be per token, of shape (batch, length, vocab) with "
                f"(batch, length) = {tuple(attention_mask.shape)}, got "
                f"{tuple(getattr(z, 'shape', ()))}"
            )
    if not isinstance(targets, Tensor) or targets.shape != attention_mask.shape:
        raise ValueError(
            f"with mlm=True, targets must be the MLM labels of shape {tuple(attention_mask.shape)}"
            f" (batch, length), {MLM_IGNORE} where nothing is predicted, got "
            f"{tuple(getattr(targets, 'shape', ()))}"
        )
    real, masked = attention_mask.bool(), targets != MLM_IGNORE
    if not masked.any():
        raise ValueError(
            f"targets mask no token (every label is {MLM_IGNORE}): the MLM loss has nothing to "
            "predict; mask at least one real token"
        )
    soft = soft_target_loss(student_logits[real], teacher_logits[real], temperature)
    _check_targets(targets[masked], student_logits[masked])
    hard = F.cross_entropy(student_logits[masked], targets[masked].long())
    return soft, hard


def distilbert_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    student_hidden: Tensor,
    teacher_hidden: Tensor,
    attention_mask: Tensor,
    *,
    temperature: float = 2.0,
    w_soft: float = 1.0,
    w_hard: float = 1.0,
    w_cos: float = 1.0,
    mlm: bool = False,
) -> dict[str, Tensor]:
    """DistilBERT's triple loss: ``w_soft * L_soft + w_hard * L_hard + w_cos * L_cos``.

    - ``L_soft``: :func:`~kdlab.losses.soft_target_loss` at ``temperature``,
      ``T^2 KL(p_teacher^T || p_student^T)`` (Hinton et al. 2015);
    - ``L_hard``: cross-entropy with ``targets``: the task labels, or, when distilling
      during masked-language-model pre-training as Sanh et al. (2019) did, the masked
      tokens (then pass logits ``(M, vocab)`` and targets ``(M,)`` at the masked
      positions only);
    - ``L_cos``: :func:`cosine_hidden_loss` between aligned hidden states, padding ignored.

    Returns the parts and their weighted sum: ``{"loss", "soft_loss", "hard_loss",
    "cos_loss"}``. A weight of 0 switches a term off (its part is still reported).

    ``mlm=True`` computes the terms per token, as Hugging Face's DistilBERT distillation
    script does by default (``examples/research_projects/distillation/distiller.py``,
    ``Distiller.step`` with ``--mlm`` and without ``--restrict_ce_to_mask``). The logits
    are then ``(batch, length, vocab)`` and ``targets`` the MLM labels ``(batch, length)``,
    ``-100`` (:data:`MLM_IGNORE`) where there is nothing to predict:

    - ``L_soft``: ``T^2 KL(p_teacher^T || p_student^T)`` averaged over every real token
      (``attention_mask`` 1), masked or not (their ``KLDivLoss(reduction="batchmean")`` on
      the rows the mask selects);
    - ``L_hard``: cross-entropy averaged over the masked tokens only (labels not ``-100``,
      their ``CrossEntropyLoss(ignore_index=-100)``); it raises when no token is masked;
    - ``L_cos``: as above, over the real tokens (their ``CosineEmbeddingLoss`` on the
      last hidden states the attention mask selects).

    Their README trains DistilBERT with ``--alpha_ce 5.0 --alpha_mlm 2.0 --alpha_cos 1.0``,
    that is ``w_soft=5, w_hard=2, w_cos=1``, at the default temperature 2.
    """
    for name, value in (("w_soft", w_soft), ("w_hard", w_hard), ("w_cos", w_cos)):
        _check_weight(name, value)
    if w_soft + w_hard + w_cos == 0:
        raise ValueError("w_soft, w_hard and w_cos are all 0; give at least one term a weight")
    cos = cosine_hidden_loss(student_hidden, teacher_hidden, attention_mask)
    if mlm:
        soft, hard = _mlm_soft_and_hard(
            student_logits, teacher_logits, targets, attention_mask, temperature
        )
    else:
        soft = soft_target_loss(student_logits, teacher_logits, temperature)
        _check_targets(targets, student_logits)
        hard = F.cross_entropy(student_logits, targets.long())
    loss = w_soft * soft + w_hard * hard + w_cos * cos
    return {"loss": loss, "soft_loss": soft, "hard_loss": hard, "cos_loss": cos}
