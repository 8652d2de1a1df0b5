"""Distillation losses, one family per module.

Every loss states its formula and its paper. Inputs are validated at this boundary so a
mistake (swapped shapes, a zero temperature, NaN logits) fails with a message that says
what was expected and what was given, instead of training on garbage.

- ``logits``: soft targets at temperature T and the hard+soft mix (Hinton et al. 2015);
  decoupled KD (Zhao et al. 2022).
- ``feature``: FitNets hints with a regressor (Romero et al. 2015); attention transfer
  (Zagoruyko and Komodakis 2017).
- ``relation``: RKD distance and angle (Park et al. 2019); similarity-preserving KD
  (Tung and Mori 2019).
- ``online``: deep mutual learning (Zhang et al. 2018); ONE (Lan et al. 2018).
- ``pixel``: per-pixel KD for segmentation, over labelled pixels only (Liu et al. 2019).
- ``hidden``: cosine loss between hidden states over real tokens and DistilBERT's triple
  loss (Sanh et al. 2019).
"""

from kdlab.losses.feature import HintLoss, attention_map, attention_transfer_loss
from kdlab.losses.hidden import cosine_hidden_loss, distilbert_loss
from kdlab.losses.logits import (
    decoupled_kd_loss,
    distillation_loss,
    soft_target_loss,
    softmax_with_temperature,
)
from kdlab.losses.online import OnTheFlyNativeEnsemble, mutual_learning_losses, one_loss
from kdlab.losses.pixel import IGNORE_INDEX, pixel_distillation_loss
from kdlab.losses.relation import (
    rkd_angle_loss,
    rkd_distance_loss,
    rkd_loss,
    similarity_preserving_loss,
)

__all__ = [
    "softmax_with_temperature",
    "soft_target_loss",
    "distillation_loss",
    "pixel_distillation_loss",
    "IGNORE_INDEX",
    "decoupled_kd_loss",
    "HintLoss",
    "attention_map",
    "attention_transfer_loss",
    "rkd_distance_loss",
    "rkd_angle_loss",
    "rkd_loss",
    "similarity_preserving_loss",
    "mutual_learning_losses",
    "OnTheFlyNativeEnsemble",
    "one_loss",
    "cosine_hidden_loss",
    "distilbert_loss",
]
