"""Argument checks and calibration plumbing shared by the library flows."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if torch_prune.is_pruned(model):
        raise ValueError(
            "model still carries pruning masks (weight_orig / weight_mask); call "
            "kdlab.prune.make_permanent(model) before quantizing it"
        )
    return model


def _check_input(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor (one batch of inputs), got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch, got shape {tuple(x.shape)}")
    return x


def _check_has_linear(model: nn.Module, flow: str) -> None:
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(
            f"{flow} quantizes nn.Linear layers and {type(model).__name__} has none; "
            "use static_ptq for convolutions"
        )


def _float_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode: the caller's model keeps its weights, hooks and mode."""
    return copy.deepcopy(model).eval()


def _batch_input(batch: object, index: int) -> Tensor:
    """The input of a calibration batch: the tensor itself, or the first item of
    ``(x, y, ...)`` as a DataLoader yields it."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    return _check_input(f"calibration batch {index}", batch)


def _calibration(batches: object) -> tuple[Tensor, Iterator[Tensor]]:
    """The first calibration input and an iterator over all of them (first included)."""
    if isinstance(batches, Tensor) or not isinstance(batches, Iterable):
        raise ValueError(
            "calibration_batches must be an iterable of input batches (a list of tensors or "
            f"a DataLoader), got {type(batches).__name__}; wrap a single batch as [x]"
        )
    iterator = iter(batches)
    try:
        first = _batch_input(next(iterator), 0)
    except StopIteration:
        raise ValueError(
            "calibration_batches is empty; static quantization observes the activation "
            "ranges on at least one batch of representative inputs"
        ) from None

    def inputs() -> Iterator[Tensor]:
        yield first
        for i, batch in enumerate(iterator, start=1):
            yield _batch_input(batch, i)

    return first, inputs()


@torch.no_grad()
def _calibrate(model: nn.Module, inputs: Iterator[Tensor]) -> None:
    for x in inputs:
        model(x)

