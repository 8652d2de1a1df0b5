"""A good teacher is patient and consistent (Beyer et al. 2022): how the teacher's targets
are produced while the student trains on augmented views.

Four ways to feed a distillation run, from the paper's Figure 3 (loss: KL to the teacher
at T = 1, no labels):

- ``"fixed"``: the teacher's outputs computed once on the clean images (the cheap,
  tempting shortcut), while the student sees random views: the two look at different
  images, and the student is taught a function only at the clean points;
- ``"independent"``: teacher and student each get their own random view of an image;
- ``"consistent"``: both see the same random view, drawn anew every epoch;
- ``"function_matching"``: the same view, then mixup with another image of the batch, so
  the student matches the teacher's function on points between the data as well.

The paper's finding: consistent teaching and function matching keep improving over very
long schedules, while the fixed teacher overfits early; with short schedules the
ranking can look different. Notebook 08 measures both on Fashion-MNIST.

Beyer, Zhai, Royer, Markeeva, Anil, Kolesnikov (2022), "Knowledge distillation: A good
teacher is patient and consistent", CVPR.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdlab.models import logits_of

__all__ = ["MODES", "random_views", "mixup", "TeachingBatches"]

MODES = ("fixed", "independent", "consistent", "function_matching")


def _check_images(x: object) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 4 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"images must be a float tensor of shape (N, C, H, W), got {shape}")
    if len(x) == 0:
        raise ValueError("images is an empty batch")
    return x


def random_views(
    x: Tensor,
    generator: torch.Generator,
    *,
    min_scale: float = 0.85,
    max_shift: float = 0.1,
    flip: bool = True,
) -> Tensor:
    """One random view of every image: a zoom-in crop (side ``min_scale`` to 1 of the
    image, the "inception crop" in miniature), a shift of up to ``max_shift`` of the
    image size, and a horizontal flip with probability 1/2, all as one affine resampling
    (``F.affine_grid`` + bilinear ``F.grid_sample``; the border pixels extend outwards).
    """
    x = _check_images(x)
    if not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
    if not 0 <= max_shift < 1:
        raise ValueError(f"max_shift must be in [0, 1), got {max_shift}")
    n = len(x)
    scale = min_scale + (1 - min_scale) * torch.rand(n, generator=generator)
    shift = max_shift * (2 * torch.rand(n, 2, generator=generator) - 1)
    mirror = torch.ones(n)
    if flip:
        mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * mirror
    theta[:, 1, 1] = scale
    theta[:, :, 2] = 2 * shift  # affine_grid coordinates span [-1, 1]
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def mixup(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mixup of the images alone (Zhang et al. 2018): ``lam * x + (1 - lam) * x[perm]``
    with a fresh ``lam ~ U(0, 1)`` (Beta(1, 1)) per image and a random partner from the
    batch. Function matching needs no mixed labels: the teacher labels the mixed image."""
    x = _check_images(x)
    lam = torch.rand(len(x), 1, 1, 1, generator=generator).to(x)
    partner = torch.randperm(len(x), generator=generator)
    return lam * x + (1 - lam) * x[partner]


class TeachingBatches:
    """Batches ``(student_view, y, teacher_logits)`` for :class:`kdlab.distill.Distiller`,
    with the teacher's targets made as ``mode`` says (see the module docstring).

    Each pass draws a new shuffle and new views, so iterating again is a new epoch. In
    ``"fixed"`` mode the teacher runs once, here, on the clean images; in the other modes
    it runs on every batch (the price of consistency: one teacher forward per step).
    ``y`` is passed through for the training-accuracy readout; the loss should not use it
    (``alpha=0``), because after mixup it no longer describes the image.

    The random draws come from a host generator; the teacher runs on its own device
    (:func:`kdlab.models.logits_of`), wherever a Distiller has moved it, and every item of a
    batch is on ``x``'s device (the host for a data set kept there), so the Distiller moves
    the whole batch to its device in one place.

    ``views=False`` skips the random views: the images as they are ("function_matching" then
    is mixup alone, as notebook 02's limited-data experiment uses it for an MLP student).
    """

    def __init__(
        self,
        teacher: nn.Module,
        x: Tensor,
        y: Tensor,
        mode: str,
        *,
        batch_size: int = 128,
        seed: int = 0,
        views: bool = True,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        x = _check_images(x)
        if not isinstance(y, Tensor) or y.shape != (len(x),):
            raise ValueError(f"y must be a tensor of {len(x)} labels, got {getattr(y, 'shape', y)}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if teacher.training:
            raise ValueError("the teacher is in train mode; call teacher.eval() (or freeze it)")
        self.teacher, self.x, self.y, self.mode = teacher, x, y, mode
        self.batch_size, self.views = batch_size, views
        self.generator = torch.Generator().manual_seed(seed)
        self.fixed_logits = logits_of(teacher, x) if mode == "fixed" else None

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        order = torch.randperm(len(self.x), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.batch(self.x[idx], self.y[idx], idx)

    def batch(self, x: Tensor, y: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The student's view, the labels and the teacher's logits for one batch."""
        view = random_views(x, self.generator) if self.views else x
        if self.mode == "fixed":
            return view, y, self.fixed_logits[idx]
        if self.mode == "independent":
            teacher_view = random_views(x, self.generator)
        else:
            if self.mode == "function_matching":
                view = mixup(view, self.generator)
            teacher_view = view
        return view, y, logits_of(self.teacher, teacher_view, batch_size=len(teacher_view))
