"""Putting the edge-camera student on the device (notebook 10 and ``benchmarks/edge_camera.py``):
int8 with the library flows, the int8 program exported for an edge runtime and checked
against PyTorch, and the table of size, latency and accuracy, on the CPU and, where there
is one, on a GPU.

- :func:`int8_students`: static post-training quantization with PT2E (torchao's
  ``X86InductorQuantizer``; as converted, a float simulation of int8, and compiled by
  Inductor into oneDNN int8 kernels), the same in FX
  graph mode (``torch.ao``, deprecated: the one flow with int8 CPU kernels that needs no
  compiler), and quantization-aware training (FX graph mode: kdlab has no PT2E QAT flow yet);
- :func:`export_int8`: the PT2E int8 graph re-exported with ``torch.export`` and saved as a
  ``.pt2`` file, the program ExecuTorch lowers for phones and microcontrollers, loaded back
  and compared with the model it came from;
- :func:`cost_table`: :func:`kdlab.bench.compare_models` plus test accuracy;
- :func:`gpu_table`: fp32, fp16 and bf16 latency on a CUDA GPU (None without one).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from kdlab import bench, runtime
from kdlab.data.landcover import LandCoverSet, LandCoverSplits
from kdlab.distill import Distiller
from kdlab.quantize import flows, torchao_flows
from kdlab.recipes.edge_camera import EdgeCameraRecipe, accuracy

__all__ = [
    "PT2E",
    "FX",
    "QAT",
    "calibration_batches",
    "int8_students",
    "export_int8",
    "cost_table",
    "gpu_table",
]

PT2E = "int8 PT2E (torchao, compiled)"
PT2E_EAGER = "int8 PT2E (torchao, not compiled)"
FX = "int8 static FX (torch.ao)"
QAT = "int8 QAT FX (torch.ao)"


def calibration_batches(data: LandCoverSet, n: int, batch_size: int = 64) -> list[Tensor]:
    """The first ``n`` patches of ``data`` (unaugmented, normalised) in batches: what the
    observers of static quantization see."""
    if n < 1:
        raise ValueError(f"calibration needs at least 1 patch, got {n}")
    x, _ = data.take(torch.arange(min(n, len(data)))).tensors()
    return list(x.split(batch_size))


def int8_students(
    student: nn.Module,
    splits: LandCoverSplits,
    recipe: EdgeCameraRecipe,
    *,
    teacher: nn.Module | None = None,
    calibration: int = 512,
    qat_epochs: int = 1,
    qat_lr: float = 1e-4,
    compile: bool = True,
    seed: int = 0,
) -> dict[str, nn.Module]:
    """The int8 versions of ``student`` (which is left as it is), by name: static PTQ with
    PT2E (the converted graph, and with ``compile`` the same compiled), static PTQ in FX mode,
    both calibrated on ``calibration`` training patches, and QAT: the FX fake-quantized
    copy trained ``qat_epochs`` more at ``qat_lr`` with the recipe's loss (distilled when
    ``teacher`` is given) on the host CPU, where FBGEMM's int8 kernels run, then
    converted."""
    batches = calibration_batches(splits.train, calibration)
    example = batches[0][:2]
    pt2e = torchao_flows.pt2e_x86(student, example, batches, compile=False)
    pt2e.eval()  # (an exported graph's eval() returns None)
    models = {PT2E_EAGER: pt2e}
    if compile:  # Inductor's freezing changes the module it compiles: give it a copy
        models[PT2E] = torchao_flows.CompiledInt8(copy.deepcopy(pt2e))
    models[FX] = flows.static_ptq(student, batches)

    def fine_tune(prepared: nn.Module) -> None:
        trainer = Distiller(
            prepared,
            teacher,
            temperature=recipe.temperature,
            alpha=recipe.alpha,
            lr=qat_lr,
            lr_schedule="cosine",
            device=runtime.HOST,  # the fake-quantized FX model trains where it is converted
            seed=seed,
        )
        data = splits.train.loader(recipe.batch_size, True, seed, augment=recipe.augment)
        with runtime.quiet():
            trainer.fit(data, qat_epochs, progress=False)

    with runtime.devices_restored(teacher):
        models[QAT] = flows.qat(student, fine_tune, example)
    return models


def export_int8(int8: nn.Module, student: nn.Module, data: LandCoverSet, path: str | Path) -> dict:
    """Export the PT2E int8 graph ``int8`` (from :func:`int8_students`, not compiled: the
    portable program) with ``torch.export``, any batch size, and save it to ``path`` (a
    ``.pt2`` file); then load the file and run it, ``int8`` and the float ``student`` on the
    patches of ``data``.

    Returns the file's ``bytes``, the largest absolute difference between the loaded
    program's logits and the in-memory int8 model's (``max_abs_diff``), the share of patches
    on which their predictions agree (``agreement``), the share on which the loaded program
    agrees with the float ``student`` (``agreement_fp32``), and its ``accuracy``."""
    path = Path(path)
    if path.suffix != ".pt2":
        raise ValueError(f"torch.export saves programs as .pt2 files, got {path.name!r}")
    x, y = data.tensors()
    int8.eval()  # an exported graph left in train mode would run its dropout
    batch = torch.export.Dim("batch", min=1)
    example = x[:2].clone()  # the program keeps its example: not a view of every patch
    with runtime.quiet():
        program = torch.export.export(int8, (example,), dynamic_shapes=({0: batch},))
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.export.save(program, path)
        loaded = torch.export.load(path).module()
    with torch.no_grad(), runtime.quiet():
        exported = torch.cat([loaded(chunk) for chunk in x.split(256)])
        reference = torch.cat([int8(chunk) for chunk in x.split(256)])
        fp32 = torch.cat([student.eval()(chunk) for chunk in x.split(256)])
    predicted = exported.argmax(1)
    return {
        "path": str(path),
        "bytes": path.stat().st_size,
        "max_abs_diff": float((exported - reference).abs().max()),
        "agreement": float((predicted == reference.argmax(1)).float().mean()),
        "agreement_fp32": float((predicted == fp32.argmax(1)).float().mean()),
        "accuracy": float((predicted == y).float().mean()),
    }


def cost_table(
    models: Mapping[str, nn.Module],
    data: LandCoverSet,
    *,
    batch_sizes: tuple[int, ...] = (1, 32),
    min_run_time: float = 0.5,
    rounds: int = 1,
) -> pd.DataFrame:
    """:func:`kdlab.bench.compare_models` of ``models`` on patches of ``data``'s size (ratios
    against the first model), with each model's accuracy on ``data`` in percent."""
    side = data.images.shape[-1]
    table = bench.compare_models(
        models, (3, side, side), batch_sizes, min_run_time=min_run_time, rounds=rounds
    )
    table["accuracy %"] = [100 * accuracy(model, data) for model in models.values()]
    return table


def gpu_table(
    models: Mapping[str, nn.Module],
    side: int,
    *,
    batch_sizes: tuple[int, ...] = (1, 32),
    min_run_time: float = 0.5,
) -> pd.DataFrame | None:
    """Latency (ms) of each float model on the CUDA GPU in fp32, fp16 and bf16, or None on a
    machine without one. No int8 row: torchao's int8 configs quantize ``nn.Linear`` layers,
    and SqueezeNet has none (its classifier is a 1x1 convolution)."""
    if not torch.cuda.is_available():
        return None
    rows = {}
    for name, model in models.items():
        for dtype in (torch.float32, torch.float16, torch.bfloat16):
            on_gpu = _copy_to(model, torch.device("cuda"), dtype)
            rows[f"{name}, {str(dtype).removeprefix('torch.')}"] = {
                f"ms@{b}": bench.latency(
                    on_gpu, (3, side, side), b, min_run_time=min_run_time
                ).median_ms
                for b in batch_sizes
            }
    return pd.DataFrame.from_dict(rows, orient="index")


def _copy_to(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """A copy of ``model`` on ``device`` in ``dtype``, in eval mode (``model`` stays put)."""
    return copy.deepcopy(model).to(device=device, dtype=dtype).eval()
