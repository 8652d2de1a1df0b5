"""The torchao flows: ``quantize_`` and PT2E, the successors of :mod:`kdlab.quantize.flows`.

- :func:`torchao_quantize`: ``torchao.quantization.quantize_``, replacing eager mode;
- :func:`pt2e_x86`: ``torch.export`` + ``prepare_pt2e`` / ``convert_pt2e`` with the
  ``X86InductorQuantizer``, then ``torch.compile`` (:class:`CompiledInt8`), replacing FX
  graph mode.

torchao is an extra package; its import is quiet (it logs a pytree notice to stderr).
Every flow copies the model first and never modifies the one it is given.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable

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

__all__ = ["TORCHAO_CONFIGS", "torchao_quantize", "pt2e_x86", "CompiledInt8"]


TORCHAO_CONFIGS = ("int8_dynamic", "int8_weight_only")


TORCHAO_HINT = "pip install 'torchao>=0.18' (a release built for your PyTorch version)"


def _import_torchao():
    """torchao, imported quietly (its import logs a pytree notice to stderr)."""
    try:
        with runtime.quiet():
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
    with runtime.quiet():
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
            with torch.no_grad(), runtime.quiet():
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
    with runtime.quiet():
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

