"""Online distillation: no pre-trained teacher; students teach each other while they learn.

- Deep mutual learning (Zhang et al. 2018): peers trained together, each also matching
  the others' predictions.
- On-the-fly native ensemble, ONE (Lan et al. 2018): one network with a shared trunk and
  several branches; the gated ensemble of the branches is the teacher of every branch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.losses._checks import _check_logits, _check_targets, _check_temperature
from kdlab.losses.logits import soft_target_loss

__all__ = ["mutual_learning_losses", "OnTheFlyNativeEnsemble", "one_loss"]


def _check_peers(name: str, logits: Sequence[Tensor] | Tensor) -> list[Tensor]:
    peers = list(logits)
    if len(peers) < 2:
        raise ValueError(f"{name} needs the logits of at least 2 peers/branches, got {len(peers)}")
    for k, z in enumerate(peers):
        _check_logits(f"{name}[{k}]", z)
        if z.shape != peers[0].shape:
            raise ValueError(
                f"all {name} must have the same shape, got {tuple(peers[0].shape)} and "
                f"{tuple(z.shape)} (index {k})"
            )
    return peers


def mutual_learning_losses(
    peer_logits: Sequence[Tensor], targets: Tensor, temperature: float = 1.0
) -> Tensor:
    """Deep mutual learning: peer ``k``'s loss is
    ``CE(z_k, y) + 1/(K-1) sum_{l != k} T^2 KL(p_l^T || p_k^T)`` (Zhang et al. 2018,
    "Deep Mutual Learning", eq. 10; the paper uses T = 1).

    Returns the K losses as a tensor of shape (K,). Each peer's KL uses the *detached*
    predictions of the others, so ``losses.sum().backward()`` gives every peer exactly the
    gradient of its own loss and all peers are updated in one step (the paper alternates
    the updates; with one step per batch both see the same predictions).
    """
    _check_temperature(temperature)
    peers = _check_peers("peer_logits", peer_logits)
    _check_targets(targets, peers[0])
    losses = []
    for k, z in enumerate(peers):
        mimic = sum(
            soft_target_loss(z, other, temperature) for j, other in enumerate(peers) if j != k
        )
        losses.append(F.cross_entropy(z, targets.long()) + mimic / (len(peers) - 1))
    return torch.stack(losses)


class OnTheFlyNativeEnsemble(nn.Module):
    """ONE (Lan, Zhu and Gong 2018, "Knowledge Distillation by On-the-Fly Native Ensemble"):
    ``trunk`` shared by ``branches``; a gate ``g = softmax(W pool(trunk(x)))`` weighs them,
    and the ensemble logits are ``z_e = sum_k g_k z_k``.

    ``gate_features`` is the number of channels (or features) of the trunk's output, which
    is average-pooled over space when it is 4-D. ``forward`` returns the branch logits
    (K, batch, classes) and the ensemble logits (batch, classes). After training, keep one
    branch with the trunk (:meth:`branch`) as the small model, or the whole ensemble.
    """

    def __init__(self, trunk: nn.Module, branches: Sequence[nn.Module], gate_features: int):
        super().__init__()
        if len(branches) < 2:
            raise ValueError(f"ONE needs at least 2 branches, got {len(branches)}")
        if isinstance(gate_features, bool) or not isinstance(gate_features, int):
            raise ValueError(f"gate_features must be a positive int, got {gate_features!r}")
        if gate_features <= 0:
            raise ValueError(f"gate_features must be a positive int, got {gate_features}")
        self.trunk = trunk
        self.branches = nn.ModuleList(branches)
        self.gate = nn.Linear(gate_features, len(branches))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        shared = self.trunk(x)
        pooled = shared.mean(dim=(2, 3)) if shared.dim() == 4 else shared.flatten(1)
        if pooled.shape[1] != self.gate.in_features:
            raise ValueError(
                f"the trunk's output has {pooled.shape[1]} channels but the gate was built for "
                f"gate_features={self.gate.in_features}"
            )
        weights = F.softmax(self.gate(pooled), dim=1)  # (batch, K)
        logits = torch.stack([branch(shared) for branch in self.branches])  # (K, batch, classes)
        ensemble = (weights.T[:, :, None] * logits).sum(dim=0)
        return logits, ensemble

    def branch(self, k: int) -> nn.Module:
        """The single model ``trunk -> branches[k]`` (shares weights with this module)."""
        if not 0 <= k < len(self.branches):
            raise ValueError(f"branch index must be in [0, {len(self.branches) - 1}], got {k}")
        return nn.Sequential(self.trunk, self.branches[k])


def one_loss(
    branch_logits: Tensor | Sequence[Tensor],
    ensemble_logits: Tensor,
    targets: Tensor,
    temperature: float = 3.0,
) -> Tensor:
    """ONE's loss: ``sum_k CE(z_k, y) + CE(z_e, y) + sum_k T^2 KL(p_e^T || p_k^T)``
    (Lan et al. 2018, eq. 5; the paper uses T = 3).

    The ensemble ``z_e`` is the teacher of each branch in the KL terms, where it is
    detached; it learns (and so does the gate) from its own cross-entropy.
    """
    _check_temperature(temperature)
    branches = _check_peers("branch_logits", branch_logits)
    _check_logits("ensemble_logits", ensemble_logits)
    if ensemble_logits.shape != branches[0].shape:
        raise ValueError(
            f"ensemble_logits must have the branches' shape {tuple(branches[0].shape)}, got "
            f"{tuple(ensemble_logits.shape)}"
        )
    _check_targets(targets, ensemble_logits)
    y = targets.long()
    total = F.cross_entropy(ensemble_logits, y)
    for z in branches:
        total = total + F.cross_entropy(z, y) + soft_target_loss(z, ensemble_logits, temperature)
    return total
