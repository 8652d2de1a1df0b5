"""Operational metrics: latency, throughput, parameters, serialized size, FLOPs.

Latency uses ``torch.utils.benchmark.Timer``: it runs warm-up iterations, picks a block
size so timer overhead is negligible, synchronises CUDA/MPS around each block, and
records the thread count. We report the median (robust to a noisy machine) and the
interquartile range as the spread.
"""

from __future__ import annotations

import io
import numbers
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from kdlab import runtime

# Importing torch.utils.benchmark imports cpp_extension, which logs "No CUDA runtime is
# found" to stderr on CPU machines that have a CUDA toolkit. Nothing here compiles C++,
# and stderr output costs a student all points in an nbgrader test cell.
with runtime.quiet():
    from torch.utils import benchmark

__all__ = [
    "Latency",
    "latency",
    "throughput",
    "count_parameters",
    "serialized_size",
    "flops",
    "compare_models",
]


MIN_BLOCKS_FOR_SPREAD = 4


@dataclass(frozen=True)
class Latency:
    """Seconds per forward pass at one batch size: median and interquartile range.

    ``blocks`` is the number of timed blocks the median and spread come from; with fewer
    than 4 the spread is not meaningful and ``iqr_s`` is NaN rather than a fake 0.
    """

    median_s: float
    iqr_s: float
    batch_size: int
    threads: int
    device: str
    runs: int
    blocks: int

    @property
    def median_ms(self) -> float:
        return self.median_s * 1e3

    @property
    def throughput(self) -> float:
        """Examples per second at this batch size."""
        return self.batch_size / self.median_s


def _example_input(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> torch.Tensor:
    if not isinstance(input_shape, Sequence) or not all(
        isinstance(d, numbers.Integral) for d in input_shape
    ):
        raise ValueError(
            f"input_shape must be the shape of one example as a tuple of ints, e.g. (10,) or "
            f"(3, 32, 32), got {input_shape!r}"
        )
    # On the model's device (a model without weights runs on the host), in its float dtype.
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.randn(batch_size, *input_shape, device=runtime.device_of(model), dtype=dtype)


def _first_layer(model: nn.Module) -> tuple[str, str]:
    """What the first registered linear, convolution or embedding layer takes, and the fix
    (read from ``in_features``, ``in_channels``, ``num_embeddings``: quantized layers count)."""
    fix = "pass input_shape=... (one example's shape, without the batch dimension)"
    spatial = {1: "L", 2: "H, W", 3: "D, H, W"}
    first = True  # no other layer with parameters or a reshape runs before it
    for name, module in model.named_modules():
        where = f"{type(module).__name__} {name!r}" if name else type(module).__name__
        if isinstance(getattr(module, "in_features", None), int) and module.in_features > 0:
            n = module.in_features
            said = f"its first layer, {where}, takes in_features={n}"
            return (said, f"pass input_shape=({n},)" if first else fix)
        kernel = getattr(module, "kernel_size", None)
        if isinstance(getattr(module, "in_channels", None), int) and kernel is not None:
            c, dims = module.in_channels, len(kernel) if isinstance(kernel, tuple) else 1
            said = f"its first layer, {where}, takes in_channels={c}"
            return (said, f"pass input_shape=({c}, {spatial.get(dims, '...')})" if first else fix)
        if isinstance(module, nn.Embedding):
            said = f"its first layer, {where}, takes integer ids below {module.num_embeddings}"
            return (said, "measure a model that takes float inputs (these feed random floats)")
        if not list(module.children()):
            first = False
    return ("", fix)


def _forward(model: nn.Module, x: torch.Tensor) -> None:
    """``model(x)`` under ``no_grad``, with PyTorch's shape or dtype error turned into one that
    names the shape tried and what the first layer takes. The measurements make their first
    pass through here, so a wrong ``input_shape`` costs no extra forward pass."""
    try:
        with torch.no_grad():
            model(x)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, IndexError) as err:
        said, fix = _first_layer(model)
        raise ValueError(
            f"the model fails on the example input of shape {tuple(x.shape)} = (batch_size, "
            f"*input_shape), dtype {x.dtype}{'; ' + said if said else ''}: {fix}. "
            f"PyTorch said: {err}"
        ) from err


def latency(
    model: nn.Module,
    input_shape: Sequence[int],
    batch_size: int = 1,
    *,
    threads: int | None = None,
    min_run_time: float = 0.5,
    warmup: int = 3,
) -> Latency:
    """Median time of ``model(x)`` in eval mode under ``no_grad``, x of ``(batch, *input_shape)``.

    ``threads`` defaults to ``torch.get_num_threads()``; it is recorded with the result
    because CPU latency depends on it as much as on the model.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if min_run_time <= 0:
        raise ValueError(f"min_run_time must be > 0, got {min_run_time}")
    threads = threads or torch.get_num_threads()
    was_training = model.training
    model.eval()
    try:
        x = _example_input(model, input_shape, batch_size)
        _forward(model, x)  # the first warm-up pass, checked
        with torch.no_grad():
            for _ in range(warmup - 1):
                model(x)
            timer = benchmark.Timer(
                stmt="model(x)",
                globals={"model": model, "x": x},
                num_threads=threads,
            )
            measurement = timer.blocked_autorange(min_run_time=min_run_time)
    finally:
        model.train(was_training)
    blocks = len(measurement.times)
    return Latency(
        median_s=measurement.median,
        iqr_s=measurement.iqr if blocks >= MIN_BLOCKS_FOR_SPREAD else float("nan"),
        batch_size=batch_size,
        threads=threads,
        device=str(x.device),
        runs=blocks * measurement.number_per_run,
        blocks=blocks,
    )


def throughput(
    model: nn.Module, input_shape: Sequence[int], batch_size: int = 256, **kwargs
) -> float:
    """Examples per second at ``batch_size`` (from :func:`latency`)."""
    return latency(model, input_shape, batch_size, **kwargs).throughput


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all of them, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def serialized_size(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a saved checkpoint weighs."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def flops(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> int:
    """Floating-point operations of one forward pass, counted by ``FlopCounterMode``.

    A multiply-add counts as 2 FLOPs. Operations the counter does not know (element-wise
    activations, pooling) count as 0, so this is the matmul/convolution cost.
    """
    was_training = model.training
    model.eval()
    try:
        x = _example_input(model, input_shape, batch_size)
        counter = FlopCounterMode(display=False)
        with counter:
            _forward(model, x)
    finally:
        model.train(was_training)
    return counter.get_total_flops()


def compare_models(
    models: Mapping[str, nn.Module],
    input_shape: Sequence[int],
    batch_sizes: Sequence[int] = (1, 256),
    *,
    reference: str | None = None,
    threads: int | None = None,
    min_run_time: float = 0.5,
    rounds: int = 1,
) -> pd.DataFrame:
    """A table of parameters, size, FLOPs per example and latency per batch size, with ratios.

    Ratios are ``reference / model`` (how many times smaller or faster than the reference,
    the first model unless ``reference`` names another), measured side by side in one call.
    With ``rounds > 1`` every model is timed in turn once per round and each latency is the
    median over rounds, so a change of load on a shared machine hits all models alike.
    """
    if not models:
        raise ValueError("models is empty; pass a dict of name -> model")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    reference = reference or next(iter(models))
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not one of {list(models)}")
    timings: dict[str, dict[int, list[Latency]]] = {n: {b: [] for b in batch_sizes} for n in models}
    for _ in range(rounds):
        for b in batch_sizes:
            for name, model in models.items():
                timings[name][b].append(
                    latency(model, input_shape, b, threads=threads, min_run_time=min_run_time)
                )
    rows = {}
    for name, model in models.items():
        row: dict[str, float] = {
            "parameters": count_parameters(model),
            "size_MB": serialized_size(model) / 1e6,
            "MFLOPs": flops(model, input_shape) / 1e6,
        }
        for b in batch_sizes:
            row[f"ms@{b}"] = statistics.median(t.median_ms for t in timings[name][b])
            row[f"iqr_ms@{b}"] = statistics.median(t.iqr_s * 1e3 for t in timings[name][b])
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    ref = table.loc[reference]
    table["size_ratio"] = ref["size_MB"] / table["size_MB"]
    for b in batch_sizes:
        table[f"speedup@{b}"] = ref[f"ms@{b}"] / table[f"ms@{b}"]
    table.attrs["threads"] = threads or torch.get_num_threads()
    return table
