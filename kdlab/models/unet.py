"""U-Net for semantic segmentation, and its slim student.

``UNet`` follows Ronneberger, Fischer and Brox (2015), "U-Net: Convolutional Networks for
Biomedical Image Segmentation": an encoder of ``depth`` downsampling stages (two 3x3
convolutions each, doubling the channels), a decoder that upsamples and concatenates the
encoder's feature map of the same size (the skip connection), and a 1x1 convolution to
one logit per class and pixel. We add batch normalisation and "same" padding, so the
logits have the input's size.

``SlimUNet`` is the same network with a quarter of the channels: 6 % of the teacher's
parameters and FLOPs. It can use depthwise-separable convolutions (Howard et al. 2017,
"MobileNets") instead, but on a CPU those cost more time per FLOP than plain ones.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UNet", "SlimUNet"]


def conv3x3(cin: int, cout: int, separable: bool) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU; separable: depthwise 3x3 then pointwise 1x1."""
    if separable:
        conv: list[nn.Module] = [
            nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        ]
    else:
        conv = [nn.Conv2d(cin, cout, 3, padding=1, bias=False)]
    return nn.Sequential(*conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def double_conv(cin: int, cout: int, separable: bool) -> nn.Sequential:
    return nn.Sequential(conv3x3(cin, cout, separable), conv3x3(cout, cout, separable))


class Up(nn.Module):
    """Double the size, halve the channels, concatenate the skip, then two convolutions."""

    def __init__(self, cin: int, cout: int, bilinear: bool, separable: bool):
        super().__init__()
        if bilinear:
            self.up: nn.Module = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(cin, cout, 1, bias=False),
            )
        else:
            self.up = nn.ConvTranspose2d(cin, cout, 2, stride=2)
        self.conv = double_conv(2 * cout, cout, separable)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(torch.cat([skip, self.up(x)], dim=1))


class UNet(nn.Module):
    """U-Net with ``base * 2**i`` channels at level ``i = 0..depth``; logits ``(N, C, H, W)``.

    ``H`` and ``W`` must be divisible by ``2**depth`` (each level halves them).
    ``bilinear=True`` upsamples by bilinear interpolation and a 1x1 convolution,
    ``False`` by a 2x2 transposed convolution (Ronneberger's "up-convolution").
    ``separable=True`` replaces each 3x3 convolution by a depthwise and a pointwise one.

    The default (``base=16``, 1.81 million parameters, 6.1 GFLOPs per 256x256 image) is
    sized so a teacher trains on a few hundred patches in minutes on a 2-core CPU; the
    original U-Net starts at 64 channels (31 million parameters).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 6,
        base: int = 16,
        depth: int = 4,
        *,
        bilinear: bool = True,
        separable: bool = False,
    ):
        super().__init__()
        for name, value, low in (
            ("in_channels", in_channels, 1),
            ("num_classes", num_classes, 2),
            ("base", base, 1),
            ("depth", depth, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.stem = double_conv(in_channels, widths[0], separable)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(widths[i], widths[i + 1], separable))
            for i in range(depth)
        )
        self.ups = nn.ModuleList(
            Up(widths[i + 1], widths[i], bilinear, separable) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"expected images of shape (batch, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        multiple = 2**self.depth
        h, w = x.shape[-2:]
        if h % multiple or w % multiple:
            raise ValueError(
                f"height and width must be divisible by 2**depth = {multiple} (depth={self.depth}),"
                f" got {h}x{w}; crop or pad the patches (e.g. to {multiple * max(1, h // multiple)}"
                f"x{multiple * max(1, w // multiple)}) or build the model with a smaller depth"
            )


class SlimUNet(UNet):
    """The student: a quarter of the teacher's channels (``base=4``); same classes and
    output size as :class:`UNet`.

    With the defaults and 6 classes: 114 thousand parameters (6.3 % of the teacher's 1.81
    million) and 6 % of its FLOPs. ``separable=True`` (depthwise 3x3 then pointwise 1x1)
    at ``base=8`` has fewer parameters (68 thousand) but, on a 2-core CPU, measured slower
    at inference and training than the default: depthwise convolutions do little
    arithmetic per byte of memory moved.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 6,
        base: int = 4,
        depth: int = 4,
        *,
        bilinear: bool = True,
        separable: bool = False,
    ):
        super().__init__(
            in_channels, num_classes, base, depth, bilinear=bilinear, separable=separable
        )

