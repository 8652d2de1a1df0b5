"""Quantization parameters: the scale and zero point of affine int8, and three ways to
choose them from data (a given range, the min and max, percentiles).

A real value ``x`` and an integer ``q`` are tied by a scale ``s > 0`` and a zero point
``z`` (Jacob et al. 2018, eq. 1): ``x_hat = (q - z) * s``. The scale is a float32 number
and every parameter here equals the one PyTorch's observers compute (tested against
``torch.ao.quantization``'s observers). :mod:`kdlab.quantize.affine` maps tensors with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "SCALE_EPS",
    "QParams",
    "quant_range",
    "qparams_from_range",
    "qparams_from_minmax",
    "qparams_from_percentile",
]

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
