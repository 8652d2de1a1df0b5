"""Pruning: masks by magnitude (unstructured, global, structured), iterative schedules, the
sparsity report, and shrinking a structurally pruned model into smaller layers.

- ``masks``: ``magnitude_mask``, ``structured_mask``, ``prune_unstructured``,
  ``prune_global``, ``prune_structured``, ``make_permanent`` (Han et al. 2015; Li et al. 2017);
- ``schedule``: ``gradual_schedule`` (Zhu and Gupta 2017) and ``iterative_pruning``;
- ``sparsity``: ``sparsity_report``;
- ``shrinking``: ``shrink``, which rebuilds pruned layers smaller.
"""

from kdlab.prune.masks import (
    PRUNABLE,
    magnitude_mask,
    make_permanent,
    prune_global,
    prune_structured,
    prune_unstructured,
    structured_mask,
)
from kdlab.prune.schedule import gradual_schedule, iterative_pruning
from kdlab.prune.shrinking import shrink
from kdlab.prune.sparsity import sparsity_report

__all__ = [
    "PRUNABLE",
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
