"""Benchmark: soft targets as a regulariser, Hinton et al.'s limited-data experiment, on an
MNIST-family data set over several seeds (kdlab.recipes.limited_data, notebook 02).

One CNN teacher, trained on all the training images of split 0 (the course's cached
teacher); for each seed, the MLP student on a random 3 % of the training images with hard
labels, with the teacher's soft targets, and by function matching (mixup, the teacher
labelling each mixed image), and on all the images with hard labels and with the
teacher's soft targets alone. Seeds change which images are drawn and the student's
initialisation. Prints test errors (mean ± sd) and the share of the gap between the
few-label and the all-label student that each recovers (Hinton et al.'s speech model: 87 %),
and saves them to ``benchmarks/results/limited_data_<data>.json``, which notebook 02
shows when it exists.

    python benchmarks/limited_data.py                       # Fashion-MNIST, seeds 0 1 2
    python benchmarks/limited_data.py --fast --seeds 0 1    # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from kdlab import recipes, runtime
from kdlab.metrics import evaluate
from kdlab.recipes import limited_data
from kdlab.report import format_spread, save_results, verdict

RESULTS = Path(__file__).resolve().parent / "results"
HINTON = {  # frame accuracy %, Hinton, Vinyals and Dean (2015), table 5
    "few, hard labels": 44.5,
    "few, soft targets": 57.0,
    "all, hard labels": 58.9,
}


def run(data: str, seeds: list[int], fast: bool, fraction: float, epochs: int | None) -> dict:
    start = time.perf_counter()
    splits = recipes.mnist_family_splits(data, fast=fast, seed=0)
    teacher, info = recipes.trained_teacher(splits, seed=0)
    overrides = {}
    if fast or epochs:
        short = {"epochs": epochs or 2}
        overrides = {
            row: recipe.replace(**short) for row, recipe in limited_data.default_recipes().items()
        }
    per_seed = []
    for seed in runtime.progress_bar(seeds, desc="seeds", unit="seed"):
        t0 = time.perf_counter()
        errors = {}
        for row in limited_data.ROWS:
            student = limited_data.train_row(
                row, splits, teacher, fraction=fraction, seed=seed, recipes=overrides
            )
            errors[row] = evaluate(student, splits.test.loader(1000))["errors"]
        per_seed.append({"seed": seed, **errors, "seconds": time.perf_counter() - t0})
        runtime.progress_print(f"seed {seed}: {errors} ({time.perf_counter() - t0:.0f} s)")
    chosen = {**limited_data.default_recipes(), **overrides}
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "seeds": seeds,
        "fraction": fraction,
        "n_few": len(limited_data.few_examples(splits.train, fraction)),
        "n_train": len(splits.train),
        "n_test": len(splits.test),
        "teacher_errors": evaluate(teacher, splits.test.loader(1000))["errors"],
        "teacher_status": info["status"],
        "recipes": {row: recipe.as_dict() for row, recipe in chosen.items()},
        "per_seed": per_seed,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def recovered(result: dict) -> dict[str, list[float]]:
    """Per row, the share of the gap recovered in each seed (%)."""
    out = {}
    for row in limited_data.ROWS:
        out[row] = [
            100 * limited_data.gap_recovered(r[row], r["few, hard labels"], r["all, hard labels"])
            for r in result["per_seed"]
            if r["few, hard labels"] > r["all, hard labels"]
        ]
    return out


def report(result: dict) -> str:
    rows = result["per_seed"]
    gaps = recovered(result)
    lines = [
        f"Limited data on {result['data']}: {result['n_few']} of {result['n_train']} training "
        f"images ({100 * result['fraction']:g} %), {len(rows)} seeds, {result['n_test']} test "
        f"images, {result['machine']}; teacher {result['teacher_errors']} test errors",
        "",
        "| student | test errors (mean ± sd) | gap recovered % (mean ± sd) | per seed | "
        "vs few, hard labels | Hinton et al. (speech) |",
        "|---|---|---|---|---|---|",
    ]
    few_hard = [r["few, hard labels"] for r in rows]
    for row in limited_data.ROWS:
        errs = [r[row] for r in rows]
        gap = format_spread(gaps[row], 1) if gaps[row] else "n/a"
        per = " / ".join(f"{g:.0f}" for g in gaps[row])
        better = (
            "reference"
            if row == "few, hard labels"
            else verdict(errs, few_hard, higher_is_better=False)
        )
        hinton = f"{HINTON[row]} % frame accuracy" if row in HINTON else ""
        lines.append(f"| {row} | {format_spread(errs, 1)} | {gap} | {per} | {better} | {hinton} |")
    lines += ["", f"wall time {result['wall_seconds']:.0f} s"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fraction", type=float, default=limited_data.FRACTION)
    parser.add_argument("--epochs", type=int, default=None, help="every student's epochs")
    parser.add_argument("--fast", action="store_true", help="small subsets: a smoke run")
    args = parser.parse_args()
    result = run(args.data, args.seeds, args.fast, args.fraction, args.epochs)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"limited_data_{args.data}{suffix}.json", report)


if __name__ == "__main__":
    main()
