"""Integer-only inference of a linear layer (Jacob et al. 2018, "Quantization and Training of
Neural Networks for Efficient Integer-Arithmetic-Only Inference", section 2.2-2.4): int8
inputs and weights, an int32 accumulator, and requantization by a fixed-point multiplier
and a shift, with no floating point on the way."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kdlab.quantize.affine import dequantize, quantize
from kdlab.quantize.qparams import _INT32_MAX, QParams, _check_tensor, qparams_from_minmax

__all__ = ["fixed_point_multiplier", "IntegerLinear"]


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

