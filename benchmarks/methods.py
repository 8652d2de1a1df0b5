"""Benchmark: the beyond-logits methods of notebook 07 (plain KD, DKD, FitNets, AT, RKD, SP,
DML, ONE and no KD), trained longer and over several seeds, on an MNIST-family data set.

The comparison of notebook 07, section 8, with more data and epochs: both import the table
of methods and the training settings from :mod:`kdlab.recipes.beyond_logits` (``METHODS``,
``TRAINING``: Adam at a constant lr 1e-3, batch 128), so every method trains the same
``StudentCNN`` (the same initialisation per seed) with the same weights and schedule as in
the notebook, on the same ``--n-train`` training images for ``--epochs`` epochs, with the
same cached CNN teacher (seed 0); only the loss changes. Seeds change the student's
initialisation and the batch order. The teacher's logits and ``features.1`` maps are
computed once (exact: no augmentation, teacher in eval mode). Prints a markdown table ranked
by test accuracy (mean ± sd over seeds), the difference to plain KD, the time per epoch
relative to plain KD (wall clock and process CPU time, measured side by side: every seed
runs all methods in turn), and which methods beat plain KD by more than the seed spread
(the larger of the two standard deviations, :func:`kdlab.report.verdict`); saves them to
``benchmarks/results/methods_<data>.json``, which notebook 07 shows when it exists.

    python benchmarks/methods.py                                   # seeds 0 1 2, 10 epochs
    python benchmarks/methods.py --fast --seeds 0 1 --epochs 1     # a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from kdlab import recipes, runtime
from kdlab.metrics import evaluate
from kdlab.recipes import beyond_logits
from kdlab.report import save_results, spread, verdict

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = tuple(beyond_logits.METHODS)  # names, in the order of notebook 07's table
VERDICTS = {  # kdlab.report.verdict's words, as this report words them
    "better": "beats plain KD",
    "worse": "below plain KD",
    "tie": "within the spread of plain KD",
    "one run": "no spread: one seed",
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
    teacher, info = recipes.trained_teacher(splits, seed=0)
    teacher_accuracy = evaluate(teacher, splits.test.loader(1000))["accuracy"]
    train = splits.train.subset(n_train, seed=0)

    # One bar over the runs (every method once per seed); each shows its own bar below it.
    bar = runtime.progress_bar(total=len(seeds) * len(methods), desc="runs", unit="run")

    def record(run: dict) -> None:
        bar.update()
        runtime.progress_print(
            f"seed {run['seed']} {run['method']:<8} test {100 * run['accuracy']:.2f} % "
            f"({run['seconds_per_epoch']:.1f} s/epoch)"
        )

    table = [beyond_logits.METHODS[name] for name in methods]
    runs = [
        {
            "seed": r["seed"],
            "method": r["method"],
            "test_accuracy": 100 * r["accuracy"],
            "seconds_per_epoch": r["seconds_per_epoch"],
            # includes building the distiller and the final test pass (under 1 %)
            "cpu_seconds_per_epoch": r["cpu_seconds_per_epoch"],
        }
        for r in beyond_logits.compare(
            table, teacher, train, splits.test, seeds=seeds, epochs=epochs, on_run=record
        )
    ]
    bar.close()
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
        "training": dataclasses.asdict(beyond_logits.TRAINING),
        "runs": runs,
        "summary": summarize(runs, methods),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def summarize(runs: list[dict], methods: Sequence[str]) -> list[dict]:
    """Per method: test accuracy mean and sd over seeds, its difference to plain KD, time
    per epoch relative to plain KD, and the verdict (:func:`kdlab.report.verdict`: a
    difference within the larger sd is a tie); ranked by mean accuracy."""

    def stats(name: str, key: str) -> list[float]:
        return [r[key] for r in runs if r["method"] == name]

    kd = stats("KD", "test_accuracy")
    kd_mean, kd_sd = spread(kd)
    kd_wall = statistics.fmean(stats("KD", "seconds_per_epoch"))
    kd_cpu = statistics.fmean(stats("KD", "cpu_seconds_per_epoch"))
    rows = []
    for name in methods:
        accs = stats(name, "test_accuracy")
        mean, sd = spread(accs)
        rows.append(
            {
                "method": name,
                "mean %": mean,
                "sd": sd,
                "vs KD (points)": mean - kd_mean,
                "margin (points)": max(sd, kd_sd),
                "verdict": "reference" if name == "KD" else VERDICTS[verdict(accs, kd)],
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
