"""a2_quantization_pruning: affine quantization, fake quantization with an STE, pruning masks."""

from assignment_specs import Assignment, Bug

A2_MASK = """
k = {k}
keep = torch.ones(weight.numel(), dtype=torch.bool)
keep[torch.argsort(weight.abs().flatten(), descending={descending})[:k]] = False
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
)
