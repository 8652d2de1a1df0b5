"""A model's outputs over a whole tensor of inputs, in batches, without gradients."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kdlab import runtime

__all__ = ["logits_of"]


@torch.no_grad()
def logits_of(model: nn.Module, x: Tensor, batch_size: int = 256) -> Tensor:
    """The model's logits for ``x`` in eval mode, computed in batches on the model's device
    (:func:`kdlab.runtime.device_of`) and returned on ``x``'s: a teacher trained on a GPU
    labels a data set kept on the host, one batch at a time."""
    device = runtime.device_of(model)
    was_training = model.training
    model.eval()
    out = torch.cat([model(chunk.to(device)).to(x.device) for chunk in x.split(batch_size)])
    model.train(was_training)
    return out
