"""What every data set of the course shares: batches over in-memory tensors."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

__all__ = ["batches"]


def batches(*tensors: Tensor, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A DataLoader over in-memory tensors (``x, y`` and optionally more, such as teacher
    logits) that indexes whole batches at once, which is much faster on a CPU than
    collating single examples."""
    if len(tensors) < 2:
        raise ValueError(f"pass at least inputs and labels, got {len(tensors)} tensor(s)")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    sizes = [len(t) for t in tensors]
    if len(set(sizes)) != 1:
        raise ValueError(f"all tensors must have the same length, got {sizes}")
    if sizes[0] == 0:
        raise ValueError("cannot make batches from an empty data set")
    dataset = TensorDataset(*tensors)
    generator = torch.Generator().manual_seed(seed)
    base = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    sampler = BatchSampler(base, batch_size, drop_last=False)
    return DataLoader(dataset, sampler=sampler, batch_size=None)

