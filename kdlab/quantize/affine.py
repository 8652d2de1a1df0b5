"""Affine (uniform) quantization by hand: quantize, dequantize, fake quantization.

A real value ``x`` and an integer ``q`` are tied by a scale ``s > 0`` and a zero point
``z`` (Jacob et al. 2018, "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", eq. 1; Krishnamoorthi 2018, "Quantizing deep
convolutional networks for efficient inference: A whitepaper", section 2)::

    q     = clamp(round(x / s) + z, qmin, qmax)
    x_hat = (q - z) * s

Everything here is plain tensor arithmetic written to agree bit for bit with PyTorch's
quantized kernels (the tests compare against ``torch.quantize_per_tensor``,
``torch.quantize_per_channel``, ``torch.fake_quantize_per_tensor_affine`` and the
``torch.ao.quantization`` observers):

- the scale is a float32 number and the arithmetic is float32;
- ``x / s`` is computed as ``x * (1 / s)`` with the float32 reciprocal, as ATen and FBGEMM
  do (a multiply is cheaper than a divide); near a rounding tie the two can differ by one
  step, so we copy the kernels rather than the textbook;
- ``round`` is round-half-to-even (``torch.round``, like ``std::nearbyint`` in the
  kernels): 0.5 -> 0, 1.5 -> 2, 2.5 -> 2.

This module does not import ``torch.ao``: the hand-written path never triggers its
deprecation warnings. The scale and zero point are chosen in :mod:`kdlab.quantize.qparams`,
the integer-only layer is in :mod:`kdlab.quantize.integer`, the
library flows in :mod:`kdlab.quantize.flows` and :mod:`kdlab.quantize.torchao_flows`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from kdlab.quantize.qparams import QParams, _check_qparams, _check_tensor

__all__ = ["quantize", "dequantize", "quantization_error", "FakeQuantize", "fake_quantize"]


# ----------------------------------------------------------------------------- quantize


def _broadcast(qparams: QParams, x: Tensor) -> tuple[Tensor, Tensor]:
    """scale and zero_point shaped to broadcast against x (along ``axis`` if per-channel)."""
    scale = qparams.scale.to(x.device)
    zero_point = qparams.zero_point.to(x.device)
    if qparams.axis is None:
        return scale, zero_point
    channels = scale.numel()
    if qparams.axis >= x.dim() or x.shape[qparams.axis] != channels:
        raise ValueError(
            f"qparams are per-channel along axis {qparams.axis} with {channels} channels, "
            f"but the tensor has shape {tuple(x.shape)}"
        )
    shape = [1] * x.dim()
    shape[qparams.axis] = channels
    return scale.view(shape), zero_point.view(shape)


def _round_to_grid(x: Tensor, qparams: QParams) -> Tensor:
    """``round(x / s) + z`` in float32, before clamping (as PyTorch's kernels compute it)."""
    scale, zero_point = _broadcast(qparams, x)
    inv_scale = 1.0 / scale  # the float32 reciprocal: x * (1/s), not x / s, as ATen/FBGEMM
    return torch.round(x.float() * inv_scale) + zero_point  # torch.round: half to even


def quantize(x: Tensor, qparams: QParams) -> Tensor:
    """``q = clamp(round(x / s) + z, qmin, qmax)`` as an integer tensor of ``qparams.dtype``.

    Round half to even; values outside the representable range ``[(qmin - z) s,
    (qmax - z) s]`` are clamped to the grid's ends (Jacob et al. 2018, eq. 1).
    """
    x = _check_tensor("x", x)
    qparams = _check_qparams(qparams)
    q = _round_to_grid(x, qparams).clamp(qparams.qmin, qparams.qmax)
    return q.to(qparams.dtype)


def dequantize(q: Tensor, qparams: QParams) -> Tensor:
    """``x_hat = (q - z) * s`` as float32 (the integer difference is exact)."""
    qparams = _check_qparams(qparams)
    if not isinstance(q, Tensor) or q.is_floating_point() or q.is_complex() or q.is_quantized:
        raise ValueError(
            "q must be an integer tensor from quantize(), got "
            f"{getattr(q, 'dtype', type(q).__name__)}"
        )
    if q.numel() and (q.min() < qparams.qmin or q.max() > qparams.qmax):
        raise ValueError(
            f"q has values in [{int(q.min())}, {int(q.max())}], outside the grid "
            f"[{qparams.qmin}, {qparams.qmax}] of these qparams"
        )
    scale, zero_point = _broadcast(qparams, q)
    return (q.to(torch.int64) - zero_point).float() * scale


def quantization_error(x: Tensor, qparams: QParams) -> dict[str, float]:
    """How much quantizing ``x`` with ``qparams`` loses, computed in float64.

    ``mse = mean((x - x_hat)^2)``, ``max_abs_error = max |x - x_hat|``,
    ``sqnr_db = 10 log10(sum x^2 / sum (x - x_hat)^2)`` (signal-to-quantization-noise
    ratio; ``inf`` when the error is zero; each extra bit adds about 6 dB), and
    ``clipped_fraction``, the share of values outside the representable range.
    """
    x = _check_tensor("x", x)
    qparams = _check_qparams(qparams)
    unclamped = _round_to_grid(x, qparams)
    clipped = (unclamped < qparams.qmin) | (unclamped > qparams.qmax)
    x_hat = dequantize(quantize(x, qparams), qparams).double()
    error = x.double() - x_hat
    noise = float(error.pow(2).sum())
    signal = float(x.double().pow(2).sum())
    return {
        "mse": noise / x.numel(),
        "max_abs_error": float(error.abs().max()),
        "sqnr_db": math.inf if noise == 0 else 10 * math.log10(signal / noise),
        "clipped_fraction": float(clipped.double().mean()),
    }


# ----------------------------------------------------------------------------- fake quant


class FakeQuantize(torch.autograd.Function):
    """Quantize-dequantize in the forward pass, a clipped straight-through estimator backward.

    Forward: ``x_hat = (clamp(round(x / s) + z, qmin, qmax) - z) * s``, float32 math,
    returned in ``x``'s dtype. Training through ``x_hat`` lets the weights adapt to the grid
    (quantization-aware training; Jacob et al. 2018, section 3).

    Backward: ``round`` has zero gradient almost everywhere, so we pretend it is the
    identity (the straight-through estimator; Bengio, Leonard and Courville 2013,
    "Estimating or Propagating Gradients Through Stochastic Neurons for Conditional
    Computation") but keep the clamp::

        dL/dx = dL/dx_hat * 1[qmin <= round(x / s) + z <= qmax]

    The mask is taken on the rounded value, as ``torch.fake_quantize_per_tensor_affine``
    does: a value just beyond the top of the range that still rounds to ``qmax`` gets
    gradient 1. ``qparams`` receive no gradient.
    """

    @staticmethod
    def forward(ctx, x: Tensor, qparams: QParams) -> Tensor:  # type: ignore[override]
        x = _check_tensor("x", x)
        qparams = _check_qparams(qparams)
        scale, zero_point = _broadcast(qparams, x)
        unclamped = _round_to_grid(x, qparams)
        inside = (unclamped >= qparams.qmin) & (unclamped <= qparams.qmax)
        ctx.save_for_backward(inside)
        q = unclamped.clamp(qparams.qmin, qparams.qmax)
        return ((q - zero_point) * scale).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (inside,) = ctx.saved_tensors
        return torch.where(inside, grad_output, torch.zeros_like(grad_output)), None


def fake_quantize(x: Tensor, qparams: QParams) -> Tensor:
    """``dequantize(quantize(x))`` with a straight-through gradient; see ``FakeQuantize``."""
    return FakeQuantize.apply(x, qparams)
