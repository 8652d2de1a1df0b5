"""Classification metrics computed over a whole data set."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["accuracy", "evaluate", "confusion_matrix"]


def accuracy(logits: Tensor, targets: Tensor) -> float:
    """Share of rows whose arg-max logit is the target."""
    if logits.shape[0] != targets.shape[0] or logits.shape[0] == 0:
        raise ValueError(
            f"need one target per row of logits, got {logits.shape[0]} rows and "
            f"{targets.shape[0]} targets"
        )
    return float((logits.argmax(1) == targets).float().mean())


def confusion_matrix(predictions: Tensor, targets: Tensor, num_classes: int) -> Tensor:
    """``C[i, j]`` counts examples of true class i predicted as class j."""
    index = targets.long() * num_classes + predictions.long()
    return torch.bincount(index.flatten(), minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Iterable[tuple[Tensor, Tensor]], device: str | torch.device = "cpu"
) -> dict[str, float]:
    """Mean cross-entropy, accuracy and error count of ``model`` (in eval mode) over ``data``."""
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for x, y in data:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluation data yielded no examples")
    return {"loss": total_loss / n, "accuracy": correct / n, "errors": n - correct, "n": n}
