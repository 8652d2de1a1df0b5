"""kdlab.quantize against PyTorch's quantized ops and observers, and float64/numpy references.

PyTorch's quantized-tensor functions and ``torch.ao.quantization`` are deprecated and warn;
every call to them goes through a helper below that silences those warnings, so the test
output stays clean. kdlab's own code must not warn at all (checked below).
"""

import ast
import dataclasses
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import kdlab.quantize.affine
import kdlab.quantize.integer
import kdlab.quantize.qparams
from kdlab.quantize import (
    SCALE_EPS,
    FakeQuantize,
    IntegerLinear,
    QParams,
    dequantize,
    fake_quantize,
    fixed_point_multiplier,
    qparams_from_minmax,
    qparams_from_percentile,
    qparams_from_range,
    quant_range,
    quantization_error,
    quantize,
)

TORCH_QDTYPE = {torch.int8: torch.qint8, torch.uint8: torch.quint8}

# (dtype, symmetric, restricted): the schemes the course uses.
SCHEMES = [
    (torch.uint8, False, None),
    (torch.int8, False, None),
    (torch.int8, True, None),  # restricted [-127, 127], the default for symmetric
    (torch.int8, True, False),  # full [-128, 127]
    (torch.uint8, True, False),  # full [0, 255], zero point 128
]


def randn(*shape, seed=0, scale=1.0, shift=0.0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(shift, scale, shape), dtype=torch.float32)


def torch_quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """PyTorch's quantized tensor for the same scale and zero point (warnings silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if qp.axis is None:
            return torch.quantize_per_tensor(
                x, float(qp.scale), int(qp.zero_point), TORCH_QDTYPE[qp.dtype]
            )
        return torch.quantize_per_channel(
            x, qp.scale.double(), qp.zero_point, qp.axis, TORCH_QDTYPE[qp.dtype]
        )


def torch_fake_quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    if qp.axis is None:
        return torch.fake_quantize_per_tensor_affine(
            x, float(qp.scale), int(qp.zero_point), qp.qmin, qp.qmax
        )
    return torch.fake_quantize_per_channel_affine(
        x, qp.scale, qp.zero_point.int(), qp.axis, qp.qmin, qp.qmax
    )


def observer_qparams(x, dtype, symmetric, quant_range_=None, axis=None):
    """scale and zero point from torch.ao.quantization's MinMax observers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

        kwargs = {"dtype": TORCH_QDTYPE[dtype]}
        if quant_range_ is not None:
            kwargs["quant_min"], kwargs["quant_max"] = quant_range_
        if axis is None:
            qscheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
            observer = MinMaxObserver(qscheme=qscheme, **kwargs)
        else:
            qscheme = torch.per_channel_symmetric if symmetric else torch.per_channel_affine
            observer = PerChannelMinMaxObserver(ch_axis=axis, qscheme=qscheme, **kwargs)
        observer(x)
        return observer.calculate_qparams()


def assert_zero_is_exact(qp: QParams) -> None:
    """0.0 quantizes to the zero point (in every channel) and comes back as exactly 0.0."""
    shape = [1] if qp.axis is None else [1] * qp.axis + [qp.scale.numel()]
    zero = torch.zeros(shape)
    q = quantize(zero, qp)
    assert torch.equal(q.long().flatten(), qp.zero_point.flatten())
    assert torch.equal(dequantize(q, qp), zero)


# ----------------------------------------------------------------------------- grids


def test_quant_range_for_every_bit_width():
    for bits in range(2, 9):
        half = 2 ** (bits - 1)
        assert quant_range(bits, torch.int8) == (-half, half - 1)
        assert quant_range(bits, torch.int8, restricted=True) == (-half + 1, half - 1)
        assert quant_range(bits, torch.uint8) == (0, 2**bits - 1)
        assert quant_range(bits, torch.uint8, restricted=True) == (1, 2**bits - 1)
    assert quant_range(8, torch.qint8) == (-128, 127)


def test_symmetric_int8_defaults_to_the_restricted_grid():
    x = randn(100)
    qp = qparams_from_minmax(x, symmetric=True)
    assert (qp.qmin, qp.qmax, int(qp.zero_point)) == (-127, 127, 0)
    assert torch.equal(qp.scale, x.abs().max() / 127)
    full = qparams_from_minmax(x, symmetric=True, restricted=False)
    assert (full.qmin, full.qmax) == (-128, 127)
    assert torch.equal(full.scale, x.abs().max() / 127.5)
    # The restricted grid is symmetric about 0: q(-x) = -q(x) for every x.
    assert torch.equal(quantize(-x, qp), -quantize(x, qp))


# ----------------------------------------------------------------------------- vs torch


@pytest.mark.parametrize("dtype,symmetric,restricted", SCHEMES)
def test_quantize_per_tensor_equals_torch(dtype, symmetric, restricted):
    x = randn(4000, scale=2.0, shift=0.5)
    # Calibrate on a narrower range so that many values fall outside it and get clamped.
    qp = qparams_from_minmax(
        0.6 * x[:1000], dtype=dtype, symmetric=symmetric, restricted=restricted
    )
    ref = torch_quantize(x, qp)
    q = quantize(x, qp)
    assert q.dtype == dtype
    # torch clamps to the dtype's full range; clamping again gives the restricted grid.
    assert torch.equal(q, ref.int_repr().clamp(qp.qmin, qp.qmax))
    inside = (ref.int_repr() >= qp.qmin) & (ref.int_repr() <= qp.qmax)
    assert inside.float().mean() > 0.9
    assert torch.equal(dequantize(q, qp)[inside], ref.dequantize()[inside])
    assert ((q == qp.qmin) | (q == qp.qmax)).sum() > 10, "the test should exercise clamping"


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("dtype,symmetric,restricted", SCHEMES)
def test_quantize_per_channel_equals_torch(dtype, symmetric, restricted, axis):
    x = randn(4, 6, 5, seed=1, scale=3.0)
    x = x * torch.linspace(0.1, 2.0, x.shape[axis]).view(
        [-1 if d == axis % 3 else 1 for d in range(3)]
    )
    qp = qparams_from_minmax(x, dtype=dtype, symmetric=symmetric, restricted=restricted, axis=axis)
    assert qp.axis == axis % 3 and qp.scale.shape == (x.shape[axis],)
    ref = torch_quantize(x, qp)
    q = quantize(x, qp)
    assert torch.equal(q, ref.int_repr())
    assert torch.equal(dequantize(q, qp), ref.dequantize())


def test_per_channel_axis_matters():
    x = randn(6, 6, seed=2) * torch.logspace(-2, 1, 6)  # columns of very different size
    qp = qparams_from_minmax(x, dtype=torch.uint8, axis=1)
    q = quantize(x, qp)
    assert torch.equal(q, torch_quantize(x, qp).int_repr())
    wrong = dataclasses.replace(qp, axis=0)
    assert not torch.equal(q, torch_quantize(x, wrong).int_repr())
    assert not torch.equal(quantize(x, wrong), q)
    assert quantization_error(x, wrong)["mse"] > 10 * quantization_error(x, qp)["mse"]


# ----------------------------------------------------------------------------- vs observers

OBSERVER_CASES = [
    # (dtype, symmetric, restricted, bits, observer quant range or None for the default)
    (torch.uint8, False, None, 8, None),
    (torch.int8, False, None, 8, None),
    (torch.int8, True, None, 8, (-127, 127)),
    (torch.int8, True, False, 8, None),
    (torch.uint8, True, False, 8, None),
    (torch.uint8, False, None, 4, (0, 15)),
    (torch.int8, False, None, 4, (-8, 7)),
    (torch.int8, True, None, 4, (-7, 7)),
]

TENSORS = {
    "normal": randn(300, seed=3, scale=2.0, shift=0.7),
    "zeros": torch.zeros(50),
    "constant": torch.full((50,), 3.25),
    "tiny": torch.full((50,), 1e-9),
    "all_negative": -randn(300, seed=4).abs() - 0.5,
    "all_positive": randn(300, seed=5).abs() + 0.5,
}


@pytest.mark.parametrize("name", list(TENSORS))
@pytest.mark.parametrize("dtype,symmetric,restricted,bits,observer_range", OBSERVER_CASES)
def test_per_tensor_qparams_equal_min_max_observer(
    name, dtype, symmetric, restricted, bits, observer_range
):
    x = TENSORS[name]
    qp = qparams_from_minmax(x, dtype=dtype, symmetric=symmetric, restricted=restricted, bits=bits)
    scale, zero_point = observer_qparams(x, dtype, symmetric, observer_range)
    if observer_range is not None:
        assert (qp.qmin, qp.qmax) == observer_range
    assert torch.equal(qp.scale, scale[0])  # the same float32 operations, bit for bit
    assert int(qp.zero_point) == int(zero_point[0])
    assert_zero_is_exact(qp)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("dtype,symmetric,restricted,bits,observer_range", OBSERVER_CASES)
def test_per_channel_qparams_equal_per_channel_observer(
    dtype, symmetric, restricted, bits, observer_range, axis
):
    x = randn(3, 4, 5, seed=6, scale=2.0, shift=0.3)
    x.select(axis, 0).zero_()  # a constant channel: zero range
    x.select(axis, 1).abs_()  # an all-positive channel
    x.select(axis, 2).copy_(-x.select(axis, 2).abs())  # an all-negative channel
    qp = qparams_from_minmax(
        x, dtype=dtype, symmetric=symmetric, restricted=restricted, bits=bits, axis=axis
    )
    scale, zero_point = observer_qparams(x, dtype, symmetric, observer_range, axis=axis)
    assert torch.equal(qp.scale, scale)
    assert torch.equal(qp.zero_point, zero_point.long())
    assert qp.scale[0] == SCALE_EPS
    assert_zero_is_exact(qp)


# ----------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("dtype,symmetric,restricted", SCHEMES)
def test_constant_zero_tensor_uses_the_epsilon_scale(dtype, symmetric, restricted):
    x = torch.zeros(3, 4)
    qp = qparams_from_minmax(x, dtype=dtype, symmetric=symmetric, restricted=restricted)
    assert float(qp.scale) == SCALE_EPS
    q = quantize(x, qp)
    assert (q.long() == int(qp.zero_point)).all()
    assert torch.equal(dequantize(q, qp), x)
    err = quantization_error(x, qp)
    assert err["mse"] == 0 and err["max_abs_error"] == 0 and err["sqnr_db"] == math.inf


def test_one_sided_tensors_put_the_zero_point_at_the_grid_end():
    positive, negative = TENSORS["all_positive"], TENSORS["all_negative"]
    for dtype in (torch.int8, torch.uint8):
        qmin, qmax = quant_range(8, dtype)
        up = qparams_from_minmax(positive, dtype=dtype)
        down = qparams_from_minmax(negative, dtype=dtype)
        assert int(up.zero_point) == qmin and int(down.zero_point) == qmax
        torch.testing.assert_close(up.scale, positive.max() / 255)
        torch.testing.assert_close(down.scale, -negative.min() / 255)
        # The range was widened to include 0, so the largest value is on the grid's end.
        assert int(quantize(positive.max().view(1), up)) == qmax
        assert int(quantize(negative.min().view(1), down)) == qmin
        assert_zero_is_exact(up)
        assert_zero_is_exact(down)


def test_constant_tensor_round_trips():
    x = torch.full((10,), 3.25)
    qp = qparams_from_minmax(x, dtype=torch.uint8)
    assert int(qp.zero_point) == 0 and (quantize(x, qp) == 255).all()
    torch.testing.assert_close(dequantize(quantize(x, qp), qp), x)


@pytest.mark.parametrize("axis", [None, 0, 1])
@pytest.mark.parametrize("dtype,symmetric,restricted", SCHEMES)
def test_round_trip_error_is_at_most_half_a_step_inside_the_range(
    dtype, symmetric, restricted, axis
):
    x = randn(64, 32, seed=7, scale=1.5, shift=0.2)
    qp = qparams_from_minmax(x, dtype=dtype, symmetric=symmetric, restricted=restricted, axis=axis)
    x_hat = dequantize(quantize(x, qp), qp)
    scale = qp.scale if axis is None else qp.scale.view([-1 if d == axis else 1 for d in (0, 1)])
    error = (x - x_hat).abs()
    assert (error <= scale * (0.5 + 1e-5)).all()
    assert (error > scale * 0.4).any(), "the bound should be nearly reached on random data"


def test_out_of_range_values_are_clamped():
    qp = qparams_from_range(-1.0, 2.0, dtype=torch.uint8)
    x = torch.tensor([-1e30, -5.0, -1.0, 0.0, 2.0, 7.0, 1e30])
    q = quantize(x, qp)
    assert q[0] == q[1] == q[2] == 0 and q[-1] == q[-2] == q[-3] == 255
    assert int(q[3]) == int(qp.zero_point)
    x_hat = dequantize(q, qp)
    torch.testing.assert_close(x_hat[[0, 1, 5, 6]], torch.tensor([-1.0, -1.0, 2.0, 2.0]))
    assert quantization_error(x, qp)["clipped_fraction"] == pytest.approx(4 / 7)


def test_rounding_is_half_to_even_like_torch():
    qp = QParams(scale=1.0, zero_point=0, qmin=-128, qmax=127, dtype=torch.int8)
    x = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5])
    assert quantize(x, qp).tolist() == [-2, -2, 0, 0, 2, 2, 4]
    assert torch.equal(quantize(x, qp), torch_quantize(x, qp).int_repr())


def test_quantize_multiplies_by_the_reciprocal_like_torch():
    # Just around the rounding ties, x * (1/s) and x / s round differently in float32;
    # PyTorch's kernels multiply by the reciprocal, and so do we.
    scale = torch.tensor(0.00214854861)
    qp = QParams(scale=scale, zero_point=0, qmin=-128, qmax=127, dtype=torch.int8)
    ties = ((torch.arange(-120, 120).double() + 0.5) * scale.double()).float()
    x = torch.cat([ties, torch.nextafter(ties, ties + 1), torch.nextafter(ties, ties - 1)])
    assert (torch.round(x / scale) != torch.round(x * (1 / scale))).any()
    assert torch.equal(quantize(x, qp), torch_quantize(x, qp).int_repr())


# ----------------------------------------------------------------------------- error vs bits


def test_error_metrics_against_numpy():
    x = randn(2000, seed=8, scale=2.0)
    qp = qparams_from_minmax(x[:500], dtype=torch.uint8)
    x64 = x.double().numpy()
    x_hat = torch_quantize(x, qp).dequantize().double().numpy()
    err = quantization_error(x, qp)
    noise = ((x64 - x_hat) ** 2).sum()
    assert err["mse"] == pytest.approx(noise / x64.size, rel=1e-12)
    assert err["max_abs_error"] == pytest.approx(np.abs(x64 - x_hat).max(), rel=1e-12)
    assert err["sqnr_db"] == pytest.approx(10 * np.log10((x64**2).sum() / noise), rel=1e-12)
    s, z = float(qp.scale), int(qp.zero_point)
    outside = (x64 < (qp.qmin - z - 0.5) * s) | (x64 > (qp.qmax - z + 0.5) * s)
    assert err["clipped_fraction"] == pytest.approx(outside.mean())


@pytest.mark.parametrize("dtype,symmetric", [(torch.int8, True), (torch.uint8, False)])
def test_sqnr_grows_with_bits(dtype, symmetric):
    x = randn(20000, seed=9)
    sqnr = {
        bits: quantization_error(
            x, qparams_from_minmax(x, bits=bits, dtype=dtype, symmetric=symmetric)
        )["sqnr_db"]
        for bits in (2, 4, 6, 8)
    }
    assert sqnr[8] > sqnr[6] > sqnr[4] > sqnr[2]
    # About 6 dB per bit (each bit halves the step): 12 dB from 6 to 8 bits.
    assert 10 < sqnr[8] - sqnr[6] < 14


# ----------------------------------------------------------------------------- percentile


@pytest.mark.parametrize("axis", [None, 1])
@pytest.mark.parametrize("dtype,symmetric,restricted", SCHEMES)
def test_percentile_100_is_min_max(dtype, symmetric, restricted, axis):
    x = randn(30, 7, seed=10, shift=0.4)
    kwargs = {"dtype": dtype, "symmetric": symmetric, "restricted": restricted, "axis": axis}
    a = qparams_from_percentile(x, 100, **kwargs)
    b = qparams_from_minmax(x, **kwargs)
    assert torch.equal(a.scale, b.scale) and torch.equal(a.zero_point, b.zero_point)


@pytest.mark.parametrize("percentile", [99.9, 99.0, 90.0, 30.0])
def test_percentile_range_against_numpy(percentile):
    x = randn(5001, seed=11, scale=2.0, shift=0.5)
    x64 = x.double().numpy()
    tail = (100 - percentile) / 2
    lo, hi = np.percentile(x64, tail), np.percentile(x64, 100 - tail)
    qp = qparams_from_percentile(x, percentile, dtype=torch.uint8)
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    assert float(qp.scale) == pytest.approx((hi - lo) / 255, rel=1e-6)
    assert int(qp.zero_point) == round(-lo / ((hi - lo) / 255))
    sym = qparams_from_percentile(x, percentile, symmetric=True)
    assert float(sym.scale) == pytest.approx(np.percentile(np.abs(x64), percentile) / 127, rel=1e-6)


def test_percentile_per_channel_against_numpy():
    x = randn(4, 50, 3, seed=12) * torch.tensor([1.0, 5.0, 0.2]) + 1.0
    qp = qparams_from_percentile(x, 95.0, symmetric=True, axis=-1)
    assert qp.axis == 2
    amax = np.percentile(np.abs(x.double().numpy()).reshape(-1, 3), 95.0, axis=0)
    np.testing.assert_allclose(qp.scale.double().numpy(), amax / 127, rtol=1e-6)


def test_percentile_clips_outliers_and_reduces_the_error_on_the_rest():
    bulk = randn(10000, seed=13)
    x = torch.cat([bulk, torch.tensor([60.0, -45.0])])
    minmax = qparams_from_minmax(x, symmetric=True)
    clipped = qparams_from_percentile(x, 99.9, symmetric=True)
    assert float(clipped.scale) < float(minmax.scale) / 10
    assert quantization_error(x, clipped)["clipped_fraction"] > 0
    assert quantization_error(bulk, clipped)["mse"] < quantization_error(bulk, minmax)["mse"] / 50
    assert_zero_is_exact(clipped)


# ----------------------------------------------------------------------------- fake quant

FAKE_CASES = [
    (torch.uint8, False, None, 8, None),
    (torch.int8, True, None, 8, None),
    (torch.int8, True, False, 8, None),
    (torch.int8, False, None, 4, None),
    (torch.uint8, False, None, 8, 1),
    (torch.int8, True, None, 8, 0),
]


@pytest.mark.parametrize("dtype,symmetric,restricted,bits,axis", FAKE_CASES)
def test_fake_quantize_forward_and_gradient_equal_torch(dtype, symmetric, restricted, bits, axis):
    x = randn(40, 8, seed=14, scale=2.0)
    calibration = 0.5 * (x[:, :2] if axis == 0 else x[:10])  # narrower: some values clip
    qp = qparams_from_minmax(
        calibration, dtype=dtype, symmetric=symmetric, restricted=restricted, bits=bits, axis=axis
    )
    upstream = randn(40, 8, seed=15)
    ours, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, y_ref = fake_quantize(ours, qp), torch_fake_quantize(theirs, qp)
    assert torch.equal(y, y_ref)
    assert torch.equal(y.detach(), dequantize(quantize(x, qp), qp))
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    assert torch.equal(ours.grad, theirs.grad)
    assert 0 < (ours.grad == 0).sum() < x.numel(), "some values must fall outside the range"


def test_straight_through_gradient_is_one_inside_and_zero_outside():
    qp = QParams(scale=1.0, zero_point=0, qmin=-128, qmax=127, dtype=torch.int8)
    x = torch.tensor(
        [0.3, -7.7, 126.4, 127.4, 127.5, 127.6, 200.0, -128.4, -128.5, -128.6, -300.0],
        requires_grad=True,
    )
    y = FakeQuantize.apply(x, qp)
    y.sum().backward()
    # The mask is on the rounded value: 127.4 -> 127 is inside, 127.5 -> 128 (half to
    # even) is outside, -128.5 -> -128 is inside.
    expected = torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 0])
    assert torch.equal(x.grad, expected)
    assert torch.equal(
        y.detach(), torch.tensor([0.0, -8, 126, 127, 127, 127, 127, -128, -128, -128, -128])
    )


def test_fake_quantize_keeps_the_input_dtype():
    x = randn(50, seed=16).double().requires_grad_()
    qp = qparams_from_minmax(x.detach())
    y = fake_quantize(x, qp)
    assert y.dtype == torch.float64
    assert torch.equal(y, fake_quantize(x.detach().float(), qp).double())
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


# ----------------------------------------------------------------------------- integer linear


def test_fixed_point_multiplier_reproduces_the_real_multiplier():
    rng = np.random.default_rng(17)
    for m in list(10 ** rng.uniform(-8, 3, 500)) + [0.5, 1.0, 2.0**-32, 1 - 1e-12, 2.0**30 * 0.99]:
        m0, n = fixed_point_multiplier(float(m))
        assert isinstance(m0, int) and isinstance(n, int)
        assert 2**30 <= m0 < 2**31 and 1 <= n <= 62
        assert abs(math.ldexp(m0, -n) - m) <= 1e-9 * m


def make_layer(in_features=48, out_features=20, seed=18, bias=True):
    torch.manual_seed(seed)
    linear = nn.Linear(in_features, out_features, bias=bias)
    x = randn(256, in_features, seed=seed, scale=1.5, shift=0.3)
    return linear, x


LAYER_CASES = [(True, torch.uint8), (False, torch.uint8), (True, torch.int8), (False, torch.int8)]


@pytest.mark.parametrize("per_channel,activation_dtype", LAYER_CASES)
def test_integer_linear_accumulator_is_exact_int32(per_channel, activation_dtype):
    linear, x = make_layer()
    layer = IntegerLinear.from_float(
        linear, x, per_channel=per_channel, activation_dtype=activation_dtype
    )
    q_x = layer.quantize_input(x)
    acc = layer.accumulate(q_x)
    assert acc.dtype == torch.int32
    centered = q_x.numpy().astype(np.int64) - int(layer.input_qparams.zero_point)
    ref = centered @ layer.weight_int.numpy().astype(np.int64).T
    ref += layer.bias_int.numpy().astype(np.int64)
    np.testing.assert_array_equal(acc.numpy(), ref)
    # The weights are int8 on the restricted symmetric grid, the bias int32 at s_x * s_w.
    assert layer.weight_int.dtype == torch.int8 and layer.weight_int.abs().max() == 127
    s_w = layer.weight_qparams.scale
    bias_scale = layer.input_qparams.scale.double() * s_w.double()
    np.testing.assert_array_equal(
        layer.bias_int.numpy(), torch.round(linear.bias.detach().double() / bias_scale).numpy()
    )


@pytest.mark.parametrize("per_channel,activation_dtype", LAYER_CASES)
def test_integer_linear_requantization_uses_the_fixed_point_multiplier(
    per_channel, activation_dtype
):
    linear, x = make_layer()
    layer = IntegerLinear.from_float(
        linear, x, per_channel=per_channel, activation_dtype=activation_dtype
    )
    s_x, s_w, s_y = (
        layer.input_qparams.scale.double(),
        layer.weight_qparams.scale.double(),
        layer.output_qparams.scale.double(),
    )
    m = (s_x * s_w / s_y).expand(layer.out_features)
    fixed = layer.multiplier.double() * torch.pow(2.0, -layer.shift.double())
    assert ((fixed - m).abs() <= 1e-9 * m).all()
    acc = layer.accumulate(layer.quantize_input(x))
    out = layer.output_qparams
    ref = (torch.round(acc.double() * m) + int(out.zero_point)).clamp(out.qmin, out.qmax)
    q_y = layer.requantize(acc)
    assert q_y.dtype == activation_dtype
    assert (q_y.double() - ref).abs().max() <= 1
    assert (q_y.double() == ref).double().mean() > 0.999


@pytest.mark.parametrize("per_channel,activation_dtype", LAYER_CASES)
def test_integer_linear_matches_the_float_layer(per_channel, activation_dtype):
    linear, x = make_layer()
    layer = IntegerLinear.from_float(
        linear, x, per_channel=per_channel, activation_dtype=activation_dtype
    )
    y, y_float = layer(x), linear(x).detach()
    s_y = float(layer.output_qparams.scale)
    error = (y - y_float).abs()
    assert error.max() <= 3 * s_y
    assert error.mean() <= 0.5 * s_y
    # A rigorous per-output bound. With e_x, e_w the rounding errors (at most half a step),
    # (x + e_x)(w + e_w) - x w = x e_w + w e_x + e_x e_w, summed over the K inputs; then half
    # a step for the bias and half an output step (plus slack for the fixed-point multiplier).
    s_x = float(layer.input_qparams.scale)
    s_w = layer.weight_qparams.scale.expand(layer.out_features)
    bound = (
        (s_x / 2) * linear.weight.detach().abs().sum(1)
        + (s_w / 2) * x.abs().sum(1, keepdim=True)
        + layer.in_features * (s_x / 2) * (s_w / 2)
        + s_x * s_w / 2
        + s_y
    )
    assert (error <= bound).all()


@pytest.mark.parametrize("per_channel,activation_dtype", LAYER_CASES)
def test_integer_linear_equals_simulated_quantization(per_channel, activation_dtype):
    # The float64 reference uses the dequantized input, weights and bias, so the only
    # difference left is the fixed-point requantization: at most one output step.
    linear, x = make_layer()
    layer = IntegerLinear.from_float(
        linear, x, per_channel=per_channel, activation_dtype=activation_dtype
    )
    x_hat = dequantize(layer.quantize_input(x), layer.input_qparams).double()
    w_hat = dequantize(layer.weight_int, layer.weight_qparams).double()
    b_hat = layer.bias_int.double() * (
        layer.input_qparams.scale.double() * layer.weight_qparams.scale.double()
    )
    out = layer.output_qparams
    y_sim = x_hat @ w_hat.T + b_hat
    q_ref = (torch.round(y_sim / out.scale.double()) + int(out.zero_point)).clamp(
        out.qmin, out.qmax
    )
    q_y = layer.forward_integer(layer.quantize_input(x))
    assert (q_y.double() - q_ref).abs().max() <= 1
    assert (q_y.double() == q_ref).double().mean() > 0.99


@pytest.mark.parametrize("per_channel", [True, False])
def test_integer_linear_agrees_with_torch_quantized_linear(per_channel):
    engine = torch.backends.quantized.engine
    if engine not in ("x86", "fbgemm"):
        pytest.skip(f"quantized engine {engine!r}: this test compares with FBGEMM")
    linear, x = make_layer()
    # 7-bit activations, like PyTorch's reduce_range on x86: FBGEMM adds pairs of uint8 *
    # int8 products in int16 with saturation, so full 8-bit activations can overflow there.
    layer = IntegerLinear.from_float(linear, x, per_channel=per_channel, activation_bits=7)
    q_x = torch_quantize(x, layer.input_qparams)
    q_w = torch_quantize(linear.weight.detach(), layer.weight_qparams)
    assert torch.equal(q_w.int_repr(), layer.weight_int)
    assert torch.equal(q_x.int_repr(), layer.quantize_input(x))
    out = layer.output_qparams
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packed = torch.ops.quantized.linear_prepack(q_w, linear.bias.detach())
        ref = torch.ops.quantized.linear(q_x, packed, float(out.scale), int(out.zero_point))
    diff = layer.forward_integer(layer.quantize_input(x)).int() - ref.int_repr().int()
    assert diff.abs().max() <= 1
    assert (diff == 0).float().mean() > 0.99


def test_integer_linear_without_bias_and_with_batch_dimensions():
    linear, x = make_layer(bias=False)
    layer = IntegerLinear.from_float(linear, x)
    assert layer.bias_int is None
    x3 = x[:24].reshape(2, 12, -1)
    y = layer(x3)
    assert y.shape == (2, 12, linear.out_features)
    assert torch.equal(y.reshape(24, -1), layer(x[:24]))
    assert "per-channel" in repr(layer)


def test_integer_linear_refuses_an_int32_overflow():
    k = 70_000  # 255 * 127 * 70000 > 2^31
    qp_in = QParams(scale=1.0, zero_point=0, qmin=0, qmax=255, dtype=torch.uint8)
    qp_w = QParams(scale=1.0, zero_point=0, qmin=-127, qmax=127, dtype=torch.int8)
    layer = IntegerLinear(torch.full((1, k), 127, dtype=torch.int8), None, qp_in, qp_w, qp_in)
    with pytest.raises(OverflowError, match="int32"):
        layer.accumulate(torch.full((1, k), 255, dtype=torch.uint8))
    assert layer.accumulate(torch.full((1, k), 1, dtype=torch.uint8)).item() == 127 * k


# ----------------------------------------------------------------------------- bad inputs

X = randn(4, 3, seed=19)
QP = qparams_from_minmax(X)


@pytest.mark.parametrize("bits", [1, 9, 0, 8.0, True, "8"])
def test_bits_out_of_range(bits):
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 8\]"):
        qparams_from_minmax(X, bits=bits)
    with pytest.raises(ValueError, match="bits"):
        quant_range(bits)


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.float32, "int8", None])
def test_unknown_dtype(dtype):
    with pytest.raises(ValueError, match="dtype must be torch.int8 or torch.uint8"):
        qparams_from_minmax(X, dtype=dtype)


@pytest.mark.parametrize("axis", [2, -3, 1.0, True])
def test_axis_out_of_range(axis):
    with pytest.raises(ValueError, match="axis"):
        qparams_from_minmax(X, axis=axis)
    with pytest.raises(ValueError, match="axis"):
        qparams_from_percentile(X, 99.0, axis=axis)


def test_per_channel_qparams_must_fit_the_tensor():
    qp = qparams_from_minmax(X, axis=1)
    with pytest.raises(ValueError, match="per-channel along axis 1 with 3 channels"):
        quantize(X.T, qp)
    with pytest.raises(ValueError, match="per-channel along axis 1"):
        quantize(X[:, 0], qp)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_tensors(bad):
    x = X.clone()
    x[1, 2] = bad
    for call in (
        lambda: qparams_from_minmax(x),
        lambda: qparams_from_percentile(x, 99.0),
        lambda: quantize(x, QP),
        lambda: fake_quantize(x, QP),
        lambda: quantization_error(x, QP),
        lambda: IntegerLinear.from_float(nn.Linear(3, 2), x),
    ):
        with pytest.raises(ValueError, match="NaN or infinite"):
            call()
    with pytest.raises(ValueError, match="finite"):
        qparams_from_range(0.0, bad)


@pytest.mark.parametrize("percentile", [0, -1.0, 100.5, math.nan, "99", None])
def test_percentile_outside_0_100(percentile):
    with pytest.raises(ValueError, match=r"percentile must be a number in \(0, 100\]"):
        qparams_from_percentile(X, percentile)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="min_val <= max_val"):
        qparams_from_range(1.0, -1.0)
    with pytest.raises(ValueError, match="pass axis"):
        qparams_from_range(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="floating point"):
        quantize(torch.arange(4), QP)
    with pytest.raises(ValueError, match="empty"):
        qparams_from_minmax(torch.zeros(0))
    with pytest.raises(ValueError, match="QParams"):
        quantize(X, (0.1, 0))
    with pytest.raises(ValueError, match="integer tensor"):
        dequantize(X, QP)
    with pytest.raises(ValueError, match="outside the grid"):
        dequantize(
            torch.tensor([-128, 5], dtype=torch.int8), qparams_from_minmax(X, symmetric=True)
        )
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        QParams(scale=0.0, zero_point=0, qmin=-128, qmax=127, dtype=torch.int8)
    with pytest.raises(ValueError, match="zero_point must lie in"):
        QParams(scale=0.1, zero_point=300, qmin=0, qmax=255, dtype=torch.uint8)
    with pytest.raises(ValueError, match="qmin < qmax"):
        QParams(scale=0.1, zero_point=0, qmin=0, qmax=300, dtype=torch.uint8)
    with pytest.raises(ValueError, match="multiplier"):
        fixed_point_multiplier(0.0)
    with pytest.raises(ValueError, match="outside"):
        fixed_point_multiplier(2.0**31)
    with pytest.raises(ValueError, match="torch.nn.Linear"):
        IntegerLinear.from_float(nn.Conv1d(3, 2, 1), X)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 5\)"):
        IntegerLinear.from_float(nn.Linear(5, 2), X)
    layer = IntegerLinear.from_float(nn.Linear(3, 2), X)
    with pytest.raises(ValueError, match="integer tensor"):
        layer.accumulate(X)
    with pytest.raises(ValueError, match="int32"):
        layer.requantize(torch.zeros(4, 2, dtype=torch.int64))


# ----------------------------------------------------------------------------- hygiene


@pytest.mark.parametrize(
    "module", [kdlab.quantize.affine, kdlab.quantize.integer, kdlab.quantize.qparams]
)
def test_module_does_not_import_torch_ao(module):
    tree = ast.parse(Path(module.__file__).read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.startswith("torch.ao")], imported


def test_hand_written_path_emits_no_warnings():
    linear, x = make_layer(in_features=8, out_features=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qp = qparams_from_percentile(x, 99.0, dtype=torch.uint8)
        quantization_error(x, qp)
        dequantize(quantize(x, qp), qp)
        fake_quantize(x.clone().requires_grad_(), qp).sum().backward()
        IntegerLinear.from_float(linear, x)(x)
