"""Benchmark: the beyond-logits methods of notebook 07 (plain KD, DKD, FitNets, AT, RKD, SP,
DML, ONE and no KD), trained longer and over several seeds, on an MNIST-family data set.

The comparison of notebook 07, section 8, with more data and epochs: every method trains
the same ``StudentCNN`` (the same initialisation per seed) on the same ``--n-train``
training images for ``--epochs`` epochs (Adam, lr 1e-3 with a cosine decay, batch 128), with
the same cached CNN teacher (seed 0) and the same weights as the notebook; only the loss
changes. Seeds change the student's initialisation and the batch order. The teacher's
logits and ``features.1`` maps are computed once (exact: no augmentation, teacher in eval
mode). Prints a markdown table ranked by test accuracy (mean ± sd over seeds), the
difference to plain KD, the time per epoch relative to plain KD (wall clock and process
CPU time, measured side by side: every seed runs all methods in turn), and which methods
beat plain KD by more than the seed spread (the larger of the two standard deviations);
saves them to ``benchmarks/results/methods_<data>.json``, which notebook 07 shows when it
exists.

    python benchmarks/methods.py                                   # seeds 0 1 2, 10 epochs
    python benchmarks/methods.py --fast --seeds 0 1 --epochs 1     # a smoke run
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

import kdlab
from kdlab import recipes
from kdlab.distill import (
    DecoupledDistiller,
    Distiller,
    FeatureDistiller,
    MutualDistiller,
    NativeEnsembleDistiller,
)
from kdlab.hooks import activations_of
from kdlab.losses import (
    HintLoss,
    OnTheFlyNativeEnsemble,
    attention_transfer_loss,
    rkd_loss,
    similarity_preserving_loss,
)
from kdlab.metrics import evaluate
from kdlab.models import StudentCNN, logits_of
from kdlab.recipes.beyond_logits import run_method
from kdlab.report import save_results

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = ("no KD", "KD", "DKD", "FitNets", "AT", "RKD", "SP", "DML", "ONE")
LAYER = "features.1"  # the 7x7 stage of both networks: 16 student vs 64 teacher channels


def one_model() -> OnTheFlyNativeEnsemble:
    """ONE with the student's first stage as the trunk and three copies of its second stage
    and head as branches: branch 0 with the trunk is exactly a ``StudentCNN``."""
    base = StudentCNN()
    branches = [copy.deepcopy(nn.Sequential(base.features[1], base.head)) for _ in range(3)]
    return OnTheFlyNativeEnsemble(base.features[0], branches, gate_features=base.width)


def pooled_rkd(s: Tensor, t: Tensor) -> Tensor:
    """RKD (25 distance + 50 angle) on the globally pooled feature maps."""
    return rkd_loss(s.mean(dim=(2, 3)), t.mean(dim=(2, 3)))


def method_table(
    teacher: nn.Module, logits: Tensor, features: Tensor
) -> dict[str, tuple[Callable[[int], Distiller], Tensor | None]]:
    """Each method's distiller factory (seed -> Distiller) and the precomputed teacher
    outputs its batches carry; the settings of notebook 07's comparison."""
    recipe = recipes.STUDENT_RECIPE
    common = {"lr_schedule": "cosine"}

    def feature(make_term: Callable[[], Callable[[Tensor, Tensor], Tensor]], weight: float):
        # a fresh term per run: HintLoss holds a regressor that must not carry over
        return lambda seed: FeatureDistiller(
            StudentCNN(),
            teacher,
            make_term(),
            student_layer=LAYER,
            teacher_layer=LAYER,
            weight=weight,
            seed=seed,
            **common,
        )

    return {
        "no KD": (lambda seed: Distiller(StudentCNN(), None, seed=seed, **common), None),
        "KD": (
            lambda seed: Distiller(
                StudentCNN(),
                teacher,
                temperature=recipe["temperature"],
                alpha=recipe["alpha"],
                seed=seed,
                **common,
            ),
            logits,
        ),
        "DKD": (
            lambda seed: DecoupledDistiller(
                StudentCNN(),
                teacher,
                tc_weight=1.0,
                nc_weight=2.0,
                temperature=4.0,
                seed=seed,
                **common,
            ),
            logits,
        ),
        "FitNets": (feature(lambda: HintLoss(16, 64), 1.0), features),
        "AT": (feature(lambda: attention_transfer_loss, 3.0), features),
        "RKD": (feature(lambda: pooled_rkd, 1.0), features),
        "SP": (feature(lambda: similarity_preserving_loss, 3000.0), features),
        "DML": (
            lambda seed: MutualDistiller([StudentCNN(), StudentCNN()], seed=seed, **common),
            None,
        ),
        "ONE": (lambda seed: NativeEnsembleDistiller(one_model(), seed=seed, **common), None),
    }


def check_methods(methods: Sequence[str]) -> list[str]:
    """``methods`` in the benchmark's order; plain KD must be among them (the reference)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if "KD" not in methods:
        raise ValueError("methods must include 'KD': every result is compared with plain KD")
    return [m for m in METHODS if m in methods]


def run(
    data: str,
    seeds: list[int],
    epochs: int,
    n_train: int,
    fast: bool,
    methods: Sequence[str] = METHODS,
) -> dict:
    """Train every method in ``methods`` once per seed; return the runs and their summary."""
    methods = check_methods(methods)
    if not seeds:
        raise ValueError("pass at least one seed, e.g. seeds=[0, 1, 2]")
    start = time.perf_counter()
    splits = recipes.mnist_family_splits(data, fast=fast, seed=0)
    teacher, info = recipes.trained_teacher(splits, seed=0, verbose=False)
    teacher_accuracy = evaluate(teacher, splits.test.loader(1000))["accuracy"]
    train = splits.train.subset(n_train, seed=0)
    with torch.no_grad():
        logits = logits_of(teacher, train.x)
        features = activations_of(teacher, LAYER, train.x)
    table = method_table(teacher, logits, features)
    runs = []
    for seed in seeds:
        for name in methods:
            make, outputs = table[name]

            def seeded(s: int, make: Callable[[int], Distiller] = make) -> Distiller:
                kdlab.seed_everything(s)  # the same student initialisation for every method
                return make(s)

            cpu = time.process_time()
            result = run_method(
                seeded, train, splits.test, epochs=epochs, seed=seed, teacher_outputs=outputs
            )
            runs.append(
                {
                    "seed": seed,
                    "method": name,
                    "test_accuracy": 100 * result["accuracy"],
                    "seconds_per_epoch": result["seconds_per_epoch"],
                    # includes building the distiller and the final test pass (under 1 %)
                    "cpu_seconds_per_epoch": (time.process_time() - cpu) / epochs,
                }
            )
            print(
                f"seed {seed} {name:<8} test {runs[-1]['test_accuracy']:.2f} % "
                f"({result['seconds_per_epoch']:.1f} s/epoch)",
                flush=True,
            )
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "seeds": seeds,
        "epochs": epochs,
        "n_train": len(train),
        "n_test": len(splits.test),
        "methods": methods,
        "teacher_test_accuracy": 100 * teacher_accuracy,
        "teacher_status": info["status"],
        "runs": runs,
        "summary": summarize(runs, methods),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def summarize(runs: list[dict], methods: Sequence[str]) -> list[dict]:
    """Per method: test accuracy mean and sd over seeds, its difference to plain KD, time
    per epoch relative to plain KD, and the verdict; ranked by mean accuracy."""

    def stats(name: str, key: str) -> list[float]:
        return [r[key] for r in runs if r["method"] == name]

    def sd(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    kd = stats("KD", "test_accuracy")
    kd_mean, kd_sd = statistics.fmean(kd), sd(kd)
    kd_wall = statistics.fmean(stats("KD", "seconds_per_epoch"))
    kd_cpu = statistics.fmean(stats("KD", "cpu_seconds_per_epoch"))
    rows = []
    for name in methods:
        accs = stats(name, "test_accuracy")
        mean, spread = statistics.fmean(accs), sd(accs)
        diff, margin = mean - kd_mean, max(spread, kd_sd)
        if name == "KD":
            verdict = "reference"
        elif min(len(accs), len(kd)) < 2:
            verdict = "no spread: one seed"
        elif diff > margin:
            verdict = "beats plain KD"
        elif diff < -margin:
            verdict = "below plain KD"
        else:
            verdict = "within the spread of plain KD"
        rows.append(
            {
                "method": name,
                "mean %": mean,
                "sd": spread,
                "vs KD (points)": diff,
                "margin (points)": margin,
                "verdict": verdict,
                "wall vs KD": statistics.fmean(stats(name, "seconds_per_epoch")) / kd_wall,
                "cpu vs KD": statistics.fmean(stats(name, "cpu_seconds_per_epoch")) / kd_cpu,
            }
        )
    return sorted(rows, key=lambda row: -row["mean %"])


def report(result: dict) -> str:
    """The markdown table of :func:`run`'s result, ranked, with the verdicts in words."""
    summary = result["summary"]
    lines = [
        f"Beyond-logits methods on {result['data']} ({result['n_train']} training images, "
        f"{result['epochs']} epochs, {len(result['seeds'])} seeds, {result['n_test']} test "
        f"images, teacher {result['teacher_test_accuracy']:.2f} %, {result['machine']})",
        "",
        "| rank | method | test % (mean ± sd) | vs KD (points) | s/epoch vs KD (wall) "
        "| s/epoch vs KD (CPU) | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank, row in enumerate(summary, 1):
        lines.append(
            f"| {rank} | {row['method']} | {row['mean %']:.2f} ± {row['sd']:.2f} "
            f"| {row['vs KD (points)']:+.2f} | {row['wall vs KD']:.2f}x "
            f"| {row['cpu vs KD']:.2f}x | {row['verdict']} |"
        )

    def having(verdict: str) -> str:
        return ", ".join(r["method"] for r in summary if r["verdict"] == verdict) or "none"

    lines += [
        "",
        "- ranking: " + " > ".join(row["method"] for row in summary),
        f"- beat plain KD by more than the seed spread: {having('beats plain KD')}",
        f"- below plain KD by more than the seed spread: {having('below plain KD')}",
        f"- within the seed spread of plain KD: {having('within the spread of plain KD')}",
        f"- wall time {result['wall_seconds']:.0f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default 10 (1 with --fast)")
    parser.add_argument("--n-train", type=int, default=12000, help="training images")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--fast", action="store_true", help="small subsets: a smoke run")
    args = parser.parse_args()
    if args.n_train < 1:
        parser.error(f"--n-train must be >= 1, got {args.n_train}")
    epochs = args.epochs if args.epochs is not None else (1 if args.fast else 10)
    if epochs < 1:
        parser.error(f"--epochs must be >= 1, got {epochs}")
    n_train = min(args.n_train, 600) if args.fast else args.n_train
    result = run(args.data, args.seeds, epochs, n_train, args.fast, args.methods)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"methods_{args.data}{suffix}.json", report)


if __name__ == "__main__":
    main()
