"""Pruning masks: remove the weights, neurons and channels a network can do without.

Two families:

- **Unstructured** pruning zeroes individual weights of small magnitude (Han et al. 2015).
  The tensors keep their shape, so a dense kernel does as much work as before: the model
  is smaller only once stored in a sparse format, and no faster on ordinary hardware.
- **Structured** pruning zeroes whole output neurons (rows of a ``Linear`` weight) or
  channels (filters of a ``Conv2d``) of small norm (Li et al. 2017). :func:`shrink` then
  rebuilds those layers smaller, so parameters, file size and latency really drop.

Masks use ``torch.nn.utils.prune``'s reparametrisation: a pruned layer holds the parameter
``weight_orig`` and the buffer ``weight_mask`` and computes
``weight = weight_orig * weight_mask`` before every forward pass, so fine-tuning cannot
revive a pruned weight (its gradient is multiplied by 0). Pruning again combines the masks
by product. :func:`make_permanent` folds the masks into plain weights.

The number of entries (or units) to prune is ``k = round(fraction * n)`` with Python's
``round``, the same count as ``torch.nn.utils.prune``: halves go to the even neighbour,
so half of 5 weights prunes 2 and half of 7 prunes 4. Ties in magnitude are broken by
position: the entry (or unit) with the lower index is pruned first.

Note: ``copy.deepcopy`` fails on a pruned model (the masked ``weight`` is computed, not a
leaf tensor). Copy the model before pruning, or call :func:`make_permanent` first.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Iterable
from itertools import pairwise

import torch
import torch.nn.utils.prune as tprune
from torch import Tensor, nn

__all__ = [
    "magnitude_mask",
    "structured_mask",
    "prune_unstructured",
    "prune_global",
    "prune_structured",
    "make_permanent",
]

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
# The batch norm that may follow a prunable layer (its scale and shift prune with the unit).
_NORM_AFTER = {nn.Linear: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d}


# ------------------------------------------------------------------ argument checks


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value}")
    return float(value)


def _check_weight(weight: Tensor, min_dim: int = 1) -> None:
    if not isinstance(weight, Tensor):
        raise ValueError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise ValueError(f"weight must be a floating point tensor, got dtype {weight.dtype}")
    if weight.dim() < min_dim or weight.numel() == 0:
        raise ValueError(
            f"weight must be a non-empty tensor with at least {min_dim} dimension(s), "
            f"got shape {tuple(weight.shape)}"
        )
    if not torch.isfinite(weight).all():
        raise ValueError("weight contains NaN or infinite values")


def _check_norm(norm: int) -> None:
    if isinstance(norm, bool) or norm not in (1, 2):
        raise ValueError(f"norm must be 1 (L1, Li et al. 2017) or 2 (L2), got {norm!r}")


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def _num_to_prune(fraction: float, n: int) -> int:
    # The same expression as torch.nn.utils.prune, so the counts agree exactly.
    return round(fraction * n)


# ------------------------------------------------------------------ helpers


def _effective(module: nn.Module, name: str) -> Tensor:
    """The tensor the layer computes with: ``orig * mask`` when pruned, else the parameter.

    Computed afresh because the cached ``module.weight`` is only refreshed by a forward
    pass, and goes stale after an optimiser step.
    """
    if _is_masked(module, name):
        return (getattr(module, name + "_orig") * getattr(module, name + "_mask")).detach()
    return getattr(module, name).detach()


def _is_masked(module: nn.Module, name: str) -> bool:
    return hasattr(module, name + "_orig") and hasattr(module, name + "_mask")


def _tensor_names(module: nn.Module) -> list[str]:
    """Names of the layer's own parameters, ``weight`` for a pruned ``weight_orig``."""
    names = []
    for name, _ in module.named_parameters(recurse=False):
        base = name.removesuffix("_orig")
        names.append(base if base != name and _is_masked(module, base) else name)
    return names


def _apply_mask(module: nn.Module, name: str, keep: Tensor) -> None:
    """Multiply ``module.<name>`` by ``keep`` through torch's reparametrisation."""
    weight = getattr(module, name)
    tprune.custom_from_mask(module, name, keep.to(weight.dtype).expand_as(weight))


def _select_layers(
    model: nn.Module, layers: Iterable[str | nn.Module] | None, *, skip_output: bool
) -> list[tuple[str, nn.Module]]:
    """The (name, layer) pairs to prune: ``layers`` resolved, or every prunable layer."""
    _check_model(model)
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, PRUNABLE)]
    if not found:
        raise ValueError(f"model ({type(model).__name__}) has no Linear or Conv layers to prune")
    if layers is None:
        if skip_output:
            # The last layer's outputs are the model's outputs (the classes): keep them.
            found = found[:-1]
            if not found:
                raise ValueError(
                    "the model's only prunable layer is its output layer; pass layers=[...] "
                    "to prune it anyway"
                )
        return found
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    names = {id(m): n for n, m in model.named_modules()}
    chosen: list[tuple[str, nn.Module]] = []
    for item in layers:
        if isinstance(item, str):
            try:
                module = model.get_submodule(item)
            except AttributeError:
                raise ValueError(
                    f"model has no layer named {item!r}; prunable layers: {[n for n, _ in found]}"
                ) from None
            name = item
        elif isinstance(item, nn.Module):
            if id(item) not in names:
                raise ValueError(f"layer {item} is not part of the model")
            module, name = item, names[id(item)]
        else:
            raise ValueError(f"layers must hold layer names or modules, got {type(item).__name__}")
        if not isinstance(module, PRUNABLE):
            raise ValueError(
                f"layer {name!r} is a {type(module).__name__}; only Linear and Conv1d/2d/3d "
                "layers can be pruned"
            )
        if all(module is not m for _, m in chosen):
            chosen.append((name, module))
    if not chosen:
        raise ValueError("layers is empty; pass None for every prunable layer")
    return chosen


def _following_norms(model: nn.Module) -> dict[int, nn.Module]:
    """Batch-norm layers that directly follow a Linear / Conv2d in an ``nn.Sequential``.

    Keyed by ``id`` of the layer they follow. A structured-pruned unit must have its
    norm's scale and shift zeroed too, or the norm turns its zero into a constant.
    """
    pairs: dict[int, nn.Module] = {}
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.children())
        for layer, norm in pairwise(children):
            norm_type = _NORM_AFTER.get(type(layer))
            if (
                norm_type is not None
                and type(norm) is norm_type
                and norm.affine
                and norm.num_features == layer.weight.shape[0]
            ):
                pairs[id(layer)] = norm
    return pairs


def _copy(model: nn.Module) -> nn.Module:
    """``copy.deepcopy`` that also works on a pruned model.

    A pruned layer caches ``weight = weight_orig * weight_mask``, a non-leaf tensor that
    deepcopy refuses; the copy gets a detached clone instead (recomputed on its next
    forward pass anyway).
    """
    memo: dict[int, Tensor] = {}
    for module in model.modules():
        for name in _tensor_names(module):
            cached = module.__dict__.get(name)
            if isinstance(cached, Tensor):
                memo[id(cached)] = cached.detach().clone()
    return copy.deepcopy(model, memo)


# ------------------------------------------------------------------ masks


def magnitude_mask(weight: Tensor, sparsity: float) -> Tensor:
    """Keep-mask of unstructured magnitude pruning: zero the ``k`` smallest ``|w|``.

    ``m_i = 0`` for the ``k = round(sparsity * n)`` entries of smallest ``|w_i|`` and 1 for
    the others, so ``w * m`` has exactly ``k`` pruned entries out of ``n``. ``round`` is
    Python's (halves to even, as in ``torch.nn.utils.prune``). Among equal magnitudes the
    entry with the lower index in ``weight.flatten()`` is pruned first.

    Han, Pool, Tran and Dally (2015), "Learning both Weights and Connections for Efficient
    Neural Networks": small weights matter least; prune them, fine-tune, repeat.

    Returns a bool tensor of ``weight``'s shape, True where the weight is kept.
    """
    _check_weight(weight)
    sparsity = _check_fraction("sparsity", sparsity)
    k = _num_to_prune(sparsity, weight.numel())
    order = torch.argsort(weight.detach().abs().flatten(), stable=True)
    keep = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
    keep[order[:k]] = False
    return keep.view_as(weight)


def structured_mask(weight: Tensor, amount: float, norm: int = 1) -> Tensor:
    """Keep-mask over output units: drop the ``k`` rows / filters of smallest norm.

    For unit ``j`` (row ``j`` of a Linear weight, filter ``j`` of a Conv weight) the score
    is ``s_j = ||W_j||_p`` with ``p = norm`` (L1: ``sum |W_j|``); the ``k = round(amount *
    out)`` units of smallest score are pruned, the lower index first among ties.

    Li, Kadav, Durdanovic, Samet and Graf (2017), "Pruning Filters for Efficient
    ConvNets": rank filters by the L1 norm of their kernel weights, remove the smallest.

    Returns a bool tensor of shape ``(weight.shape[0],)``, True for the units kept.
    """
    _check_weight(weight, min_dim=2)
    amount = _check_fraction("amount", amount)
    _check_norm(norm)
    scores = torch.linalg.vector_norm(weight.detach().flatten(1), ord=norm, dim=1)
    k = _num_to_prune(amount, scores.numel())
    keep = torch.ones(scores.numel(), dtype=torch.bool, device=weight.device)
    keep[torch.argsort(scores, stable=True)[:k]] = False
    return keep


# ------------------------------------------------------------------ pruning a model


def prune_unstructured(
    model: nn.Module, sparsity: float, layers: Iterable[str | nn.Module] | None = None
) -> nn.Module:
    """Layer-wise magnitude pruning: each chosen layer's weight gets ``sparsity`` zeros.

    Every layer gets its own threshold, ``magnitude_mask(w, sparsity)`` on its current
    (masked) weight, so each ends with exactly ``round(sparsity * n)`` zeros; weights pruned
    before count among them, which makes ``sparsity`` a cumulative target. Biases are left
    alone (Han et al. 2015). ``layers`` holds names (``"net.1"``) or modules; by default
    every Linear and Conv layer. Changes ``model`` in place and returns it.
    """
    sparsity = _check_fraction("sparsity", sparsity)
    for _, layer in _select_layers(model, layers, skip_output=False):
        _apply_mask(layer, "weight", magnitude_mask(_effective(layer, "weight"), sparsity))
    return model


def prune_global(
    model: nn.Module, sparsity: float, layers: Iterable[str | nn.Module] | None = None
) -> nn.Module:
    """Global magnitude pruning: one threshold for the weights of all chosen layers.

    Pool the ``N`` weights of the chosen layers and prune the ``k = round(sparsity * N)``
    of smallest ``|w|`` wherever they sit: ``m = 1[|w| > tau]`` with ``tau`` the ``k``-th
    smallest magnitude (ties: earlier layer, then lower index, first). Layers with large
    weights keep more than layers with small ones, unlike :func:`prune_unstructured`.
    Library equivalent: ``torch.nn.utils.prune.global_unstructured``. Changes ``model``
    in place and returns it.
    """
    sparsity = _check_fraction("sparsity", sparsity)
    chosen = [layer for _, layer in _select_layers(model, layers, skip_output=False)]
    weights = [_effective(layer, "weight") for layer in chosen]
    keep = magnitude_mask(torch.cat([w.flatten() for w in weights]), sparsity)
    for layer, w, part in zip(
        chosen, weights, keep.split([w.numel() for w in weights]), strict=True
    ):
        _apply_mask(layer, "weight", part.view_as(w))
    return model


def prune_structured(
    model: nn.Module,
    amount: float,
    *,
    norm: int = 1,
    layers: Iterable[str | nn.Module] | None = None,
) -> nn.Module:
    """Structured pruning: zero a fraction ``amount`` of each chosen layer's output units.

    Units are ranked by :func:`structured_mask` (``||W_j||_p``, Li et al. 2017). A pruned
    unit loses its weight row (filter), its bias entry and, when a BatchNorm directly
    follows the layer in an ``nn.Sequential``, that norm's scale and shift for the unit.
    Zeroing only the weights would leave the unit outputting a constant (``relu(b)``, or
    the norm's shift), which :func:`shrink` could not remove without changing the model;
    zeroed like this the unit outputs exactly 0 and :func:`shrink` cuts it out.

    ``layers`` holds names or modules; by default every Linear and Conv layer except the
    last one, whose outputs are the model's outputs (the classes). Pruning again with a
    larger ``amount`` extends the pruned set. Changes ``model`` in place and returns it.
    """
    amount = _check_fraction("amount", amount)
    _check_norm(norm)
    chosen = _select_layers(model, layers, skip_output=True)
    norms = _following_norms(model)
    for _, layer in chosen:
        keep = structured_mask(_effective(layer, "weight"), amount, norm)
        _apply_mask(layer, "weight", keep.view(-1, *[1] * (layer.weight.dim() - 1)))
        if layer.bias is not None:
            _apply_mask(layer, "bias", keep)
        if id(layer) in norms:
            _apply_mask(norms[id(layer)], "weight", keep)
            _apply_mask(norms[id(layer)], "bias", keep)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Remove the pruning reparametrisation: plain ``weight`` parameters holding the zeros.

    Calls ``torch.nn.utils.prune.remove`` on every pruned tensor, so ``weight_orig`` and
    ``weight_mask`` disappear and the state dict has the dense model's keys again. A
    permanent zero can grow back if the model is trained further. Changes ``model`` in
    place and returns it; a model without masks is returned unchanged.
    """
    _check_model(model)
    for module in model.modules():
        for name in _tensor_names(module):
            if _is_masked(module, name):
                tprune.remove(module, name)
    return model


# ------------------------------------------------------------------ gradual pruning


# ------------------------------------------------------------------ physical shrinking
