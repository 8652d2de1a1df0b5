"""Pruning: remove the weights, neurons and channels a network can do without.

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
import warnings
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise

import pandas as pd
import torch
import torch.nn.utils.prune as tprune
from torch import Tensor, nn

from kdlab.models import MLP, TeacherCNN

__all__ = [
    "magnitude_mask",
    "structured_mask",
    "prune_unstructured",
    "prune_global",
    "prune_structured",
    "make_permanent",
    "sparsity_report",
    "gradual_schedule",
    "iterative_pruning",
    "shrink",
]

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM_AFTER = {nn.Linear: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d}
_SHRINK_LEAVES = (
    nn.Linear,
    nn.Conv2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.Dropout,
    nn.MaxPool2d,
    nn.Flatten,
    nn.Identity,
)


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


def sparsity_report(model: nn.Module) -> pd.DataFrame:
    """One row per layer with parameters, and a ``total`` row.

    Columns: ``type``; ``parameters`` (all of the layer's parameters, masked or not);
    ``zeros`` (entries equal to 0 in the tensors the layer computes with, i.e. after the
    masks); ``sparsity = zeros / parameters``; ``weight_sparsity``, the same for the
    ``weight`` tensor alone (what magnitude pruning targets; NaN for a layer without one).
    The total's ``parameters`` equals ``kdlab.bench.count_parameters(model)``.
    """
    _check_model(model)
    rows: dict[str, dict[str, object]] = {}
    totals = {"parameters": 0, "zeros": 0, "weights": 0, "weight_zeros": 0}
    for name, module in model.named_modules():
        tensor_names = _tensor_names(module)
        if not tensor_names:
            continue
        counts = {"parameters": 0, "zeros": 0, "weights": 0, "weight_zeros": 0}
        for tensor_name in tensor_names:
            tensor = _effective(module, tensor_name)
            zeros = int((tensor == 0).sum())
            counts["parameters"] += tensor.numel()
            counts["zeros"] += zeros
            if tensor_name == "weight":
                counts["weights"] += tensor.numel()
                counts["weight_zeros"] += zeros
        for key, value in counts.items():
            totals[key] += value
        rows[name or "(model)"] = _report_row(type(module).__name__, counts)
    if not rows:
        raise ValueError(f"model ({type(model).__name__}) has no parameters to report on")
    rows["total"] = _report_row("", totals)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "layer"
    return table


def _report_row(kind: str, counts: dict[str, int]) -> dict[str, object]:
    weights = counts["weights"]
    return {
        "type": kind,
        "parameters": counts["parameters"],
        "zeros": counts["zeros"],
        "sparsity": counts["zeros"] / counts["parameters"] if counts["parameters"] else 0.0,
        "weight_sparsity": counts["weight_zeros"] / weights if weights else float("nan"),
    }


# ------------------------------------------------------------------ gradual pruning


def gradual_schedule(
    final_sparsity: float, steps: int, initial_sparsity: float = 0.0
) -> list[float]:
    """Zhu and Gupta's cubic schedule: ``s_t = s_f + (s_i - s_f) (1 - t / n)^3``, t = 1..n.

    Prunes fast while many redundant weights remain and slowly near the end, giving the
    network time to recover (Zhu and Gupta 2017, "To prune, or not to prune: exploring
    the efficacy of pruning for model compression"). The last entry is ``final_sparsity``.
    """
    final_sparsity = _check_fraction("final_sparsity", final_sparsity)
    initial_sparsity = _check_fraction("initial_sparsity", initial_sparsity)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if initial_sparsity > final_sparsity:
        raise ValueError(
            f"initial_sparsity ({initial_sparsity}) must not exceed final_sparsity "
            f"({final_sparsity}): pruning never revives weights"
        )
    span = initial_sparsity - final_sparsity
    return [final_sparsity + span * (1 - t / steps) ** 3 for t in range(1, steps + 1)]


def iterative_pruning(
    model: nn.Module,
    schedule: Iterable[float],
    finetune: Callable[[nn.Module], Mapping[str, float] | None],
    *,
    method: str = "unstructured",
    norm: int = 1,
    layers: Iterable[str | nn.Module] | None = None,
) -> pd.DataFrame:
    """Prune to each target in ``schedule``, calling ``finetune(model)`` after every step.

    ``schedule`` holds cumulative targets (non-decreasing, in [0, 1]), e.g. ``[0.5, 0.75,
    0.9]`` or :func:`gradual_schedule`; ``method`` is ``"unstructured"`` (layer-wise),
    ``"global"`` or ``"structured"`` (``amount`` of units per layer, with ``norm``). The
    masks stay in place while ``finetune`` trains, so pruned weights stay zero (Han et al.
    2015 prune and retrain in turns; Zhu and Gupta 2017 spread the steps over training).

    Returns one row per step: ``step``, ``target``, ``sparsity`` (measured share of zero
    weights in the chosen layers, after fine-tuning) and whatever numbers ``finetune``
    returns in a mapping (e.g. ``{"val_accuracy": ...}``). Changes ``model`` in place.

    Distillation from the unpruned model often recovers more accuracy than labels alone:
    copy the model before pruning and use the copy as the teacher::

        teacher = copy.deepcopy(model)  # dense; copy before pruning

        def finetune(pruned):
            distiller = Distiller(pruned, teacher, temperature=4.0, alpha=0.5)
            history = distiller.fit(train_loader, epochs=1, val=val_loader, progress=False)
            return {"val_accuracy": history.last["val_accuracy"]}

        table = iterative_pruning(model, gradual_schedule(0.9, steps=4), finetune)
    """
    prune_step = {
        "unstructured": lambda target: prune_unstructured(model, target, chosen),
        "global": lambda target: prune_global(model, target, chosen),
        "structured": lambda target: prune_structured(model, target, norm=norm, layers=chosen),
    }
    if method not in prune_step:
        raise ValueError(f"method must be one of {sorted(prune_step)}, got {method!r}")
    _check_norm(norm)
    if not callable(finetune):
        raise ValueError(
            f"finetune must be a function taking the model, got {type(finetune).__name__}"
        )
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Iterable):
        raise ValueError(f"schedule must be a list of sparsities, got {schedule!r}")
    targets = [_check_fraction("each schedule entry", s) for s in schedule]
    if not targets:
        raise ValueError("schedule is empty; pass target sparsities such as [0.5, 0.75, 0.9]")
    if any(b < a for a, b in pairwise(targets)):
        raise ValueError(
            f"schedule must be non-decreasing (pruning never revives weights), got {targets}"
        )
    chosen = [m for _, m in _select_layers(model, layers, skip_output=method == "structured")]
    records = []
    for step, target in enumerate(targets, start=1):
        prune_step[method](target)
        metrics = finetune(model)
        weights = [_effective(layer, "weight") for layer in chosen]
        zeros = sum(int((w == 0).sum()) for w in weights)
        record: dict[str, float] = {
            "step": step,
            "target": target,
            "sparsity": zeros / sum(w.numel() for w in weights),
        }
        if isinstance(metrics, Mapping):
            record.update({str(k): float(v) for k, v in metrics.items()})
        records.append(record)
    return pd.DataFrame(records)


# ------------------------------------------------------------------ physical shrinking


def _chain(module: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """The leaf modules in the order the forward pass runs them, or ValueError."""
    forward = type(module).forward
    prefix = f"{name}." if name else ""
    if forward is nn.Sequential.forward:
        parts = [(prefix + n, child) for n, child in module.named_children()]
    elif forward is MLP.forward:
        parts = [(prefix + "net", module.net)]
    elif forward is TeacherCNN.forward:
        parts = [(prefix + "features", module.features), (prefix + "head", module.head)]
    elif type(module) in _SHRINK_LEAVES:
        return [(name, module)]
    else:
        raise ValueError(
            f"shrink does not understand {type(module).__name__} ({name or 'the model'}): it "
            "handles nn.Sequential chains of Linear, Conv2d, BatchNorm1d/2d (right after "
            "their layer), ReLU, Dropout, MaxPool2d and Flatten, and kdlab.models.MLP, "
            "StudentMLP and TeacherCNN"
        )
    return [leaf for part_name, part in parts for leaf in _chain(part, part_name)]


def _check_chain(chain: list[tuple[str, nn.Module]]) -> list[int]:
    """Refuse orders that shrinking cannot follow; return the positions of the layers."""
    spatial: bool | None = None  # activations (N, C, H, W)? None: not known yet
    layers = []
    for i, (name, module) in enumerate(chain):
        previous = chain[i - 1][1] if i else None
        problem = None
        if isinstance(module, nn.Conv2d):
            if spatial is False:
                problem = "a Conv2d after Flatten or Linear"
            elif module.groups != 1:
                problem = f"a grouped Conv2d (groups={module.groups})"
            spatial = True
            layers.append(i)
        elif isinstance(module, nn.Linear):
            if spatial:
                problem = "a Linear on a (N, C, H, W) feature map; put Flatten before it"
            spatial = False
            layers.append(i)
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if previous is None or _NORM_AFTER.get(type(previous)) is not type(module):
                problem = f"a {type(module).__name__} that does not directly follow its layer"
            elif not module.affine:
                problem = f"a {type(module).__name__} without affine parameters"
        elif isinstance(module, nn.MaxPool2d) and spatial is False:
            problem = "a MaxPool2d outside the convolutional part"
        elif isinstance(module, nn.Flatten):
            if (module.start_dim, module.end_dim) != (1, -1):
                problem = "a Flatten other than Flatten(1, -1)"
            spatial = False
        if problem:
            raise ValueError(f"shrink cannot handle {problem} (at {name!r})")
    if not layers:
        raise ValueError("shrink found no Linear or Conv2d layer in the model")
    return layers


def _live_units(name: str, layer: nn.Module, norm: nn.Module | None) -> Tensor:
    """Indices of the units whose output is not always exactly zero."""
    zero_weight = (layer.weight.detach().flatten(1) == 0).all(dim=1)
    zero_bias = layer.bias.detach() == 0 if layer.bias is not None else torch.ones_like(zero_weight)
    if norm is None:
        dead = zero_weight & zero_bias
        constant = zero_weight & ~zero_bias
    else:
        # gamma = beta = 0 makes the norm output 0 whatever comes in, in both modes.
        dead = (norm.weight.detach() == 0) & (norm.bias.detach() == 0)
        constant = zero_weight & ~dead
    if constant.any():
        warnings.warn(
            f"shrink kept {int(constant.sum())} unit(s) of {name!r} whose weights are all "
            "zero but whose bias (or batch-norm shift) is not: they output a constant, so "
            "removing them would change the model. prune_structured zeroes both.",
            stacklevel=3,
        )
    live = (~dead).nonzero().flatten()
    # An empty layer would break the shapes; one dead unit (output 0) costs nothing.
    return live if live.numel() else torch.zeros(1, dtype=torch.long)


def _take(module: nn.Module, rows: Tensor | None, cols: Tensor | None) -> nn.Module:
    """A copy of a Linear / Conv2d / BatchNorm keeping output ``rows`` and input ``cols``."""
    new = copy.deepcopy(module)
    for tensor_name in ("weight", "bias", "running_mean", "running_var"):
        tensor = getattr(module, tensor_name, None)
        if tensor is None:
            continue
        value = tensor.detach()
        if rows is not None:
            value = value[rows]
        if cols is not None and tensor_name == "weight" and value.dim() > 1:
            value = value[:, cols]
        if isinstance(tensor, nn.Parameter):
            value = nn.Parameter(value.clone(), requires_grad=tensor.requires_grad)
        else:
            value = value.clone()
        setattr(new, tensor_name, value)
    if isinstance(new, nn.Linear):
        new.out_features, new.in_features = new.weight.shape
    elif isinstance(new, nn.Conv2d):
        new.out_channels, new.in_channels = new.weight.shape[:2]
    else:
        new.num_features = new.weight.shape[0]
    return new


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, new)


def shrink(model: nn.Module) -> nn.Module:
    """A smaller copy of a structured-pruned model, with the dead units cut out.

    A unit (Linear row, Conv2d filter) is dead when its output is exactly 0 for every
    input: its weights and bias are all zero or, when a BatchNorm follows, the norm's
    scale and shift are zero. ``relu(0) = 0``, dropout and max-pooling keep the zero, so
    the next layer's matching inputs only ever multiply zeros: the unit's row and those
    input columns are removed (after a Flatten, the unit's block of ``H*W`` columns,
    ``H*W = in_features / channels``). Outputs are unchanged, and parameters, file size
    and latency drop.

    A unit with zero weights but a non-zero bias (or norm shift) outputs a constant, not
    0. It is kept, with a warning, rather than folded into the next layer's bias: after a
    padded convolution the constant is not the same at the borders, so folding would not
    be exact. :func:`prune_structured` zeroes biases and norm parameters for this reason.

    Understands ``nn.Sequential`` chains of Linear, Conv2d, BatchNorm1d/2d directly after
    their layer, ReLU, Dropout, MaxPool2d and Flatten (nested Sequentials too), and
    ``kdlab.models.MLP``, ``StudentMLP`` and ``TeacherCNN``; anything else is refused with
    a ValueError, since a layer it does not know (a Sigmoid: ``sigmoid(0) != 0``, a skip
    connection) could make the cut wrong. The last layer's outputs are never cut; a layer
    keeps at least one unit. ``model`` itself is not changed; masks are made permanent in
    the copy.
    """
    _check_model(model)
    chain = _chain(model, "")
    positions = _check_chain(chain)
    small = make_permanent(_copy(model))
    chain = [(name, small.get_submodule(name)) for name, _ in chain]
    previous_keep: Tensor | None = None
    previous_width = 0
    for j, i in enumerate(positions):
        name, layer = chain[i]
        follower = chain[i + 1] if i + 1 < len(chain) else None
        norm = follower[1] if follower and type(follower[1]) is _NORM_AFTER[type(layer)] else None
        cols = previous_keep
        if previous_keep is not None and isinstance(layer, nn.Linear):
            block, remainder = divmod(layer.in_features, previous_width)
            if remainder:
                raise ValueError(
                    f"shrink cannot match {name!r}'s {layer.in_features} inputs to the "
                    f"{previous_width} units before it"
                )
            offsets = torch.arange(block)
            cols = (previous_keep[:, None] * block + offsets).flatten()
        is_last = j == len(positions) - 1
        rows = None if is_last else _live_units(name, layer, norm)
        if rows is not None or cols is not None:
            _replace(small, name, _take(layer, rows, cols))
        if norm is not None and rows is not None:
            _replace(small, follower[0], _take(norm, rows, None))
        previous_keep, previous_width = rows, layer.weight.shape[0]
    return small
