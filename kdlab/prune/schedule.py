"""Iterative pruning: raise the sparsity in steps and fine-tune after each one.

:func:`gradual_schedule` is the cubic schedule of Zhu and Gupta (2017), "To prune, or not to
prune"; :func:`iterative_pruning` prunes to each sparsity of a schedule and calls a
fine-tuning function in between (Han et al. 2015).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise

import pandas as pd
from torch import nn

from kdlab.prune.masks import (
    _check_fraction,
    _check_norm,
    _effective,
    _select_layers,
    prune_global,
    prune_structured,
    prune_unstructured,
)

__all__ = ["gradual_schedule", "iterative_pruning"]


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

