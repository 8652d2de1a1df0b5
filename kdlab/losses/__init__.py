"""Distillation losses, one family per module.

Every loss states its formula and its paper. Inputs are validated at this boundary so a
mistake (swapped shapes, a zero temperature, NaN logits) fails with a message that says
what was expected and what was given, instead of training on garbage.

- ``logits``: soft targets at temperature T and the hard+soft mix (Hinton et al. 2015).
"""

from kdlab.losses.logits import distillation_loss, soft_target_loss, softmax_with_temperature

__all__ = ["softmax_with_temperature", "soft_target_loss", "distillation_loss"]
