"""The library quantization flows, each a single call: a float model in, an int8 model out.

:mod:`kdlab.quantize` builds affine int8 by hand; this module wraps what PyTorch and
torchao ship, so a notebook compares them in a few lines. Every flow copies the model
first and never modifies the one it is given.

Deprecated, in ``torch.ao.quantization`` (still shipped, and the only flows here that run
int8 kernels, FBGEMM/oneDNN, eagerly without a compiler):

- :func:`dynamic_ptq`: ``quantize_dynamic`` (eager mode);
- :func:`static_ptq`: ``quantize_fx.prepare_fx`` / ``convert_fx`` (FX graph mode);
- :func:`prepare_qat`, :func:`convert_qat`, :func:`qat`: ``prepare_qat_fx`` /
  ``convert_fx`` (FX graph mode).

The future, in torchao (an extra package):

- :func:`torchao_quantize`: ``torchao.quantization.quantize_``, replacing eager mode;
- :func:`pt2e_x86`: ``torch.export`` + ``prepare_pt2e`` / ``convert_pt2e`` with the
  ``X86InductorQuantizer``, then ``torch.compile``, replacing FX graph mode.

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
import logging
import platform
import warnings
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor, nn
from torch.nn.utils import prune as torch_prune

__all__ = [
    "dynamic_ptq",
    "static_ptq",
    "prepare_qat",
    "convert_qat",
    "qat",
    "TORCHAO_CONFIGS",
    "torchao_quantize",
    "pt2e_x86",
    "CompiledInt8",
]

TORCHAO_CONFIGS = ("int8_dynamic", "int8_weight_only")
TORCHAO_HINT = "pip install 'torchao>=0.18' (a release built for your PyTorch version)"

# Loggers that print to stderr from library internals we trigger: torchao's import
# (an Enum registered as a pytree constant) and torch.compile's C++ toolchain probe.
_NOISY_LOGGERS = ("torch.utils._pytree", "torch.utils.cpp_extension")


# ----------------------------------------------------------------------------- plumbing


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence warnings and the noisy library loggers inside the block, then restore them.

    A logger filter, not ``setLevel``: changing a level clears every logger's cache, which
    costs more than a small int8 forward pass.
    """
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.addFilter(_errors_only)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(_errors_only)


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


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if torch_prune.is_pruned(model):
        raise ValueError(
            "model still carries pruning masks (weight_orig / weight_mask); call "
            "kdlab.prune.make_permanent(model) before quantizing it"
        )
    return model


def _check_input(name: str, x: object) -> Tensor:
    if not isinstance(x, Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor (one batch of inputs), got {type(x).__name__}"
        )
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch, got shape {tuple(x.shape)}")
    return x


def _check_has_linear(model: nn.Module, flow: str) -> None:
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError(
            f"{flow} quantizes nn.Linear layers and {type(model).__name__} has none; "
            "use static_ptq for convolutions"
        )


def _float_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode: the caller's model keeps its weights, hooks and mode."""
    return copy.deepcopy(model).eval()


def _batch_input(batch: object, index: int) -> Tensor:
    """The input of a calibration batch: the tensor itself, or the first item of
    ``(x, y, ...)`` as a DataLoader yields it."""
    if isinstance(batch, (tuple, list)) and batch:
        batch = batch[0]
    return _check_input(f"calibration batch {index}", batch)


def _calibration(batches: object) -> tuple[Tensor, Iterator[Tensor]]:
    """The first calibration input and an iterator over all of them (first included)."""
    if isinstance(batches, Tensor) or not isinstance(batches, Iterable):
        raise ValueError(
            "calibration_batches must be an iterable of input batches (a list of tensors or "
            f"a DataLoader), got {type(batches).__name__}; wrap a single batch as [x]"
        )
    iterator = iter(batches)
    try:
        first = _batch_input(next(iterator), 0)
    except StopIteration:
        raise ValueError(
            "calibration_batches is empty; static quantization observes the activation "
            "ranges on at least one batch of representative inputs"
        ) from None

    def inputs() -> Iterator[Tensor]:
        yield first
        for i, batch in enumerate(iterator, start=1):
            yield _batch_input(batch, i)

    return first, inputs()


@torch.no_grad()
def _calibrate(model: nn.Module, inputs: Iterator[Tensor]) -> None:
    for x in inputs:
        model(x)


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
    with _quiet(), _engine(_backend()):
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
    with _quiet(), _engine(backend):
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
    with _quiet(), _engine(backend):
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
    with _quiet(), _engine(_backend()):
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


def _import_torchao():
    """torchao, imported quietly (its import logs a pytree notice to stderr)."""
    try:
        with _quiet():
            import torchao
            import torchao.quantization
    except ImportError as error:
        raise ImportError(
            f"this flow needs torchao, which is not installed or does not import with "
            f"torch {torch.__version__}: {TORCHAO_HINT}"
        ) from error
    return torchao


def torchao_quantize(model: nn.Module, config: object = "int8_dynamic") -> nn.Module:
    """int8 ``nn.Linear`` layers with torchao's ``quantize_``, the successor of eager mode.

    ``quantize_(model, config)`` swaps each Linear's weight for a tensor subclass that
    stores int8 values and a scale per output channel; the modules and their ``forward``
    stay the same, and the subclass dispatches ``F.linear`` to an int8 implementation.

    - ``"int8_dynamic"``: ``Int8DynamicActivationInt8WeightConfig``, int8 weights, and
      activations quantized per row on the fly (like :func:`dynamic_ptq`);
    - ``"int8_weight_only"``: ``Int8WeightOnlyConfig``, int8 weights dequantized inside
      the matmul, activations float: saves memory traffic, not arithmetic.

    Any other torchao config object (e.g. int4 weights) is passed through. torchao's
    kernels are written to be fused by ``torch.compile``; run eagerly on a CPU they are
    correct but can be much slower than float. Needs the ``torchao`` package.
    """
    model = _check_model(model)
    _check_has_linear(model, "torchao_quantize")
    _import_torchao()
    from torchao.core.config import AOBaseConfig
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    if isinstance(config, str):
        configs = {
            "int8_dynamic": Int8DynamicActivationInt8WeightConfig,
            "int8_weight_only": Int8WeightOnlyConfig,
        }
        if config not in configs:
            raise ValueError(
                f"config must be one of {TORCHAO_CONFIGS} or a torchao config, got {config!r}"
            )
        config = configs[config]()
    elif not isinstance(config, AOBaseConfig):
        raise ValueError(
            f"config must be one of {TORCHAO_CONFIGS} or a torchao config, got "
            f"{type(config).__name__}"
        )
    float_model = _float_copy(model)
    with _quiet():
        quantize_(float_model, config)
    return float_model


class CompiledInt8(nn.Module):
    """A PT2E int8 model compiled by Inductor with freezing, for inference.

    Inductor swaps the ``dequantize -> linear/conv -> quantize`` patterns for oneDNN int8
    kernels only when freezing is on (weights become constants it can prepack), and only
    without autograd. ``forward`` switches freezing on and autograd off around the
    compiled call, so a recompilation is frozen too, and silences the compiler's
    warnings and log messages.

    Shapes are static (``dynamic=False``): the first call with a new batch size compiles
    (seconds; up to a minute the first time on a laptop) and later calls with that size
    reuse it. In torch 2.14 a dynamic batch dimension breaks the int8 convolution (a
    stride assertion in Inductor's oneDNN lowering), so each size gets its own graph.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.compiled = torch.compile(model, dynamic=False)

    def forward(self, *args: Tensor) -> Tensor:
        import torch._inductor.config as inductor_config

        # Dynamo reads the flag when it traces, so it must be on around the call itself
        # (torch.compile(options={"freezing": True}) fails on the int8 weight prepack).
        # Setting the attribute costs a few microseconds; config.patch costs 5x more.
        frozen = inductor_config.freezing
        inductor_config.freezing = True
        try:
            with torch.no_grad(), _quiet():
                return self.compiled(*args)
        finally:
            inductor_config.freezing = frozen


def _has_vnni() -> bool:
    """Whether the CPU multiplies uint8 by int8 into int32 directly (VNNI or AMX)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is None:
        return False
    capabilities = get_capabilities()
    return any(capabilities.get(name, False) for name in ("avx512_vnni", "avx_vnni", "amx_int8"))


def _drop_unused_weights(graph_module: torch.fx.GraphModule) -> None:
    """Delete the float weights ``convert_pt2e`` leaves behind: the graph reads the int8
    copies, and the float ones would more than double the saved model."""
    used = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    named = list(graph_module.named_parameters()) + list(graph_module.named_buffers())
    for name, _ in named:
        if name in used:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = graph_module.get_submodule(owner_name)
        owner._parameters.pop(attr, None)
        owner._buffers.pop(attr, None)


def pt2e_x86(
    model: nn.Module,
    example_input: Tensor,
    calibration_batches: Iterable[Tensor] | Iterable[tuple[Tensor, ...]],
    *,
    compile: bool = True,
    reduce_range: bool | None = None,
) -> nn.Module:
    """Static int8 quantization with PT2E (PyTorch 2 export), the successor of FX mode.

    1. ``torch.export.export`` captures the model (eval mode) as an ATen graph, with a
       dynamic batch dimension (a batch of 1 is repeated to 2 for the capture, so any
       batch size works afterwards).
    2. torchao's ``prepare_pt2e`` with ``X86InductorQuantizer`` (its default config:
       per-channel symmetric int8 weights, per-tensor affine uint8 activations) annotates
       the graph and inserts observers; the model runs on ``calibration_batches``.
    3. ``convert_pt2e`` replaces the observers by explicit ``quantize -> dequantize``
       pairs around each op, with int8 weights stored as constants. Run as it is, this
       graph computes in float (a faithful simulation of int8, not faster).
    4. ``compile=True`` wraps it in :class:`CompiledInt8`: ``torch.compile`` with
       Inductor freezing pattern-matches the pairs into oneDNN int8 kernels. Compiling
       happens on the first call with each batch size, takes seconds (up to a minute
       the first time) and needs a C++ compiler.

    ``reduce_range`` quantizes activations to 7 bits ([0, 127]). CPUs without VNNI (most
    AVX2 machines) multiply uint8 by int8 with an instruction that saturates pairs of
    products in int16; 7-bit activations cannot overflow it. The default (``None``) turns
    it on unless ``torch.cpu.get_capabilities()`` reports VNNI or AMX. The FX flows do
    the same on every ``x86`` CPU.

    Only for x86 CPUs. Needs the ``torchao`` package.
    """
    model = _check_model(model)
    example = _check_input("example_input", example_input)
    _, inputs = _calibration(calibration_batches)
    if platform.machine().lower() not in ("x86_64", "amd64", "x86", "i686"):
        raise RuntimeError(
            f"pt2e_x86 targets x86 CPUs and this one is {platform.machine()}; use "
            "static_ptq, which picks the qnnpack engine on ARM"
        )
    _import_torchao()
    from torchao.quantization.pt2e import allow_exported_model_train_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer,
        get_default_x86_inductor_quantization_config,
    )

    if example.shape[0] == 1:
        # export refuses a dynamic dimension whose example size is 1 (it specializes on it)
        example = torch.cat([example, example])
    float_model = _float_copy(model)
    if reduce_range is None:
        reduce_range = not _has_vnni()
    config = get_default_x86_inductor_quantization_config(reduce_range=reduce_range)
    quantizer = X86InductorQuantizer().set_global(config)
    with _quiet():
        exported = torch.export.export(
            float_model, (example,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},)
        )
        prepared = prepare_pt2e(exported.module(), quantizer)
        _calibrate(prepared, inputs)
        converted = convert_pt2e(prepared)
    _drop_unused_weights(converted)
    # An exported graph refuses .train()/.eval() by default; this lets kdlab.bench and
    # logits_of call them (dropout and batch norm are already in eval form).
    allow_exported_model_train_eval(converted)
    return CompiledInt8(converted) if compile else converted
