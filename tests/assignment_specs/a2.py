"""a2_quantization_pruning: affine quantization, fake quantization with an STE, pruning masks."""

from assignment_specs import Assignment, Bug, Diagnosis

A2_MASK = """
k = {k}
keep = torch.ones(weight.numel(), dtype=torch.bool)
keep[torch.argsort(weight.abs().flatten(), descending={descending}, stable=True)[:k]] = False
return keep.view_as(weight)
"""

A2_BUGS = (
    Bug(
        "bug-zero-point-not-rounded",
        "scale_zero_point",
        """
lo, hi = min(float(x_min), 0.0), max(float(x_max), 0.0)
scale = max((hi - lo) / (qmax - qmin), torch.finfo(torch.float32).eps)
zero_point = qmin - lo / scale
return scale, min(max(zero_point, qmin), qmax)
""",
        "test_scale_zero_point",
        "zero point not rounded",
    ),
    Bug(
        "bug-symmetric-full-range",
        "symmetric_scale",
        """
return max(float(x.abs().max()) / 2 ** (bits - 1), torch.finfo(torch.float32).eps)
""",
        "test_symmetric_scale",
        "wrong symmetric range",
    ),
    Bug(
        "bug-no-clamping",
        "quantize",
        """
return (torch.round(x / scale) + zero_point).to(torch.int64)
""",
        "test_quantize_dequantize",
        "no clamping",
    ),
    Bug(
        "bug-per-channel-wrong-axis",
        "quantize_per_channel",
        """
if (scales.numel(), zero_points.numel()) != (w.shape[axis],) * 2:
    raise ValueError("scales and zero_points need w.shape[axis] entries")
return quantize(w, scales.reshape(-1, 1), zero_points.reshape(-1, 1), qmin, qmax)
""",
        "test_quantize_per_channel",
        "per-channel along the wrong axis",
    ),
    Bug(
        "bug-ste-blocks",
        "fake_quantize",
        """
@staticmethod
def forward(ctx, x, scale, zero_point, qmin, qmax):
    return dequantize(quantize(x, scale, zero_point, qmin, qmax), scale, zero_point)

@staticmethod
def backward(ctx, grad_output):
    return torch.zeros_like(grad_output), None, None, None, None
""",
        "test_fake_quantize",
        "STE blocks the gradient",
    ),
    Bug(
        "bug-mask-keeps-smallest",
        "magnitude_mask",
        A2_MASK.format(k="round(sparsity * weight.numel())", descending=True),
        "test_magnitude_mask",
        "mask keeps the smallest",
    ),
    Bug(
        "bug-k-truncated",
        "magnitude_mask",
        A2_MASK.format(k="int(sparsity * weight.numel())", descending=False),
        "test_magnitude_mask",
        "sparsity off by the rounding of k",
    ),
)

SZP, SYM, Q, DQ, QPC, FQ, MASK = (
    "scale_zero_point",
    "symmetric_scale",
    "quantize",
    "dequantize",
    "quantize_per_channel",
    "fake_quantize",
    "magnitude_mask",
)
T_SZP, T_SYM, T_QPC, T_FQ, T_MASK = (f"test_{name}" for name in (SZP, SYM, QPC, FQ, MASK))
T_Q = "test_quantize_dequantize"
EPS = "torch.finfo(torch.float32).eps"
ARGSORT = "torch.argsort(weight.detach().abs().flatten(), stable=True)"

A2_DIAGNOSES = (
    Diagnosis(SZP, SZP, "zero point truncated by int()", "round(lo / scale)", "int(lo / scale)",
              T_SZP, "zero point not rounded"),
    Diagnosis(SZP, SZP, "range not widened to contain 0",
              "min(float(x_min), 0.0), max(float(x_max), 0.0)", "float(x_min), float(x_max)",
              T_SZP, "range not widened to include 0"),
    Diagnosis(SZP, SZP, "divides by the number of levels (off by one)", "/ (qmax - qmin),",
              "/ (qmax - qmin + 1),", T_SZP, "number of levels"),
    Diagnosis(SZP, SZP, "scale floor missing", f"max((hi - lo) / (qmax - qmin), {EPS})",
              "(hi - lo) / (qmax - qmin)", T_SZP, "positive floor"),
    Diagnosis(SZP, SZP, "another floor than float32's eps", EPS, "1e-8", T_SZP, "positive floor"),
    Diagnosis(SZP, SZP, "zero point with the wrong sign", "qmin - round(lo / scale)",
              "qmin + round(lo / scale)", T_SZP, "zero point with the wrong sign"),
    Diagnosis(SZP, SZP, "x_min > x_max accepted", "if x_min > x_max:", "if False:", T_SZP,
              "x_min > x_max"),
    Diagnosis(SYM, SYM, "divides by 2^(b-1)", "qmax = 2 ** (bits - 1) - 1",
              "qmax = 2 ** (bits - 1)", T_SYM, "wrong symmetric range"),
    Diagnosis(SYM, SYM, "divides by 2^(b-1) - 0.5 (full grid)", "qmax = 2 ** (bits - 1) - 1",
              "qmax = 2 ** (bits - 1) - 0.5", T_SYM, "wrong symmetric range"),
    Diagnosis(SYM, SYM, "max(x) instead of max(|x|)", "x.abs().max()", "x.max()", T_SYM,
              "max(x) instead of max(|x|)"),
    Diagnosis(SYM, SYM, "symmetric scale floor missing", f"max(float(x.abs().max()) / qmax, {EPS})",
              "float(x.abs().max()) / qmax", T_SYM, "positive floor"),
    Diagnosis(SYM, SYM, "empty tensor accepted", "if x.numel() == 0:", "if False:", T_SYM,
              "empty tensor"),
    Diagnosis(Q, Q, "no clamping", "torch.clamp(q, qmin, qmax)", "q", T_Q, "no clamping"),
    Diagnosis(Q, Q, "rounding before scaling", "torch.round(x / scale)", "torch.round(x) / scale",
              T_Q, "rounding before scaling"),
    Diagnosis(Q, Q, "truncated instead of rounded", "torch.round(x / scale)",
              "torch.trunc(x / scale)", T_Q, "truncated instead of rounded"),
    Diagnosis(Q, Q, "zero point subtracted", "+ zero_point", "- zero_point", T_Q,
              "zero point subtracted"),
    Diagnosis(Q, Q, "multiplied by the scale", "x / scale", "x * scale", T_Q,
              "multiplied by the scale"),
    Diagnosis(Q, Q, "floats returned", ".to(torch.int64)", "", T_Q, "must return integers"),
    Diagnosis(DQ, DQ, "q - z in uint8 wraps around", "q.to(torch.int64) - zero_point",
              "q - zero_point", T_Q, "overflowed"),
    Diagnosis(DQ, DQ, "zero point added", "- zero_point", "+ zero_point", T_Q,
              "zero point added"),
    Diagnosis(DQ, DQ, "divided by the scale", "* scale", "/ scale", T_Q, "divided by the scale"),
    Diagnosis(QPC, QPC, "scales along the wrong axis", "shape[axis] = -1", "shape[0] = -1", T_QPC,
              "per-channel along the wrong axis"),
    Diagnosis(QPC, QPC, "one scale for the whole tensor",
              "scales.reshape(shape), zero_points.reshape(shape)",
              "float(scales[0]), int(zero_points[0])", T_QPC, "one scale for the whole tensor"),
    Diagnosis(QPC, QPC, "wrong number of scales accepted", "if (", "if False and (", T_QPC,
              "w.shape[axis] entries"),
    Diagnosis("fake_quantize", FQ, "STE blocks the gradient", "return grad_output * inside,",
              "return grad_output * 0,", T_FQ, "STE blocks the gradient"),
    Diagnosis("fake_quantize", FQ, "STE not clipped", "grad_output * inside,", "grad_output,",
              T_FQ, "STE not clipped"),
    Diagnosis("fake_quantize", FQ, "mask taken after the clamp",
              "unclamped = torch.round(x / scale) + zero_point",
              "unclamped = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)", T_FQ,
              "STE not clipped"),
    Diagnosis("fake_quantize", FQ, "mask excludes the ends of the range",
              "(unclamped >= qmin) & (unclamped <= qmax)",
              "(unclamped > qmin) & (unclamped < qmax)", T_FQ, "ends of the range"),
    Diagnosis("fake_quantize", FQ, "mask on x / s before rounding",
              "unclamped = torch.round(x / scale) + zero_point",
              "unclamped = x / scale + zero_point", T_FQ, "mask on the rounded value"),
    Diagnosis(MASK, MASK, "mask keeps the smallest", ")[:k]] = False",
              ")[weight.numel() - k:]] = False", T_MASK, "mask keeps the smallest"),
    Diagnosis(MASK, MASK, "k truncated by int()", "k = round(", "k = int(", T_MASK,
              "sparsity off by the rounding of k"),
    Diagnosis(MASK, MASK, "k rounded up by math.ceil", "k = round(", "k = math.ceil(", T_MASK,
              "sparsity off by the rounding of k"),
    Diagnosis(MASK, MASK, "ranked by the signed value", "weight.detach().abs()",
              "weight.detach()", T_MASK, "signed value"),
    Diagnosis(MASK, MASK, "weight changed in place", "weight.detach().abs()",
              "weight.detach().abs_()", T_MASK, "changed the weight"),
    Diagnosis(MASK, MASK, "threshold prunes every tie",
              "keep = torch.ones(weight.numel(), dtype=torch.bool)",
              "keep = weight.detach().abs().flatten() > "
              "(weight.detach().abs().flatten().sort().values[k - 1] if k else -1)", T_MASK,
              "ties"),
    Diagnosis(MASK, MASK, "ties broken towards the last index", ARGSORT,
              f"(weight.numel() - 1 - {ARGSORT.replace('flatten()', 'flatten().flip(0)')})",
              T_MASK, "ties broken"),
    Diagnosis(MASK, MASK, "sparsity outside [0, 1] accepted", "if not 0 <= sparsity <= 1:",
              "if False:", T_MASK, "sparsity must be in [0, 1]"),
)

ASSIGNMENT = Assignment(
    "a2_quantization_pruning",
    (
        ("test_scale_zero_point", 3),
        ("test_symmetric_scale", 2),
        ("test_quantize_dequantize", 3),
        ("test_quantize_per_channel", 2),
        ("test_fake_quantize", 3),
        ("test_magnitude_mask", 2),
    ),
    A2_BUGS,
    A2_DIAGNOSES,
    manual=(("written_answer", 2),),
)
