"""Classification metrics computed over a whole data set."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["evaluate"]


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
