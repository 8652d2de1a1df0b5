"""How sparse a model is: zeroed weights, neurons and channels per layer, and in total."""

from __future__ import annotations

import pandas as pd
from torch import nn

from kdlab.prune.masks import _check_model, _effective, _tensor_names

__all__ = ["sparsity_report"]


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

