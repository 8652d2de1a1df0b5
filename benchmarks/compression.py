"""Benchmark: int8 quantization and pruning of the MNIST-family MLP student and CNN teacher.

For each model, side by side in one process against its fp32 self:

- every int8 flow of :mod:`kdlab.quantize.flows` (dynamic and static PTQ, QAT, torchao's
  ``quantize_`` with two configs, PT2E with ``torch.compile``): size ratio, latency ratio
  at batch 1 and 256, test accuracy change and how many test predictions flip;
- unstructured (layer-wise magnitude, Han et al. 2015) and structured (L1 norm of whole
  neurons and channels, Li et al. 2017) pruning at 50, 75 and 90 %, one shot and after
  iterative fine-tuning (prune, fine-tune, prune further: Han et al. 2015) with
  distillation from the unpruned model; structured models are physically shrunk
  (:func:`kdlab.prune.shrink`), unstructured ones keep their dense shape.

The student and the fine-tune are those of notebooks 04 and 09, from
:mod:`kdlab.recipes.pipeline`: the cached distilled MLP student (``distilled_student``) and
``finetune_distilled`` with ``FINETUNE_RECIPE``; only the number of epochs differs.

Latency ratios are medians over rounds that time every model in turn, so a load change
on a shared machine hits all of them alike. Prints the tables and the goals (met or NOT
met, from the measurements); saves everything to
``benchmarks/results/compression_<data>.json`` first.

    python benchmarks/compression.py                    # Fashion-MNIST, seed 0
    python benchmarks/compression.py --data mnist       # where MNIST is available
    python benchmarks/compression.py --fast             # a smoke run on small subsets
    python benchmarks/compression.py --models student --flows dynamic_ptq static_ptq
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from kdlab import bench, prune, recipes, runtime
from kdlab.models import IMAGE_SHAPE, logits_of
from kdlab.quantize import flows as qf
from kdlab.quantize import torchao_flows as ao
from kdlab.recipes.pipeline import FINETUNE_RECIPE, distilled_student, finetune_distilled
from kdlab.report import save_results

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("student", "teacher")
FLOWS = (
    "dynamic_ptq",
    "static_ptq",
    "qat",
    "torchao_int8_dynamic",
    "torchao_int8_weight_only",
    "pt2e_x86",
)
METHODS = ("unstructured", "structured")
SPARSITIES = (0.5, 0.75, 0.9)
BATCHES = (1, 256)
EVAL_BATCH = 1000  # one compiled graph serves every test batch (10,000 = 10 x 1,000)
CALIBRATION_BATCHES = 8  # of 128 training images each
# Fine-tuning (QAT and pruning): kdlab.recipes.pipeline's, as in notebooks 04 and 09.
# The fine-tune recipe as saved with the results (its epochs are set per model below).
FINETUNE = {k: v for k, v in FINETUNE_RECIPE.as_dict().items() if k != "epochs"}
FINETUNE_EPOCHS = {"student": 2, "teacher": 1}  # per QAT run and per pruning step; fast: 1
GOALS = {
    "int8_size_ratio": 3.9,  # every int8 flow at least this many times smaller
    "int8_speedup": 1.5,  # the best int8 flow at batch 256 ...
    "int8_max_loss": 0.3,  # ... losing at most this many accuracy points
    "pruned_speedup": 1.6,  # 50 % structured, shrunk and fine-tuned, at batch 256 ...
    "pruned_max_loss": 1.0,  # ... losing at most this many points
}


def finetuner(dense: nn.Module, splits: recipes.Splits, epochs: int, seed: int) -> Callable:
    """``fit(model)``: ``epochs`` of distillation from a frozen copy of ``dense`` with
    :func:`kdlab.recipes.pipeline.finetune_distilled` (its logits computed once: exact, the
    inputs do not change)."""
    teacher = copy.deepcopy(dense).eval()
    with torch.no_grad():
        soft = logits_of(teacher, splits.train.x)

    def fit(model: nn.Module) -> dict[str, float]:
        history = finetune_distilled(
            model, teacher, splits.train, epochs, val=splits.val, dense_logits=soft, seed=seed
        )
        return {"val_accuracy": history.last["val_accuracy"]}

    return fit


def int8_model(flow: str, model: nn.Module, splits: recipes.Splits, fit: Callable) -> nn.Module:
    """``model`` quantized to int8 by ``flow`` (one of :data:`FLOWS`)."""
    calibration = [x for x, _ in splits.train.loader(128)][:CALIBRATION_BATCHES]
    example = calibration[0]
    if flow == "dynamic_ptq":
        return qf.dynamic_ptq(model)
    if flow == "static_ptq":
        return qf.static_ptq(model, calibration)
    if flow == "qat":
        return qf.qat(model, fit, example)
    if flow.startswith("torchao_"):
        return ao.torchao_quantize(model, flow.removeprefix("torchao_"))
    if flow == "pt2e_x86":
        return ao.pt2e_x86(model, example, calibration)
    raise ValueError(f"flow must be one of {FLOWS}, got {flow!r}")


def masks_folded(pruned: nn.Module, dense: nn.Module) -> nn.Module:
    """A copy of ``dense`` holding ``pruned``'s weights with its masks applied
    (``w = w_orig * mask``): the same shapes and outputs, no masking cost, and the dense
    model's state-dict layout (so its saved size is the dense model's to the byte, which
    :func:`kdlab.prune.make_permanent` does not keep: it re-registers each weight last)."""
    state = pruned.state_dict()
    folded = {}
    for key, value in state.items():
        if key.endswith("_orig"):
            base = key.removesuffix("_orig")
            folded[base] = value * state[base + "_mask"]
        elif not key.endswith("_mask"):
            folded[key] = value
    plain = copy.deepcopy(dense)
    plain.load_state_dict(folded)
    return plain.eval()


def nonzero_parameters(model: nn.Module) -> int:
    return sum(int((p != 0).sum()) for p in model.parameters())


def predictions(model: nn.Module, splits: recipes.Splits) -> torch.Tensor:
    with warnings.catch_warnings():  # torch.ao's quantized tensors warn on every call
        warnings.simplefilter("ignore")
        return logits_of(model, splits.test.x, EVAL_BATCH).argmax(1)


def prune_variants(
    dense: nn.Module, method: str, splits: recipes.Splits, fit: Callable
) -> list[tuple[float, nn.Module, dict]]:
    """``(sparsity, model, facts)`` for each of :data:`SPARSITIES`, fine-tuned iteratively.

    One chain per method: prune to 50 %, fine-tune, prune to 75 %, fine-tune, and so on.
    Structured models are shrunk; unstructured ones get their masks folded in (dense).
    """
    method_prune = {"unstructured": prune.prune_unstructured, "structured": prune.prune_structured}
    variants = []
    for sparsity in SPARSITIES:  # one shot: the damage before any fine-tuning
        one_shot = method_prune[method](copy.deepcopy(dense), sparsity)
        accuracy = float((predictions(one_shot, splits) == splits.test.y).float().mean())
        variants.append({"one_shot_accuracy": accuracy})

    snapshots = []

    def finetune_and_keep(model: nn.Module) -> dict[str, float]:
        scores = fit(model)
        snapshots.append(
            prune.shrink(model) if method == "structured" else masks_folded(model, dense)
        )
        return scores

    model = copy.deepcopy(dense)
    table = prune.iterative_pruning(model, SPARSITIES, finetune_and_keep, method=method)
    for facts, (_, row) in zip(variants, table.iterrows(), strict=True):
        facts["measured_sparsity"] = float(row["sparsity"])
        facts["val_accuracy"] = float(row["val_accuracy"])
    return list(zip(SPARSITIES, snapshots, variants, strict=True))


def time_side_by_side(
    models: dict[str, nn.Module], rounds: int, min_run_time: float
) -> dict[str, dict[str, dict[str, float]]]:
    """Median latency (ms) per model and batch size, and the median over rounds of
    ``fp32 / model`` (each round times every model in turn at each batch size)."""
    ms = {name: {b: [] for b in BATCHES} for name in models}
    for _ in range(rounds):
        for b in BATCHES:
            for name, model in models.items():
                lat = bench.latency(model, IMAGE_SHAPE, b, min_run_time=min_run_time)
                ms[name][b].append(lat.median_ms)
    reference = next(iter(models))
    return {
        name: {
            "ms": {f"batch{b}": statistics.median(ms[name][b]) for b in BATCHES},
            "speedup": {
                f"batch{b}": statistics.median(
                    r / m for r, m in zip(ms[reference][b], ms[name][b], strict=True)
                )
                for b in BATCHES
            },
        }
        for name in models
    }


def benchmark_model(
    kind: str,
    dense: nn.Module,
    splits: recipes.Splits,
    flows: list[str],
    fast: bool,
    seed: int,
    bar=None,
) -> list[dict]:
    """Every variant of one model: built, evaluated on the test set, then timed together.
    ``bar`` (a progress bar) advances once per int8 flow, per pruning method and for the
    timing: :func:`steps` of them."""
    bar = bar if bar is not None else runtime.progress_bar(progress=False)
    epochs = 1 if fast else FINETUNE_EPOCHS[kind]
    fit = finetuner(dense, splits, epochs, seed)
    fp32_pred = predictions(dense, splits)
    fp32_size = bench.serialized_size(dense)
    rows: list[dict] = []
    models: dict[str, nn.Module] = {}

    def add(name: str, model: nn.Module, seconds: float, **facts: object) -> None:
        pred = predictions(model, splits)
        size = bench.serialized_size(model)
        rows.append(
            {
                "model": kind,
                "variant": name,
                **facts,
                "size_bytes": size,
                "size_ratio": fp32_size / size,
                "accuracy": float((pred == splits.test.y).float().mean()),
                "flips": int((pred != fp32_pred).sum()),
                "build_seconds": seconds,
            }
        )
        models[name] = model
        accuracy = rows[-1]["accuracy"]
        runtime.progress_print(f"{kind} {name}: accuracy {accuracy:.4f} ({seconds:.0f} s)")

    add("fp32", dense.eval(), 0.0, kind="fp32", nonzero_parameters=nonzero_parameters(dense))
    for flow in flows:
        t0 = time.perf_counter()
        try:
            quantized = int8_model(flow, dense, splits, fit)
        except ImportError as error:  # torchao is an extra package
            rows.append({"model": kind, "variant": flow, "kind": "int8", "skipped": str(error)})
            runtime.progress_print(f"{kind} {flow}: skipped ({error})")
            bar.update()
            continue
        add(flow, quantized, time.perf_counter() - t0, kind="int8")
        bar.update()
    for method in METHODS:
        t0 = time.perf_counter()
        variants = prune_variants(dense, method, splits, fit)
        seconds = (time.perf_counter() - t0) / len(variants)
        for sparsity, model, facts in variants:
            name = f"{method} {sparsity:.0%}"
            facts["nonzero_parameters"] = nonzero_parameters(model)
            add(name, model, seconds, kind=method, sparsity=sparsity, **facts)
        bar.update()

    t0 = time.perf_counter()
    timings = time_side_by_side(models, rounds=1 if fast else 3, min_run_time=0.2 if fast else 0.5)
    runtime.progress_print(f"{kind}: {len(models)} models timed ({time.perf_counter() - t0:.0f} s)")
    bar.update()
    base = rows[0]["accuracy"]
    for row in rows:
        if "skipped" not in row:
            row.update(timings[row["variant"]])
            row["change_points"] = 100 * (row["accuracy"] - base)
    return rows


def steps(flows: list[str] | tuple[str, ...]) -> int:
    """The steps of :func:`benchmark_model` for one model: each flow, each pruning method
    and the timing."""
    return len(flows) + len(METHODS) + 1


def goals(rows: list[dict]) -> list[dict]:
    """Each goal per model, judged from the measured rows; ``id`` names the goal."""
    g = GOALS
    out: list[dict] = []

    def add(kind: str, goal_id: str, goal: str, measured: str, met: bool) -> None:
        out.append({"model": kind, "id": goal_id, "goal": goal, "measured": measured, "met": met})

    for kind in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == kind and "skipped" not in r]
        int8 = [r for r in mine if r["kind"] == "int8"]
        if int8:
            ratios = {r["variant"]: r["size_ratio"] for r in int8}
            short = [
                f"{name} {ratio:.2f}x"
                for name, ratio in ratios.items()
                if ratio < g["int8_size_ratio"]
            ]
            measured = (
                f"below: {', '.join(short)}" if short else f"smallest {min(ratios.values()):.2f}x"
            )
            add(
                kind,
                "int8_size",
                f"every int8 flow >= {g['int8_size_ratio']}x smaller",
                measured,
                not short,
            )

            accurate = [r for r in int8 if r["change_points"] >= -g["int8_max_loss"]]
            best = max(accurate or int8, key=lambda r: r["speedup"]["batch256"])
            speedup = best["speedup"]["batch256"]
            add(
                kind,
                "int8_speed",
                f"best int8 flow >= {g['int8_speedup']}x faster at batch 256, "
                f"<= {g['int8_max_loss']} points lost",
                f"{best['variant']}: {speedup:.2f}x, {best['change_points']:+.2f} points",
                bool(accurate) and speedup >= g["int8_speedup"],
            )
        for r in mine:
            if r["kind"] == "structured" and r["sparsity"] == 0.5:
                speedup, change = r["speedup"]["batch256"], r["change_points"]
                add(
                    kind,
                    "pruned_speed",
                    f"50% structured, shrunk and fine-tuned, >= {g['pruned_speedup']}x faster "
                    f"at batch 256, <= {g['pruned_max_loss']} point lost",
                    f"{speedup:.2f}x, {change:+.2f} points",
                    speedup >= g["pruned_speedup"] and change >= -g["pruned_max_loss"],
                )
    return out


def run(
    data: str = "fashion-mnist",
    seed: int = 0,
    fast: bool = False,
    models: list[str] | tuple[str, ...] = MODELS,
    flows: list[str] | tuple[str, ...] = FLOWS,
) -> dict:
    unknown = [m for m in models if m not in MODELS] + [f for f in flows if f not in FLOWS]
    if unknown:
        raise ValueError(f"unknown models or flows {unknown}; models: {MODELS}, flows: {FLOWS}")
    start = time.perf_counter()
    load_before = os.getloadavg()
    splits = recipes.mnist_family_splits(data, fast=fast, seed=seed)
    teacher, info = recipes.trained_teacher(splits, seed=seed)
    runtime.progress_print(f"{splits.describe()}; teacher {info['status']}")
    rows: list[dict] = []
    # One bar over every model's steps; each fine-tuning shows its own bar below it.
    bar = runtime.progress_bar(total=len(models) * steps(flows), desc="steps", unit="step")
    for kind in models:
        if kind == "teacher":
            dense = teacher
        else:  # the cached student of notebooks 04 and 09
            dense, _ = distilled_student(splits, teacher, info, seed=seed)
        rows += benchmark_model(kind, dense, splits, list(flows), fast, seed, bar)
    bar.close()
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "n_test": len(splits.test),
        "seed": seed,
        "teacher_status": info["status"],
        "finetune": FINETUNE | {"epochs": {k: 1 if fast else FINETUNE_EPOCHS[k] for k in models}},
        "rows": rows,
        "goals": goals(rows),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "load_average": {"start": load_before[0], "end": os.getloadavg()[0]},
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def report(result: dict) -> str:
    rows = [r for r in result["rows"] if "skipped" not in r]
    lines = [
        f"Compression on {result['data']} (seed {result['seed']}, one run; "
        f"{result['n_test']} test images; {result['machine']}; load average "
        f"{result['load_average']['start']:.1f} at start, {result['load_average']['end']:.1f} "
        "at end). Ratios are fp32 / variant, speed-ups at batch 1 and 256.",
        "",
        "| model | int8 flow | size MB | smaller | faster @1 | faster @256 | ms @256 "
        "| accuracy % | change (points) | flips |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] in ("fp32", "int8"):
            lines.append(
                f"| {r['model']} | {r['variant']} | {r['size_bytes'] / 1e6:.3f} | "
                f"{r['size_ratio']:.2f}x | {r['speedup']['batch1']:.2f}x | "
                f"{r['speedup']['batch256']:.2f}x | {r['ms']['batch256']:.2f} | "
                f"{100 * r['accuracy']:.2f} | {r['change_points']:+.2f} | {r['flips']} |"
            )
    lines += [
        "",
        "| model | pruning | nonzero params | size MB | smaller | faster @1 | faster @256 "
        "| accuracy one-shot % | accuracy fine-tuned % | change (points) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["kind"] in ("fp32", *METHODS):
            one_shot = f"{100 * r['one_shot_accuracy']:.2f}" if "one_shot_accuracy" in r else "-"
            lines.append(
                f"| {r['model']} | {r['variant']} | {r['nonzero_parameters']:,} | "
                f"{r['size_bytes'] / 1e6:.3f} | {r['size_ratio']:.2f}x | "
                f"{r['speedup']['batch1']:.2f}x | {r['speedup']['batch256']:.2f}x | "
                f"{one_shot} | {100 * r['accuracy']:.2f} | {r['change_points']:+.2f} |"
            )
    skipped = [r for r in result["rows"] if "skipped" in r]
    lines += [""] + [f"Skipped {r['model']} {r['variant']}: {r['skipped']}" for r in skipped]
    lines += [""] * bool(skipped) + ["| model | goal | measured | status |", "|---|---|---|---|"]
    for g in result["goals"]:
        lines.append(
            f"| {g['model']} | {g['goal']} | {g['measured']} | {'met' if g['met'] else 'NOT met'} |"
        )
    lines += ["", f"Wall time {result['wall_seconds']:.0f} s."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--flows", nargs="+", default=list(FLOWS), choices=FLOWS)
    parser.add_argument("--fast", action="store_true", help="small subsets: a smoke run")
    args = parser.parse_args()
    result = run(args.data, args.seed, args.fast, args.models, args.flows)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"compression_{args.data}{suffix}.json", report)


if __name__ == "__main__":
    main()
