"""Affine (uniform) quantization by hand: scale, zero point, fake quantization, integer linear.

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
deprecation warnings. The library flows (dynamic/static PTQ, QAT) live elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = [
    "SCALE_EPS",
    "QParams",
    "quant_range",
    "qparams_from_range",
    "qparams_from_minmax",
    "qparams_from_percentile",
    "quantize",
    "dequantize",
    "quantization_error",
    "FakeQuantize",
    "fake_quantize",
    "fixed_point_multiplier",
    "IntegerLinear",
]

# The smallest scale we hand out. An all-zero tensor (or channel) has an empty range, and
# range / (qmax - qmin) would be a zero scale, so x / scale would divide by zero. Any
# positive scale represents an all-zero tensor exactly; we use float32's machine epsilon,
# the value PyTorch's observers use, so our parameters equal theirs.
SCALE_EPS = torch.finfo(torch.float32).eps

_DTYPES = {
    torch.int8: torch.int8,
    torch.qint8: torch.int8,
    torch.uint8: torch.uint8,
    torch.quint8: torch.uint8,
}
_STORAGE_LIMITS = {torch.int8: (-128, 127), torch.uint8: (0, 255)}
_INT32_MAX = 2**31 - 1


# ----------------------------------------------------------------------------- checks


def _check_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or dtype not in _DTYPES:
        raise ValueError(
            "dtype must be torch.int8 or torch.uint8 (torch.qint8 and torch.quint8 are "
            f"accepted as aliases), got {dtype!r}"
        )
    return _DTYPES[dtype]


def _check_bits(bits: object) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"bits must be an int in [2, 8], got {bits!r}")
    return bits


def _check_tensor(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}); there is no range")
    if not torch.isfinite(x).all():
        raise ValueError(
            f"{name} contains NaN or infinite values; a quantization range must be finite"
        )
    return x


def _check_axis(axis: object, ndim: int) -> int | None:
    if axis is None:
        return None
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise ValueError(f"axis must be None (per-tensor) or an int (per-channel), got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"axis {axis} is out of range for a tensor with {ndim} dimensions "
            f"(expected an int in [{-ndim}, {ndim - 1}])"
        )
    return axis % ndim


def _check_qparams(qparams: object) -> QParams:
    if not isinstance(qparams, QParams):
        raise ValueError(f"qparams must be a QParams, got {type(qparams).__name__}")
    return qparams


# ----------------------------------------------------------------------------- QParams


@dataclass(frozen=True, eq=False)
class QParams:
    """Affine quantization parameters: ``x_hat = (q - zero_point) * scale``.

    ``scale`` (float32) and ``zero_point`` (int64) are 0-d tensors for per-tensor
    quantization (``axis=None``) and 1-d tensors of one value per channel along ``axis``
    for per-channel quantization. ``qmin`` and ``qmax`` are the integer grid's ends and
    ``dtype`` (``torch.int8`` or ``torch.uint8``) the type ``quantize`` returns. Python
    numbers are accepted for ``scale`` and ``zero_point`` and converted.
    """

    scale: Tensor
    zero_point: Tensor
    qmin: int
    qmax: int
    dtype: torch.dtype
    axis: int | None = None

    def __post_init__(self) -> None:
        dtype = _check_dtype(self.dtype)
        scale = torch.as_tensor(self.scale, dtype=torch.float32).detach()
        zero_point = torch.as_tensor(self.zero_point)
        if zero_point.is_floating_point() and not torch.equal(zero_point, zero_point.round()):
            raise ValueError(f"zero_point must be an integer, got {self.zero_point!r}")
        zero_point = zero_point.detach().to(torch.int64)
        lo, hi = _STORAGE_LIMITS[dtype]
        for name in ("qmin", "qmax"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int, got {value!r}")
        if not lo <= self.qmin < self.qmax <= hi:
            raise ValueError(
                f"need {lo} <= qmin < qmax <= {hi} for {dtype}, got qmin={self.qmin}, "
                f"qmax={self.qmax}"
            )
        if self.axis is None:
            if scale.dim() != 0 or zero_point.dim() != 0:
                raise ValueError(
                    "per-tensor QParams (axis=None) need a single scale and zero point, got "
                    f"shapes {tuple(scale.shape)} and {tuple(zero_point.shape)}"
                )
        else:
            if isinstance(self.axis, bool) or not isinstance(self.axis, int) or self.axis < 0:
                raise ValueError(f"axis must be None or an int >= 0, got {self.axis!r}")
            if scale.dim() != 1 or zero_point.shape != scale.shape or scale.numel() == 0:
                raise ValueError(
                    "per-channel QParams need 1-d scale and zero_point of the same length, got "
                    f"shapes {tuple(scale.shape)} and {tuple(zero_point.shape)}"
                )
        if not (torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"scale must be finite and > 0, got {scale.tolist()}")
        if ((zero_point < self.qmin) | (zero_point > self.qmax)).any():
            raise ValueError(
                f"zero_point must lie in [qmin, qmax] = [{self.qmin}, {self.qmax}], "
                f"got {zero_point.tolist()}"
            )
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)
        object.__setattr__(self, "dtype", dtype)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def bits(self) -> int:
        """Bits needed for the grid: 8 for [-128, 127], [-127, 127] and [0, 255]."""
        return (self.qmax - self.qmin).bit_length()

    def __repr__(self) -> str:
        scale = self.scale.tolist()
        zero_point = self.zero_point.tolist()
        return (
            f"QParams(scale={scale}, zero_point={zero_point}, qmin={self.qmin}, "
            f"qmax={self.qmax}, dtype={self.dtype}, axis={self.axis})"
        )


def quant_range(
    bits: int = 8, dtype: torch.dtype = torch.int8, restricted: bool = False
) -> tuple[int, int]:
    """The integer grid ``(qmin, qmax)`` for ``bits`` bits stored in ``dtype``.

    Signed: ``[-2^(b-1), 2^(b-1) - 1]``, restricted ``[-(2^(b-1) - 1), 2^(b-1) - 1]``.
    Unsigned: ``[0, 2^b - 1]``, restricted ``[1, 2^b - 1]``. The restricted grid drops the
    one value that has no mirror image (-128 for int8), so it is symmetric about its
    middle (0 for int8, 128 for uint8).
    """
    bits = _check_bits(bits)
    dtype = _check_dtype(dtype)
    if dtype == torch.int8:
        qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        qmin, qmax = 0, 2**bits - 1
    return (qmin + 1 if restricted else qmin), qmax


# ----------------------------------------------------------------------------- qparams


def qparams_from_range(
    min_val: float | Tensor,
    max_val: float | Tensor,
    *,
    bits: int = 8,
    dtype: torch.dtype = torch.int8,
    symmetric: bool = False,
    restricted: bool | None = None,
    axis: int | None = None,
) -> QParams:
    """Scale and zero point that map the real range ``[min_val, max_val]`` onto the grid.

    The range is first widened to contain 0 (``min <- min(min, 0)``, ``max <- max(max, 0)``)
    so that zero, which padding and ReLU produce everywhere, is represented exactly.

    Asymmetric (affine; Krishnamoorthi 2018, eq. 1-2; Jacob et al. 2018, section 2.1)::

        s = (max - min) / (qmax - qmin)
        z = clamp(qmin - round(min / s), qmin, qmax)

    Symmetric (Krishnamoorthi 2018, eq. 6)::

        s = max(|min|, |max|) / ((qmax - qmin) / 2)
        z = 0 for int8, 2^(bits-1) (128 for 8 bits) for uint8

    ``restricted`` picks the grid (see ``quant_range``). By default (``None``) symmetric
    quantization uses the restricted grid, so int8 is [-127, 127] and ``s = max|x| / 127``:
    -128 has no positive counterpart, the restricted grid keeps the mapping symmetric
    (``q(-x) = -q(x)``), and it is what many int8 kernels assume for weights. Pass
    ``restricted=False`` for the full [-128, 127], where ``s = max|x| / 127.5`` as in
    PyTorch's observers. Asymmetric quantization uses the full grid by default.

    A zero range (an all-zero tensor or channel) gives ``s = SCALE_EPS`` instead of 0, so
    nothing divides by zero; every value still quantizes to the zero point exactly.

    ``min_val`` and ``max_val`` are numbers (per-tensor, ``axis=None``) or 1-d tensors
    with one entry per channel of the tensor's dimension ``axis`` (per-channel).
    """
    bits = _check_bits(bits)
    dtype = _check_dtype(dtype)
    if restricted is None:
        restricted = symmetric
    qmin, qmax = quant_range(bits, dtype, restricted=bool(restricted))
    lo = torch.as_tensor(min_val, dtype=torch.float32)
    hi = torch.as_tensor(max_val, dtype=torch.float32)
    if lo.shape != hi.shape:
        raise ValueError(
            f"min_val and max_val must have the same shape, got {tuple(lo.shape)} and "
            f"{tuple(hi.shape)}"
        )
    if axis is None and lo.dim() != 0:
        raise ValueError(
            "per-tensor quantization (axis=None) takes a single min and max, got shape "
            f"{tuple(lo.shape)}; pass axis=... for one range per channel"
        )
    if axis is not None:
        if isinstance(axis, bool) or not isinstance(axis, int) or axis < 0:
            raise ValueError(f"axis must be None or an int >= 0 here, got {axis!r}")
        if lo.dim() != 1 or lo.numel() == 0:
            raise ValueError(
                f"per-channel quantization (axis={axis}) takes 1-d min and max tensors, one "
                f"entry per channel, got shape {tuple(lo.shape)}"
            )
    if not (torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        raise ValueError("min_val and max_val must be finite, got NaN or infinite values")
    if (lo > hi).any():
        raise ValueError(f"need min_val <= max_val, got {lo.tolist()} > {hi.tolist()}")

    lo = torch.clamp(lo, max=0.0)
    hi = torch.clamp(hi, min=0.0)
    if symmetric:
        scale = torch.maximum(-lo, hi) / (float(qmax - qmin) / 2)
        scale = torch.clamp(scale, min=SCALE_EPS)
        zero_point = torch.full_like(scale, (qmin + qmax + 1) // 2, dtype=torch.int64)
    else:
        scale = (hi - lo) / float(qmax - qmin)
        scale = torch.clamp(scale, min=SCALE_EPS)
        zero_point = qmin - torch.round(lo / scale).to(torch.int64)
        zero_point = torch.clamp(zero_point, qmin, qmax)
    return QParams(scale, zero_point, qmin, qmax, dtype, axis)


def _channel_rows(x: Tensor, axis: int | None) -> Tensor:
    """x as (channels, values): one row per channel along ``axis``, or a single row."""
    if axis is None:
        return x.detach().reshape(1, -1)
    return x.detach().movedim(axis, 0).reshape(x.shape[axis], -1)


def qparams_from_minmax(
    x: Tensor,
    *,
    bits: int = 8,
    dtype: torch.dtype = torch.int8,
    symmetric: bool = False,
    restricted: bool | None = None,
    axis: int | None = None,
) -> QParams:
    """Calibrate on the observed range: ``qparams_from_range(min(x), max(x))``.

    Per-tensor (``axis=None``) or per-channel: with ``axis=a`` each slice ``x.select(a, c)``
    gets its own scale and zero point (Krishnamoorthi 2018: per-channel
    weights recover most of the accuracy lost to per-tensor int8). This is PyTorch's
    ``MinMaxObserver`` / ``PerChannelMinMaxObserver`` for a single batch.
    """
    x = _check_tensor("x", x)
    axis = _check_axis(axis, x.dim())
    rows = _channel_rows(x, axis).float()
    lo, hi = rows.amin(dim=1), rows.amax(dim=1)
    if axis is None:
        lo, hi = lo[0], hi[0]
    return qparams_from_range(
        lo, hi, bits=bits, dtype=dtype, symmetric=symmetric, restricted=restricted, axis=axis
    )


def _quantile(rows: Tensor, fraction: float) -> Tensor:
    """Per-row quantile with linear interpolation (numpy's default), for any row length."""
    n = rows.shape[1]
    position = fraction * (n - 1)
    below = min(int(math.floor(position)), n - 1)
    above = min(below + 1, n - 1)
    # kthvalue is linear time; torch.quantile refuses inputs above 2^24 elements.
    lo = rows.kthvalue(below + 1, dim=1).values.double()
    hi = rows.kthvalue(above + 1, dim=1).values.double()
    return (lo + (hi - lo) * (position - below)).float()


def qparams_from_percentile(
    x: Tensor,
    percentile: float = 99.99,
    *,
    bits: int = 8,
    dtype: torch.dtype = torch.int8,
    symmetric: bool = False,
    restricted: bool | None = None,
    axis: int | None = None,
) -> QParams:
    """Calibrate on a range that covers ``percentile`` percent of the values, clipping outliers.

    Asymmetric: the central ``p`` percent, ``[P_{(100-p)/2}(x), P_{100-(100-p)/2}(x)]``.
    Symmetric: ``max = P_p(|x|)``, the range ``[-max, max]``. Percentiles interpolate
    linearly between order statistics (numpy's default); ``p = 100`` is the min/max range.

    A few outliers stretch a min/max range and waste grid steps on values that almost never
    occur; clipping them trades a large error on the outliers for a finer step on
    everything else (Krishnamoorthi 2018; Wu et al. 2020, "Integer
    Quantization for Deep Learning Inference", section 4.2).
    """
    x = _check_tensor("x", x)
    if (
        isinstance(percentile, bool)
        or not isinstance(percentile, (int, float))
        or not 0 < percentile <= 100
    ):
        raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}")
    axis = _check_axis(axis, x.dim())
    rows = _channel_rows(x, axis).float()
    if symmetric:
        hi = _quantile(rows.abs(), percentile / 100)
        lo = -hi
    else:
        tail = (100 - percentile) / 200
        lo, hi = _quantile(rows, tail), _quantile(rows, 1 - tail)
    if axis is None:
        lo, hi = lo[0], hi[0]
    return qparams_from_range(
        lo, hi, bits=bits, dtype=dtype, symmetric=symmetric, restricted=restricted, axis=axis
    )


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


# ----------------------------------------------------------------------------- integer linear


def fixed_point_multiplier(multiplier: float) -> tuple[int, int]:
    """Write a real multiplier ``M`` as ``M0 * 2^-n`` with an integer ``2^30 <= M0 < 2^31``.

    Jacob et al. 2018 (section 2.2, eq. 6) store ``M = 2^-n' * M0'`` with ``M0'`` in
    ``[0.5, 1)`` as a 31-bit fixed-point number; here ``M0 = round(M0' * 2^31)`` and
    ``n = n' + 31``. Then ``M * a`` for an int32 ``a`` is ``(a * M0) >> n`` with rounding:
    one int64 multiply and a shift, no floating point. The relative error is at most
    ``2^-31`` (about 5e-10). Supports ``2^-32 <= M < 2^30`` (shift 1 to 62, so ``a * M0``
    plus the rounding term fits in int64).
    """
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)):
        raise ValueError(f"multiplier must be a real number > 0, got {multiplier!r}")
    if not math.isfinite(multiplier) or multiplier <= 0:
        raise ValueError(f"multiplier must be finite and > 0, got {multiplier}")
    mantissa, exponent = math.frexp(multiplier)  # multiplier = mantissa * 2^exponent
    m0 = round(mantissa * 2**31)
    if m0 == 2**31:  # the mantissa rounded up to 1.0
        m0, exponent = m0 // 2, exponent + 1
    shift = 31 - exponent
    if not 1 <= shift <= 62:
        raise ValueError(
            f"multiplier {multiplier:g} is outside [2^-32, 2^30), the range a 31-bit "
            "fixed-point multiplier with a shift of 1 to 62 represents"
        )
    return m0, shift


class IntegerLinear(nn.Module):
    """A linear layer computed with integers only, from quantized input to quantized output.

    With ``x = s_x (q_x - z_x)``, symmetric weights ``W = s_w q_w`` (``z_w = 0``; one
    ``s_w`` per output channel or one for the tensor) and the bias stored as int32 with
    scale ``s_x s_w`` and zero point 0, ``y = x W^T + b`` becomes (Jacob et al. 2018,
    section 2.2-2.4)::

        acc_j = sum_k (q_x[k] - z_x) q_w[j, k] + q_b[j]            int32 accumulator
        q_y_j = clamp(z_y + round(M_j acc_j), qmin_y, qmax_y),     M_j = s_x s_w[j] / s_y

    and ``M_j = M0_j 2^-n_j`` (``fixed_point_multiplier``), so requantization is an int64
    multiply and a rounding right shift. ``forward`` quantizes a float input, runs the
    integer path, and dequantizes the result, so it can stand in for the float layer;
    ``forward_integer`` is the integer path alone.

    Build it with ``IntegerLinear.from_float(linear, calibration_input)``.
    """

    weight_int: Tensor
    bias_int: Tensor | None
    multiplier: Tensor
    shift: Tensor

    def __init__(
        self,
        weight_int: Tensor,
        bias_int: Tensor | None,
        input_qparams: QParams,
        weight_qparams: QParams,
        output_qparams: QParams,
    ):
        super().__init__()
        for name, qp in (
            ("input_qparams", input_qparams),
            ("weight_qparams", weight_qparams),
            ("output_qparams", output_qparams),
        ):
            if not isinstance(qp, QParams):
                raise ValueError(f"{name} must be a QParams, got {type(qp).__name__}")
        if input_qparams.per_channel or output_qparams.per_channel:
            raise ValueError("input and output quantization must be per-tensor (axis=None)")
        if not isinstance(weight_int, Tensor) or weight_int.dtype != torch.int8:
            raise ValueError(
                "weight_int must be an int8 tensor, got "
                f"{getattr(weight_int, 'dtype', type(weight_int).__name__)}"
            )
        if weight_int.dim() != 2:
            raise ValueError(
                f"weight_int must have shape (out_features, in_features), got "
                f"{tuple(weight_int.shape)}"
            )
        if weight_qparams.dtype != torch.int8 or (weight_qparams.zero_point != 0).any():
            raise ValueError(
                "weights must be int8 and symmetric (zero point 0), got dtype "
                f"{weight_qparams.dtype} and zero points {weight_qparams.zero_point.tolist()}"
            )
        out_features = weight_int.shape[0]
        if weight_qparams.per_channel and (
            weight_qparams.axis != 0 or weight_qparams.scale.numel() != out_features
        ):
            raise ValueError(
                f"per-channel weight qparams must be along axis 0 with {out_features} "
                f"channels, got axis {weight_qparams.axis} with "
                f"{weight_qparams.scale.numel()} channels"
            )
        if bias_int is not None and (
            not isinstance(bias_int, Tensor)
            or bias_int.dtype != torch.int32
            or bias_int.shape != (out_features,)
        ):
            raise ValueError(
                f"bias_int must be None or an int32 tensor of shape ({out_features},), got "
                f"{getattr(bias_int, 'dtype', type(bias_int).__name__)} "
                f"{tuple(getattr(bias_int, 'shape', ()))}"
            )
        self.in_features = weight_int.shape[1]
        self.out_features = out_features
        self.input_qparams = input_qparams
        self.weight_qparams = weight_qparams
        self.output_qparams = output_qparams
        self.register_buffer("weight_int", weight_int.detach().clone())
        self.register_buffer("bias_int", None if bias_int is None else bias_int.detach().clone())

        real = (
            input_qparams.scale.double()
            * weight_qparams.scale.double().expand(out_features)
            / output_qparams.scale.double()
        )
        pairs = [fixed_point_multiplier(float(m)) for m in real]
        self.register_buffer("multiplier", torch.tensor([m0 for m0, _ in pairs]))
        self.register_buffer("shift", torch.tensor([n for _, n in pairs]))

    @classmethod
    def from_float(
        cls,
        linear: nn.Linear,
        calibration_input: Tensor,
        *,
        per_channel: bool = True,
        activation_dtype: torch.dtype = torch.uint8,
        activation_bits: int = 8,
    ) -> IntegerLinear:
        """Quantize a float ``nn.Linear``, calibrating activation ranges on sample inputs.

        Input and output: asymmetric, per-tensor, ``activation_dtype`` with
        ``activation_bits`` bits, ranges from the min/max of ``calibration_input`` and of
        ``linear(calibration_input)``. Weights: int8, symmetric on [-127, 127], one scale
        per output channel (``per_channel=True``) or per tensor. Bias:
        ``q_b = round(b / (s_x s_w))`` as int32.
        """
        if not isinstance(linear, nn.Linear):
            raise ValueError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
        x = _check_tensor("calibration_input", calibration_input)
        if x.dim() < 1 or x.shape[-1] != linear.in_features:
            raise ValueError(
                f"calibration_input must have shape (..., {linear.in_features}), got "
                f"{tuple(x.shape)}"
            )
        with torch.no_grad():
            weight = _check_tensor("linear.weight", linear.weight.detach()).float()
            input_qparams = qparams_from_minmax(
                x, dtype=activation_dtype, bits=activation_bits, symmetric=False
            )
            output_qparams = qparams_from_minmax(
                linear(x).float(), dtype=activation_dtype, bits=activation_bits
            )
            weight_qparams = qparams_from_minmax(
                weight, dtype=torch.int8, symmetric=True, axis=0 if per_channel else None
            )
            weight_int = quantize(weight, weight_qparams)
            bias_int = None
            if linear.bias is not None:
                bias = _check_tensor("linear.bias", linear.bias.detach()).double()
                bias_scale = input_qparams.scale.double() * weight_qparams.scale.double()
                bias_q = torch.round(bias / bias_scale)
                if bias_q.abs().max() > _INT32_MAX:
                    raise ValueError(
                        "the bias does not fit int32 at scale s_x * s_w; the input or weight "
                        "scale is too small for this bias"
                    )
                bias_int = bias_q.to(torch.int32)
        return cls(weight_int, bias_int, input_qparams, weight_qparams, output_qparams)

    def quantize_input(self, x: Tensor) -> Tensor:
        """``q_x = quantize(x, input_qparams)``."""
        return quantize(x, self.input_qparams)

    def accumulate(self, q_x: Tensor) -> Tensor:
        """``acc = (q_x - z_x) q_w^T + q_b`` as int32, computed exactly.

        An int8 kernel multiplies raw ``q_x q_w`` and subtracts ``z_x sum_k q_w[j, k]``
        (Jacob et al. 2018, eq. 7-8); the integer result is the same. We compute it in
        float64, which is exact here: every product is below 2^16 and every partial sum is
        an integer far below 2^53. Raises OverflowError if it would not fit int32, where a
        real kernel would silently wrap around.
        """
        qp = self.input_qparams
        if not isinstance(q_x, Tensor) or q_x.is_floating_point() or q_x.is_complex():
            raise ValueError(
                "q_x must be an integer tensor from quantize_input(), got "
                f"{getattr(q_x, 'dtype', type(q_x).__name__)}"
            )
        if q_x.dim() < 1 or q_x.shape[-1] != self.in_features:
            raise ValueError(
                f"q_x must have shape (..., {self.in_features}), got {tuple(q_x.shape)}"
            )
        if q_x.numel() and (q_x.min() < qp.qmin or q_x.max() > qp.qmax):
            raise ValueError(
                f"q_x has values in [{int(q_x.min())}, {int(q_x.max())}], outside the input "
                f"grid [{qp.qmin}, {qp.qmax}]"
            )
        centered = q_x.to(torch.float64) - float(qp.zero_point)
        acc = centered @ self.weight_int.to(torch.float64).T
        if self.bias_int is not None:
            acc = acc + self.bias_int.to(torch.float64)
        if acc.numel() and acc.abs().max() > _INT32_MAX:
            raise OverflowError(
                f"the accumulator reaches {int(acc.abs().max())}, beyond int32 "
                f"({_INT32_MAX}); an int32 kernel would wrap around. Use fewer input "
                "features or fewer activation bits"
            )
        return acc.to(torch.int32)

    def requantize(self, acc: Tensor) -> Tensor:
        """``q_y = clamp(z_y + round(M acc), qmin_y, qmax_y)`` with integer arithmetic only.

        ``round(M acc) = (acc * M0 + 2^(n-1)) >> n``: an int64 product (below 2^62) and an
        arithmetic shift, rounding half up. gemmlowp rounds ties away from zero instead;
        the two differ only when ``acc * M0`` is an exact odd multiple of ``2^(n-1)``.
        """
        if not isinstance(acc, Tensor) or acc.dtype != torch.int32:
            raise ValueError(
                "acc must be the int32 accumulator from accumulate(), got "
                f"{getattr(acc, 'dtype', type(acc).__name__)}"
            )
        qp = self.output_qparams
        product = acc.to(torch.int64) * self.multiplier
        half = torch.ones_like(self.shift) << (self.shift - 1)
        scaled = (product + half) >> self.shift
        q = (scaled + int(qp.zero_point)).clamp(qp.qmin, qp.qmax)
        return q.to(qp.dtype)

    def forward_integer(self, q_x: Tensor) -> Tensor:
        """Quantized input to quantized output: ``requantize(accumulate(q_x))``."""
        return self.requantize(self.accumulate(q_x))

    def forward(self, x: Tensor) -> Tensor:
        """Float in, float out: quantize, run the integer path, dequantize."""
        return dequantize(self.forward_integer(self.quantize_input(x)), self.output_qparams)

    def extra_repr(self) -> str:
        weights = "per-channel" if self.weight_qparams.per_channel else "per-tensor"
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias_int is not None}, activations={self.input_qparams.dtype}, "
            f"weights=int8 {weights}"
        )
