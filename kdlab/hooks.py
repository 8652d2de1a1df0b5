"""Capture intermediate activations by module name, for feature and relation distillation.

    with capture_activations(teacher, "features.1") as t_acts, \\
         capture_activations(student, "features.1") as s_acts:
        teacher(x); student(x)
        loss = attention_transfer_loss(s_acts["features.1"], t_acts["features.1"])

Forward hooks are registered on entry and always removed on exit, so the model is left as
it was. Names are those of ``model.named_modules()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["capture_activations", "layer_names", "activations_of"]


def layer_names(model: nn.Module) -> list[str]:
    """The names :func:`capture_activations` accepts: every named submodule of ``model``."""
    return [name for name, _ in model.named_modules() if name]


@contextmanager
def capture_activations(model: nn.Module, *names: str) -> Iterator[dict[str, Any]]:
    """Within the ``with`` block, every forward pass of ``model`` stores the output of each
    named submodule in the yielded dict (``acts[name]``), replacing the previous one.

    Outputs keep their autograd graph, so a loss on a student's activation trains the
    student; run the teacher under ``torch.no_grad()``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not names:
        raise ValueError(f"name at least one layer; valid names: {layer_names(model)}")
    modules = dict(model.named_modules())
    unknown = [n for n in names if not n or n not in modules]
    if unknown:
        raise ValueError(
            f"no layer named {unknown} in {type(model).__name__}; valid names: {layer_names(model)}"
        )
    acts: dict[str, Any] = {}

    def keep(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            acts[name] = output

        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    try:
        yield acts
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def activations_of(model: nn.Module, name: str, x: Tensor, batch_size: int = 256) -> Tensor:
    """The output of layer ``name`` for all of ``x``, in eval mode and in batches, without
    gradients: a frozen teacher's features computed once for a whole training set."""
    was_training = model.training
    model.eval()
    chunks = []
    with capture_activations(model, name) as acts:
        for chunk in x.split(batch_size):
            model(chunk)
            chunks.append(acts[name])
    model.train(was_training)
    return torch.cat(chunks)
