"""Online distillation, with no pre-trained teacher: peers or branches teach each other.

- :class:`MutualDistiller`: deep mutual learning (Zhang et al. 2018);
- :class:`NativeEnsembleDistiller`: ONE, on-the-fly native ensemble (Lan et al. 2018).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.distill.trainer import Distiller
from kdlab.losses import OnTheFlyNativeEnsemble, mutual_learning_losses, one_loss

__all__ = ["MutualDistiller", "NativeEnsembleDistiller"]


class MutualDistiller(Distiller):
    """Deep mutual learning of ``peers`` (no teacher): one Adam step per batch updates every
    peer with :func:`kdlab.losses.mutual_learning_losses`. ``student`` is peer 0."""

    def __init__(
        self, peers: Sequence[nn.Module], *, temperature: float = 1.0, lr: float = 1e-3, **kwargs
    ):
        peers = list(peers)
        if len(peers) < 2 or len({id(p) for p in peers}) != len(peers):
            raise ValueError(f"pass at least 2 distinct peer models, got {len(peers)}")
        params = [p for peer in peers for p in peer.parameters()]
        optimizer = kwargs.pop("optimizer", None) or torch.optim.Adam(params, lr=lr)
        super().__init__(
            peers[0], None, temperature=temperature, lr=lr, optimizer=optimizer, **kwargs
        )
        self.peers = nn.ModuleList(peers).to(self.device)

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.peers.train()
        logits = [peer(x) for peer in self.peers]
        losses = mutual_learning_losses(logits, y, self.temperature)
        return logits[0], {"loss": losses.sum(), "hard_loss": F.cross_entropy(logits[0], y)}


class NativeEnsembleDistiller(Distiller):
    """ONE: trains a :class:`kdlab.losses.OnTheFlyNativeEnsemble` with
    :func:`kdlab.losses.one_loss` (no teacher); ``student`` is ``trunk -> branches[0]``."""

    def __init__(
        self,
        model: OnTheFlyNativeEnsemble,
        *,
        temperature: float = 3.0,
        lr: float = 1e-3,
        **kwargs,
    ):
        if not isinstance(model, OnTheFlyNativeEnsemble):
            raise ValueError(f"model must be an OnTheFlyNativeEnsemble, got {type(model).__name__}")
        optimizer = kwargs.pop("optimizer", None) or torch.optim.Adam(model.parameters(), lr=lr)
        super().__init__(
            model.branch(0), None, temperature=temperature, lr=lr, optimizer=optimizer, **kwargs
        )
        self.model = model.to(self.device)

    def loss_parts(
        self, x: Tensor, y: Tensor, teacher_logits: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        self.model.train()
        branch_logits, ensemble = self.model(x)
        loss = one_loss(branch_logits, ensemble, y, self.temperature)
        return branch_logits[0], {"loss": loss, "hard_loss": F.cross_entropy(branch_logits[0], y)}

