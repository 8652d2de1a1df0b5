"""Physical shrinking: rebuild a structurally pruned model with smaller layers.

Structured pruning (:func:`kdlab.prune.prune_structured`) zeroes whole output neurons or
channels; :func:`shrink` then removes them, together with the matching inputs of the next
layer and the matching entries of a batch norm in between, so parameters, file size and
latency really drop (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import Tensor, nn

from kdlab.models import MLP, TeacherCNN
from kdlab.prune.masks import _NORM_AFTER, _check_model, _copy, make_permanent

__all__ = ["shrink"]




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

