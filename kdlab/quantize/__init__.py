"""Quantization: affine int8 written by hand, and the library flows side by side.

- ``qparams``: the scale and zero point, from a range, min/max or percentiles;
- ``affine``: quantize, dequantize, the quantization error, fake quantization (STE);
- ``integer``: a linear layer computed with integers only (Jacob et al. 2018);
- ``flows``: PyTorch's ``torch.ao`` flows in one call each (dynamic and static PTQ, QAT);
- ``torchao_flows``: torchao's ``quantize_`` and the PT2E flow compiled by Inductor.

The hand-written parts are importable from here; the flows from their modules
(``from kdlab.quantize import flows``), which keeps ``torch.ao`` and torchao out of a
plain ``import kdlab.quantize``.
"""

from kdlab.quantize.affine import (
    FakeQuantize,
    dequantize,
    fake_quantize,
    quantization_error,
    quantize,
)
from kdlab.quantize.integer import IntegerLinear, fixed_point_multiplier
from kdlab.quantize.qparams import (
    SCALE_EPS,
    QParams,
    qparams_from_minmax,
    qparams_from_percentile,
    qparams_from_range,
    quant_range,
)

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
