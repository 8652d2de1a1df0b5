"""A model's outputs over a whole tensor of inputs, in batches, without gradients."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["logits_of"]


@torch.no_grad()
def logits_of(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """The model's logits for ``x`` in eval mode, computed in batches, on ``x``'s device."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(chunk) for chunk in x.split(batch_size)])
    model.train(was_training)
    return out
