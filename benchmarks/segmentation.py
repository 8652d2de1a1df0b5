"""Benchmark: pixel-wise distillation of a U-Net on the Dubai aerial imagery, over seeds.

For each seed: the U-Net teacher (cached), the slim student (kdlab.models.SlimUNet,
a quarter of the teacher's channels) trained from the labels alone, and the same student
distilled with pixel-wise KD (Liu et al. 2019), all scored on the held-out test tile
(Tile 8): mIoU and per-class IoU. The data, the recipes, the cached teacher and the student
training are notebook 05's, from kdlab.recipes.segmentation. Every model's cross-entropy
weighs classes by median frequency over the training patches (Eigen and Fergus 2015), so
rare classes are learned. The students train without augmentation, so the teacher's logits
are computed once per patch (exact under that condition) and a distilled epoch costs about
what a scratch one does. Then parameters, checkpoint size and latency at 256x256 (batch 1
and 8) measured side by side, and the goals of the satellite track: student <= 25 % of the
teacher's parameters, >= 3x faster at batch 1, distilled student >= 95 % of the teacher's
mIoU and above the student from scratch by more than the seed spread (kdlab.report.verdict:
a difference within it is a tie, and one seed cannot meet this goal). Saves
``benchmarks/results/segmentation.json``, which notebook 05 shows when it exists. Without
the real data (``$KDLAB_DATA/dubai-aerial``) ``--fast`` runs on synthetic scenes and says so.

    python benchmarks/segmentation.py                  # seeds 0 1, quarter resolution
    python benchmarks/segmentation.py --seeds 0 1 2 --epochs 12 --train-patches 1000
    python benchmarks/segmentation.py --fast --seeds 0  # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from kdlab import bench, runtime
from kdlab.data import AerialSplits, batches
from kdlab.data.aerial import CLASS_NAMES, NUM_CLASSES
from kdlab.metrics import evaluate_segmentation
from kdlab.recipes.segmentation import (
    SegmentationRecipe,
    aerial_splits,
    segmentation_recipe,
    train_student,
    trained_teacher,
    training_patches,
)
from kdlab.report import format_spread, save_results, spread, verdict

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("teacher", "scratch", "distilled")
GOALS = {"parameter_ratio_max": 0.25, "speedup_batch1_min": 3.0, "retained_miou_min": 0.95}


def recipe_for(fast: bool, epochs: int | None, train_patches: int | None) -> SegmentationRecipe:
    """The track's standard recipe (kdlab.recipes.segmentation; fast: tiny, for a smoke
    test) with the teacher's ``epochs`` (the students train twice as many) and the number
    of training patches changed where given."""
    changes = {"epochs": epochs, "train_patches": train_patches}
    return segmentation_recipe(fast, **{k: v for k, v in changes.items() if v is not None})


def train_models(splits: AerialSplits, recipe: SegmentationRecipe, seed: int) -> dict:
    """Teacher (cached), student from scratch and distilled student for one seed."""
    train = training_patches(splits, recipe, seed)
    val = batches(*splits.val.tensors(), batch_size=16)
    teacher, info = trained_teacher(splits, train, val, recipe, seed=seed)
    scratch, _ = train_student(train, val, recipe, seed=seed)
    distilled, _ = train_student(train, val, recipe, teacher=teacher, seed=seed)
    weights = recipe.weights(train)
    return {
        "teacher": teacher,
        "scratch": scratch,
        "distilled": distilled,
        "teacher_status": info["status"],
        "class_weights": None
        if weights is None
        else dict(zip(CLASS_NAMES, weights.tolist(), strict=True)),
    }


def run(
    seeds: list[int],
    fast: bool,
    epochs: int | None = None,
    train_patches: int | None = None,
    folder: str | None = None,
) -> dict:
    start = time.perf_counter()
    recipe = recipe_for(fast, epochs, train_patches)
    splits = aerial_splits(recipe, folder)
    x_test, y_test = splits.test.tensors()
    test = batches(x_test, y_test, batch_size=16)
    per_seed = []
    # One bar over the seeds; each training shows its own below it while it runs.
    for seed in runtime.progress_bar(seeds, desc="seeds", unit="seed"):
        t0 = time.perf_counter()
        models = train_models(splits, recipe, seed)
        row: dict = {"seed": seed, "teacher_status": models["teacher_status"]}
        row["class_weights"] = models["class_weights"]
        for name in MODELS:
            scores = evaluate_segmentation(models[name], test, NUM_CLASSES)
            row[name] = scores["miou"]
            row[f"{name}_iou"] = dict(zip(CLASS_NAMES, scores["iou"].tolist(), strict=True))
        row["seconds"] = time.perf_counter() - t0
        per_seed.append(row)
        runtime.progress_print(
            f"seed {seed}: "
            + " ".join(f"{m} {row[m]:.3f}" for m in MODELS)
            + f" ({row['seconds']:.0f} s)"
        )
    costs = {}
    side = recipe.latency_size
    for name in MODELS:
        model = models[name]
        costs[name] = {
            "parameters": bench.count_parameters(model),
            "size_MB": bench.serialized_size(model) / 1e6,
            **{
                f"ms@{b}": bench.latency(
                    model, (3, side, side), b, min_run_time=0.05 if fast else 1.0
                ).median_ms
                for b in (1, 8)
            },
        }
    summary = {}
    for name in MODELS:
        mean, sd = spread([r[name] for r in per_seed])
        summary[name] = {"mIoU mean": mean, "mIoU sd": sd, **costs[name]}
    teacher, student = summary["teacher"], summary["distilled"]
    ratios = {
        "parameter_ratio": student["parameters"] / teacher["parameters"],
        "size_ratio": teacher["size_MB"] / student["size_MB"],
        "speedup_batch1": teacher["ms@1"] / student["ms@1"],
        "speedup_batch8": teacher["ms@8"] / student["ms@8"],
        "retained_miou": student["mIoU mean"] / teacher["mIoU mean"]
        if teacher["mIoU mean"] > 0
        else float("nan"),
    }
    goals = {
        "student <= 25% of teacher parameters": ratios["parameter_ratio"]
        <= GOALS["parameter_ratio_max"],
        "student >= 3x faster at batch 1": ratios["speedup_batch1"] >= GOALS["speedup_batch1_min"],
        "distilled >= 95% of teacher mIoU": ratios["retained_miou"] >= GOALS["retained_miou_min"],
        # above by more than the seed spread: a difference within it is a tie
        "distilled above scratch": distilled_vs_scratch(per_seed) == "better",
    }
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "test_tiles": splits.tiles["test"],
        "seeds": seeds,
        "settings": recipe.settings(),
        "per_seed": per_seed,
        "summary": summary,
        **ratios,
        "goals": goals,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def distilled_vs_scratch(rows: list[dict]) -> str:
    """The distilled student's test mIoU against the scratch student's over the seeds:
    better, worse, tie (within the seed spread) or one run."""
    return verdict([r["distilled"] for r in rows], [r["scratch"] for r in rows])


def report(result: dict) -> str:
    rows = result["per_seed"]
    side = result["settings"]["latency_size"]
    lines = [
        f"Pixel-wise distillation on {result['data']} (test tiles {result['test_tiles']}, "
        f"{len(rows)} seeds, {result['machine']})",
        "",
        f"| model | test mIoU (mean ± sd) | parameters | size MB | ms@1 ({side}px) | ms@8 |",
        "|---|---|---|---|---|---|",
    ]
    for name in MODELS:
        s = result["summary"][name]
        lines.append(
            f"| {name} | {format_spread([r[name] for r in rows], 3)} | {s['parameters']:,} | "
            f"{s['size_MB']:.3f} | {s['ms@1']:.1f} | {s['ms@8']:.1f} |"
        )
    lines += ["", "| class | " + " | ".join(MODELS) + " |", "|---|---|---|---|"]
    for c in CLASS_NAMES:
        cells = [f"{spread([r[f'{m}_iou'][c] for r in rows])[0]:.3f}" for m in MODELS]
        lines.append(f"| {c} IoU | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| measure | value |",
        "|---|---|",
        f"| student parameters / teacher | {result['parameter_ratio']:.1%} |",
        f"| student speed-up at batch 1 | {result['speedup_batch1']:.1f}x |",
        f"| student speed-up at batch 8 | {result['speedup_batch8']:.1f}x |",
        f"| size ratio teacher/student | {result['size_ratio']:.1f}x |",
        f"| distilled mIoU / teacher mIoU | {result['retained_miou']:.1%} |",
        f"| distilled vs scratch over seeds | {distilled_vs_scratch(rows)} |",
        f"| wall time | {result['wall_seconds']:.0f} s |",
    ]
    lines += [
        f"| goal: {goal} | {'met' if ok else 'NOT met'} |" for goal, ok in result["goals"].items()
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=None, help="teacher epochs (students 2x)")
    parser.add_argument("--train-patches", type=int, default=None, help="training patches")
    parser.add_argument("--data", default=None, help="folder of the Dubai aerial imagery")
    parser.add_argument("--fast", action="store_true", help="tiny settings: a smoke run")
    args = parser.parse_args()
    result = run(args.seeds, args.fast, args.epochs, args.train_patches, args.data)
    save_results(result, RESULTS / f"segmentation{'_fast' if args.fast else ''}.json", report)


if __name__ == "__main__":
    main()
