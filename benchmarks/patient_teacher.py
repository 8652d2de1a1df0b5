"""Benchmark: a good teacher is patient and consistent (Beyer et al. 2022), on a small
transfer set of an MNIST-family data set, over several seeds and schedule lengths.

The MLP student of notebook 02 is distilled from the course's cached CNN teacher, without
labels (KL at T = 1), on random views of ``--n-train`` training images, with the teacher's
targets made four ways (kdlab.distill.views.MODES: a fixed precomputed teacher,
independent views, consistent views, consistent views + mixup), each at every schedule
length in ``--epochs`` (a full cosine schedule each); the set-up and the distillation are
notebook 08's, from kdlab.recipes.patient_teacher. Prints test accuracy (mean ± sd over
seeds) per mode and schedule, the ranking per schedule, each mode against the fixed teacher
(better or worse by more than the seed spread, else a tie: kdlab.report.verdict) and the
seconds per epoch relative to the fixed teacher; saves them to
``benchmarks/results/patient_teacher_<data>.json``, which notebook 08 shows when it exists.

    python benchmarks/patient_teacher.py         # 2,000 images, seeds 0 1 2, 4/16/64 epochs
    python benchmarks/patient_teacher.py --fast --seeds 0 --epochs 1 2   # a smoke run
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from kdlab import runtime
from kdlab.distill.views import MODES
from kdlab.recipes.patient_teacher import distil_and_score, transfer_setup
from kdlab.report import format_spread, save_results, spread, verdict

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "fixed"  # the precomputed teacher: the cheap shortcut the other modes are held to


def run(data: str, seeds: list[int], schedules: list[int], n_train: int, fast: bool) -> dict:
    start = time.perf_counter()
    runs = []
    # One bar over the runs, weighed by their epochs; each run shows its own bar below it.
    bar = runtime.progress_bar(
        total=len(seeds) * len(MODES) * sum(schedules), desc="runs", unit="epoch"
    )
    for seed in seeds:
        setup = transfer_setup(data, n_train, fast=fast, seed=seed)
        for epochs in schedules:
            for mode in MODES:
                scored = distil_and_score(setup, mode, epochs, seed=seed)
                bar.update(epochs)
                runs.append(
                    {
                        "seed": seed,
                        "epochs": epochs,
                        "mode": mode,
                        "test_accuracy": scored["test_accuracy"],
                        "val_accuracy": scored["val_accuracy"],
                        "seconds_per_epoch": scored["seconds"] / epochs,
                    }
                )
                runtime.progress_print(
                    f"seed {seed} {epochs:>4} epochs {mode:<18} "
                    f"test {runs[-1]['test_accuracy']:.2f} % ({scored['seconds']:.0f} s)"
                )
    bar.close()
    summary = []
    for mode in MODES:
        row: dict[str, object] = {"mode": mode}
        for epochs in schedules:
            mean, sd = spread(accuracies(runs, mode, epochs))
            row[f"{epochs} epochs: mean %"] = mean
            row[f"{epochs} epochs: sd"] = sd
        summary.append(row)
    return {
        "data": setup.splits.name,
        "synthetic": setup.splits.synthetic,
        "seeds": seeds,
        "schedules": schedules,
        "n_train": len(setup.train),
        "teacher_test_accuracy": 100 * setup.teacher_accuracy,
        "teacher_status": setup.teacher_info["status"],
        "runs": runs,
        "summary": summary,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def accuracies(runs: list[dict], mode: str, epochs: int) -> list[float]:
    """Test accuracies (%) of ``mode`` at ``epochs``, one per seed."""
    return [r["test_accuracy"] for r in runs if r["mode"] == mode and r["epochs"] == epochs]


def against_baseline(runs: list[dict], epochs: int) -> dict[str, str]:
    """Each other mode's test accuracy at ``epochs`` against the fixed teacher's over the
    seeds: better, worse, tie (a difference within the seed spread) or one run."""
    baseline = accuracies(runs, BASELINE, epochs)
    return {
        mode: verdict(accuracies(runs, mode, epochs), baseline)
        for mode in MODES
        if mode != BASELINE
    }


def ranking(result: dict, epochs: int) -> list[str]:
    """Modes from best to worst mean test accuracy at ``epochs``."""
    key = f"{epochs} epochs: mean %"
    return [row["mode"] for row in sorted(result["summary"], key=lambda r: -r[key])]


def report(result: dict) -> str:
    schedules, runs = result["schedules"], result["runs"]
    lines = [
        f"Patient and consistent teacher on {result['data']} ({result['n_train']} transfer "
        f"images, {len(result['seeds'])} seeds, teacher {result['teacher_test_accuracy']:.2f} %, "
        f"{result['machine']})",
        "",
        "| mode | "
        + " | ".join(f"{e} epochs: test % (mean ± sd)" for e in schedules)
        + " | s/epoch vs fixed |",
        "|---|" + "---|" * len(schedules) + "---|",
    ]

    def per_epoch(mode: str) -> float:
        return spread([r["seconds_per_epoch"] for r in runs if r["mode"] == mode])[0]

    for mode in MODES:
        cells = [format_spread(accuracies(runs, mode, e), 2) for e in schedules]
        ratio = per_epoch(mode) / per_epoch(BASELINE)
        lines.append(f"| {mode} | " + " | ".join(cells) + f" | {ratio:.1f}x |")
    lines.append("")
    for epochs in schedules:
        lines.append(f"- ranking at {epochs} epochs: " + " > ".join(ranking(result, epochs)))
    for epochs in schedules:
        said = ", ".join(f"{m} {v}" for m, v in against_baseline(runs, epochs).items())
        lines.append(f"- against the {BASELINE} teacher at {epochs} epochs: {said}")
    first, last = ranking(result, schedules[0]), ranking(result, schedules[-1])
    changed = "changes" if first != last else "does not change"
    lines.append(f"- the ranking {changed} between {schedules[0]} and {schedules[-1]} epochs")
    lines.append(f"- wall time {result['wall_seconds']:.0f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--n-train", type=int, default=2000, help="transfer-set size")
    parser.add_argument("--fast", action="store_true", help="small subsets: a smoke run")
    args = parser.parse_args()
    n_train = min(args.n_train, 600) if args.fast else args.n_train
    result = run(args.data, args.seeds, sorted(args.epochs), n_train, args.fast)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"patient_teacher_{args.data}{suffix}.json", report)


if __name__ == "__main__":
    main()
