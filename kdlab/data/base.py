"""What every data set of the course shares: batches over in-memory tensors, and
:class:`ExampleSet`, the base of the data-set containers (their provenance, length, seeded
random subsets and batches)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, TypeVar

import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    RandomSampler,
    SequentialSampler,
    TensorDataset,
)

__all__ = ["batches", "ExampleSet"]

_Set = TypeVar("_Set", bound="ExampleSet")
_POSITIONS = (torch.int64, torch.int32)


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


class ExampleSet:
    """Base of a data set held in memory as a dataclass: the fields named in
    ``_per_example`` (tensors, lists or tuples) hold one entry per example, the others
    describe the whole set; ``name`` and ``source`` say what it is and where it came from.

    A subclass declares its own dataclass fields (so its constructor is its own) and
    ``_per_example``; it gets ``len``, ``synthetic``, :meth:`take`, :meth:`subset` and,
    when every per-example field is a tensor, :meth:`loader`.
    """

    _per_example: ClassVar[tuple[str, ...]] = ()
    # Subsets keep the examples in their original order instead of the drawn one.
    _subsets_keep_order: ClassVar[bool] = False
    name: str
    source: str

    def __post_init__(self) -> None:
        if not self._per_example:
            raise TypeError(f"{type(self).__name__} must name its per-example fields")
        sizes = {f: len(getattr(self, f)) for f in self._per_example}
        if len(set(sizes.values())) > 1:
            found = ", ".join(f"{n} {f}" for f, n in sizes.items())
            raise ValueError(
                f"{type(self).__name__} got {found}; they must match (one entry per example)"
            )

    def __len__(self) -> int:
        return len(getattr(self, self._per_example[0]))

    @property
    def synthetic(self) -> bool:
        """Whether the examples are a generated stand-in (their name starts "synthetic")."""
        return self.name.startswith("synthetic")

    def take(self: _Set, index: Tensor) -> _Set:
        """The examples at ``index`` (a 1-D integer tensor), in that order; the fields that
        describe the whole set are kept."""
        if not (isinstance(index, Tensor) and index.dim() == 1 and index.dtype in _POSITIONS):
            found = (
                f"{index.dtype} tensor of shape {tuple(index.shape)}"
                if isinstance(index, Tensor)
                else type(index).__name__
            )
            raise TypeError(
                "index must be a 1-D tensor of integer positions (for a boolean mask m, pass "
                f"m.nonzero().flatten()), got a {found}"
            )
        picked = {f: _pick(getattr(self, f), index) for f in self._per_example}
        return dataclasses.replace(self, **picked)

    def subset(self: _Set, n: int | None, seed: int = 0) -> _Set:
        """A seeded random subset of ``n`` examples (all of them, ``self`` itself, when
        ``n`` is None or at least the size of the set)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"subset size must be positive, got {n}")
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return self.take(idx.sort().values if self._subsets_keep_order else idx)

    def loader(self, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
        """Batches of the per-example fields, in their order (see :func:`batches`)."""
        fields = [getattr(self, f) for f in self._per_example]
        if not all(isinstance(value, Tensor) for value in fields):
            raise TypeError(
                f"{type(self).__name__} holds {', '.join(self._per_example)}, not only tensors; "
                "turn it into tensors first (for sentences: kdlab.data.tokenizer.encode)"
            )
        return batches(*fields, batch_size=batch_size, shuffle=shuffle, seed=seed)


def _pick(value: Tensor | list | tuple, index: Tensor) -> Tensor | list | tuple:
    if isinstance(value, Tensor):
        return value[index]
    if isinstance(value, (list, tuple)):
        return type(value)(value[i] for i in index.tolist())
    raise TypeError(f"cannot index a per-example field of type {type(value).__name__}")
