"""The library quantization flows, each a single call: a float model in, an int8 model out.

:mod:`kdlab.quantize.affine` builds affine int8 by hand; this module wraps what PyTorch and
torchao ship, so a notebook compares them in a few lines. Every flow copies the model
first and never modifies the one it is given.

Deprecated, in ``torch.ao.quantization`` (still shipped, and the only flows here that run
int8 kernels, FBGEMM/oneDNN, eagerly without a compiler):

- :func:`dynamic_ptq`: ``quantize_dynamic`` (eager mode);
- :func:`static_ptq`: ``quantize_fx.prepare_fx`` / ``convert_fx`` (FX graph mode);
- :func:`prepare_qat`, :func:`convert_qat`, :func:`qat`: ``prepare_qat_fx`` /
  ``convert_fx`` (FX graph mode).

The future, in torchao (an extra package), is in :mod:`kdlab.quantize.torchao_flows`:
``torchao_quantize`` replaces eager mode, ``pt2e_x86`` FX graph mode.

``torch.ao.quantization`` prints a ``DeprecationWarning`` on every flow ("please migrate
to torchao", https://github.com/pytorch/ao/issues/2259; it announces removal in 2.10),
and the quantized tensor dtypes it computes with (``torch.qint8``, ``torch.quint8``) warn
as well. The flows here silence those warnings around the library calls only (notebooks
and nbgrader test cells must not write to stderr) and leave the caller's warnings alone.

The quantized engine (``torch.backends.quantized.engine``) is set to ``x86`` while a
``torch.ao`` flow runs (``qnnpack`` on ARM, where there is no ``x86``) and restored
afterwards. Quantized models are for inference: call them in eval mode.

References: Jacob et al. (2018), "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference"; Krishnamoorthi (2018), "Quantizing deep
convolutional networks for efficient inference: A whitepaper".
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn

from kdlab import runtime
from kdlab.quantize._checks import (
    _calibrate,
    _calibration,
    _check_has_linear,
    _check_input,
    _check_model,
    _float_copy,
)

__all__ = [
    "dynamic_ptq",
    "static_ptq",
    "prepare_qat",
    "convert_qat",
    "qat",
]


# ----------------------------------------------------------------------------- plumbing


def _backend() -> str:
    """``x86`` (FBGEMM + oneDNN) where available, else ``qnnpack`` (ARM)."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "qnnpack"):
        if engine in engines:
            return engine
    raise RuntimeError(f"no quantized engine for this CPU; supported engines: {engines}")


@contextlib.contextmanager
def _engine(name: str) -> Iterator[None]:
    """Pack and run int8 weights for ``name``; restore the caller's engine afterwards."""
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


# ----------------------------------------------------------------------------- torch.ao


def dynamic_ptq(model: nn.Module) -> nn.Module:
    """Dynamic post-training quantization of every ``nn.Linear``: int8 weights, float I/O.

    Weights are quantized once, per tensor, to ``qint8``. Activations stay float between
    layers; each quantized ``Linear`` measures its input's range on the fly (per batch),
    quantizes it to ``quint8``, multiplies in integers (FBGEMM on ``x86``) and returns
    float. No calibration data is needed, which is why this is the first flow to try for
    Linear/LSTM-heavy models (MLPs, transformers); convolutions stay float.

    Library call: ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, qint8)``,
    deprecated (eager mode). Its successor is torchao's
    ``quantize_(model, Int8DynamicActivationInt8WeightConfig())``, see
    :func:`torchao_quantize`.
    """
    model = _check_model(model)
    _check_has_linear(model, "dynamic_ptq")
    float_model = _float_copy(model)
    with runtime.quiet(), _engine(_backend()):
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(float_model, {nn.Linear}, dtype=torch.qint8, inplace=True)


def static_ptq(
    model: nn.Module,
    calibration_batches: Iterable[Tensor] | Iterable[tuple[Tensor, ...]],
    example_input: Tensor | None = None,
) -> nn.Module:
    """Static post-training quantization in FX graph mode: int8 weights and activations.

    1. ``torch.fx`` traces the model into a graph (``example_input`` is one batch; by
       default the first calibration batch).
    2. ``prepare_fx`` fuses ``Conv-BN-ReLU`` and ``Linear-ReLU`` (BN folds into the
       convolution's weights; the ReLU runs inside the int8 kernel), and inserts an
       observer after every quantized op, with ``get_default_qconfig_mapping("x86")``:
       per-channel symmetric int8 weights, per-tensor affine uint8 activations (histogram
       observer, which clips rare outliers; 7-bit range [0, 127] on ``x86``, because CPUs
       without VNNI add pairs of uint8 x int8 products in int16, which 8 bits could
       overflow). The graph's input and output get quantize/dequantize nodes: the
       QuantStub/DeQuantStub that eager mode asks you to insert by hand.
    3. Calibration: the model runs in eval mode on ``calibration_batches`` (tensors, or
       ``(x, y, ...)`` tuples as a DataLoader yields them) while the observers record
       the activation ranges.
    4. ``convert_fx`` replaces each fused block by its int8 kernel with a fixed scale and
       zero point; the tensors between layers are now ``quint8``.

    Library calls: ``torch.ao.quantization.quantize_fx.prepare_fx`` / ``convert_fx``,
    deprecated (FX graph mode, and its quantized tensor dtypes). The successor is the
    PT2E flow (``torch.export`` + torchao's ``prepare_pt2e``/``convert_pt2e``), see
    :func:`pt2e_x86`.
    """
    model = _check_model(model)
    first, inputs = _calibration(calibration_batches)
    example = first if example_input is None else _check_input("example_input", example_input)
    float_model = _float_copy(model)
    backend = _backend()
    with runtime.quiet(), _engine(backend):
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

        prepared = prepare_fx(float_model, get_default_qconfig_mapping(backend), (example,))
        _calibrate(prepared, inputs)
        return convert_fx(prepared)


def prepare_qat(model: nn.Module, example_input: Tensor) -> nn.Module:
    """A copy of ``model`` ready for quantization-aware training, in train mode.

    ``prepare_qat_fx`` with ``get_default_qat_qconfig_mapping("x86")`` fuses
    ``Conv-BN-ReLU`` and ``Linear-ReLU`` and inserts fake quantization (quantize, then
    dequantize, in float; Jacob et al. 2018, section 3) on the weights and after every
    quantized op. The forward pass sees the int8 rounding, the backward pass lets the
    gradient through unchanged inside the range (straight-through estimator), so the
    weights learn to sit well on the int8 grid. The activation observers keep updating
    during training, as moving averages (constant 0.01) of the batch min and max: the
    first batch sets the range, later ones move it slowly. Fine-tune the result on the
    CPU for a few steps with any training loop (e.g. :class:`kdlab.distill.Distiller`
    with a small learning rate), then call :func:`convert_qat`.

    Every parameter of the copy requires gradients, even where ``model``'s do not (a model
    that served as a :class:`~kdlab.distill.Distiller` teacher is frozen); to fine-tune only
    some layers, freeze the others in the prepared model.

    Library call: ``torch.ao.quantization.quantize_fx.prepare_qat_fx``, deprecated (FX
    graph mode); the successor is torchao's ``prepare_qat_pt2e``.
    """
    model = _check_model(model)
    example = _check_input("example_input", example_input)
    float_model = copy.deepcopy(model).train().requires_grad_(True)
    backend = _backend()
    with runtime.quiet(), _engine(backend):
        from torch.ao.quantization import get_default_qat_qconfig_mapping
        from torch.ao.quantization.quantize_fx import prepare_qat_fx

        return prepare_qat_fx(float_model, get_default_qat_qconfig_mapping(backend), (example,))


def convert_qat(prepared: nn.Module) -> nn.Module:
    """The int8 model of a model from :func:`prepare_qat` (which is left as it is).

    In eval mode, ``convert_fx`` folds batch norm into the weights, quantizes them and
    the activations with the scales their fake quantizers observed during training, and
    swaps in the int8 kernels. Deprecated
    (``torch.ao.quantization.quantize_fx.convert_fx``); the successor is torchao's
    ``convert_pt2e``.
    """
    from torch.ao.quantization import FakeQuantizeBase

    if not isinstance(prepared, torch.fx.GraphModule) or not any(
        isinstance(m, FakeQuantizeBase) for m in prepared.modules()
    ):
        raise ValueError(
            "convert_qat expects the model returned by prepare_qat (an FX GraphModule with "
            f"fake quantizers), got {type(prepared).__name__}"
        )
    trained = copy.deepcopy(prepared).eval()
    with runtime.quiet(), _engine(_backend()):
        from torch.ao.quantization.quantize_fx import convert_fx

        return convert_fx(trained)


def qat(
    model: nn.Module, train_fn: Callable[[nn.Module], object], example_input: Tensor
) -> nn.Module:
    """Quantization-aware training in one call: ``convert_qat(train_fn(prepare_qat(...)))``.

    ``train_fn(prepared)`` fine-tunes the prepared model in place with the caller's own
    loop (its return value is ignored); the caller's warnings and progress bars are not
    silenced. Returns the int8 model; ``model`` itself is not changed. See
    :func:`prepare_qat` and :func:`convert_qat` for what happens at each step.
    """
    if not callable(train_fn):
        raise ValueError(
            "train_fn must be a function that fine-tunes the prepared model in place, e.g. "
            f"lambda m: Distiller(m, teacher, lr=1e-4).fit(loader, 1); got "
            f"{type(train_fn).__name__}"
        )
    prepared = prepare_qat(model, example_input)
    train_fn(prepared)
    return convert_qat(prepared)


# ----------------------------------------------------------------------------- torchao
