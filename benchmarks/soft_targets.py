"""Benchmark: soft-target distillation on an MNIST-family data set, over several seeds.

For each seed: the CNN teacher (cached), the MLP student trained from the labels alone,
and the same student distilled with the course recipe (kdlab.recipes.STUDENT_RECIPE).
Prints a table of test errors (mean and spread), whether the distilled student beats the
one from scratch by more than the seed spread (kdlab.report.verdict), the gap closed
``(err_scratch - err_kd) / (err_scratch - err_teacher)`` (Hinton et al. 2015 on MNIST:
(146 - 74) / (146 - 67) = 91 %), latency ratios at batch 1 and 256 measured side by side,
size ratio and wall time; saves them to ``benchmarks/results/soft_targets_<data>.json``,
which notebook 02 shows when it exists.

    python benchmarks/soft_targets.py                        # Fashion-MNIST, seeds 0 1 2
    python benchmarks/soft_targets.py --data mnist           # where MNIST is available
    python benchmarks/soft_targets.py --fast --seeds 0       # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from kdlab import bench, recipes, runtime
from kdlab.metrics import evaluate
from kdlab.report import format_spread, save_results, spread, verdict

RESULTS = Path(__file__).resolve().parent / "results"


def run(data: str, seeds: list[int], fast: bool, epochs: int | None) -> dict:
    start = time.perf_counter()
    overrides = {"epochs": epochs} if epochs else {}
    if fast:
        overrides.setdefault("epochs", 2)
    per_seed = []
    # One bar over the seeds; each training shows its own below it while it runs.
    for seed in runtime.progress_bar(seeds, desc="seeds", unit="seed"):
        t0 = time.perf_counter()
        splits = recipes.mnist_family_splits(data, fast=fast, seed=seed)
        teacher, info = recipes.trained_teacher(splits, seed=seed)
        scratch, _ = recipes.train_student(splits, None, seed=seed, **overrides)
        distilled, _ = recipes.train_student(splits, teacher, seed=seed, **overrides)
        errors = {
            name: evaluate(model, splits.test.loader(1000))["errors"]
            for name, model in (
                ("teacher", teacher),
                ("scratch", scratch),
                ("distilled", distilled),
            )
        }
        gap = (errors["scratch"] - errors["distilled"]) / max(
            errors["scratch"] - errors["teacher"], 1
        )
        per_seed.append(
            {
                "seed": seed,
                **errors,
                "gap_closed": gap,
                "teacher_status": info["status"],
                "n_test": len(splits.test),
                "seconds": time.perf_counter() - t0,
            }
        )
        runtime.progress_print(
            f"seed {seed}: {errors} gap closed {gap:.1%} ({time.perf_counter() - t0:.0f} s)"
        )
    table = bench.compare_models(
        {"teacher": teacher, "student": distilled},
        (1, 28, 28),
        (1, 256),
        min_run_time=0.2 if fast else 1.0,
    )
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "seeds": seeds,
        "recipe": recipes.STUDENT_RECIPE.replace(**overrides).as_dict(),
        "per_seed": per_seed,
        "latency_ms": {
            name: {"batch1": row["ms@1"], "batch256": row["ms@256"]}
            for name, row in table.iterrows()
        },
        "speedup_batch1": float(table.loc["student", "speedup@1"]),
        "speedup_batch256": float(table.loc["student", "speedup@256"]),
        "size_ratio": float(table.loc["student", "size_ratio"]),
        "parameters": {name: int(row["parameters"]) for name, row in table.iterrows()},
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def distilled_vs_scratch(rows: list[dict]) -> str:
    """The distilled student's test errors against the scratch student's over the seeds:
    better (fewer), worse, tie (a difference within the seed spread) or one run."""
    distilled, scratch = [r["distilled"] for r in rows], [r["scratch"] for r in rows]
    return verdict(distilled, scratch, higher_is_better=False)


def report(result: dict) -> str:
    rows = result["per_seed"]
    n = rows[0]["n_test"]
    lines = [
        f"Soft-target distillation on {result['data']} ({len(rows)} seeds, {n} test images, "
        f"{result['machine']})",
        "",
        "| model | test errors (mean ± sd) | error rate % |",
        "|---|---|---|",
    ]
    for key in ("teacher", "scratch", "distilled"):
        errs = [r[key] for r in rows]
        lines.append(f"| {key} | {format_spread(errs, 1)} | {100 * spread(errs)[0] / n:.2f} |")
    gaps = [100 * r["gap_closed"] for r in rows]
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| gap closed % (mean ± sd) | {format_spread(gaps, 1)} (Hinton et al. on MNIST: 91) |",
        f"| distilled vs scratch over seeds (test errors) | {distilled_vs_scratch(rows)} |",
        f"| student speed-up at batch 1 | {result['speedup_batch1']:.1f}x |",
        f"| student speed-up at batch 256 | {result['speedup_batch256']:.1f}x |",
        f"| size ratio teacher/student | {result['size_ratio']:.2f}x |",
        f"| wall time | {result['wall_seconds']:.0f} s |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="student epochs (recipe default)")
    parser.add_argument("--fast", action="store_true", help="small subsets: a smoke run")
    args = parser.parse_args()
    result = run(args.data, args.seeds, args.fast, args.epochs)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"soft_targets_{args.data}{suffix}.json", report)


if __name__ == "__main__":
    main()
