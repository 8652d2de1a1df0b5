"""Benchmark: pixel-wise distillation of a U-Net on the Dubai aerial imagery, over seeds.

One U-Net teacher (trained once with ``--teacher-seed``, cached), then for each seed the
slim student (kdlab.models.SlimUNet, a quarter of the teacher's channels) trained from the
labels alone and the same student distilled with pixel-wise KD (Liu et al. 2019), all
scored on the held-out test tile (Tile 8): mIoU and per-class IoU, with each model's last
validation mIoU (Tile 1, what settings are chosen on). The data, the recipes, the cached
teacher and the student training are notebook 05's, from kdlab.recipes.segmentation; both
students see the same patches, views, epochs and settings. Every model's cross-entropy
weighs classes by median frequency over the training patches (Eigen and Fergus 2015). The
teacher's targets are computed once (its logits averaged over the 8 symmetries of the square
when the students train on those views, so turning a patch's map is exact). Then
parameters, checkpoint size and latency at 256x256 (batch 1 and 8) measured side by side,
and the goals of the satellite track: student <= 25 % of the teacher's parameters, >= 3x
faster at batch 1, distilled student >= 95 % of the teacher's mIoU and above the student
from scratch by more than the seed spread (kdlab.report.verdict: a difference within it is
a tie, and one seed cannot meet this goal). Saves ``benchmarks/results/segmentation.json``,
which notebook 05 shows when it exists. Without the real data (``$KDLAB_DATA/dubai-aerial``)
``--fast`` runs on synthetic scenes and says so.

    python benchmarks/segmentation.py --seeds 0 1 2     # the standard recipe
    python benchmarks/segmentation.py --seeds 0 1 2 --set student_augment=false alpha=0.1
    python benchmarks/segmentation.py --fast --seeds 0  # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import time
from concurrent.futures import ProcessPoolExecutor
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
    teacher_targets,
    train_student,
    trained_teacher,
    training_patches,
)
from kdlab.report import format_spread, save_results, spread, verdict

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("teacher", "scratch", "distilled")
GOALS = {"parameter_ratio_max": 0.25, "speedup_batch1_min": 3.0, "retained_miou_min": 0.95}


def recipe_for(
    fast: bool, epochs: int | None, train_patches: int | None, changes: dict | None = None
) -> SegmentationRecipe:
    """The track's standard recipe (kdlab.recipes.segmentation; fast: tiny, for a smoke
    test) with the teacher's ``epochs`` (the students train twice as many), the number
    of training patches and any other ``changes`` (``--set name=value``) where given."""
    given = {"epochs": epochs, "train_patches": train_patches}
    given = {k: v for k, v in given.items() if v is not None}
    return segmentation_recipe(fast, **given, **(changes or {}))


def parse_changes(pairs: list[str]) -> dict:
    """``["alpha=0.1", "student_augment=true"]`` to ``{"alpha": 0.1, "student_augment": True}``
    (values read as JSON, else kept as text)."""
    changes = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"--set takes name=value, got {pair!r} (e.g. --set alpha=0.1)")
        try:
            changes[name] = json.loads(text)
        except json.JSONDecodeError:
            changes[name] = text
    return changes


# What the worker processes of --jobs read (inherited when they fork, never pickled).
_SHARED: dict = {}


def _in_parallel(fn, jobs: list, workers: int) -> list:
    """``[fn(job) for job in jobs]``, in ``workers`` forked processes of one thread each
    when ``workers > 1`` (a CPU with cores to spare: the seeds are independent)."""
    if workers <= 1:
        return [fn(job) for job in jobs]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, context, torch.set_num_threads, (1,)) as pool:
        return list(pool.map(fn, jobs))


def _targets(part: slice) -> torch.Tensor:
    return teacher_targets(_SHARED["teacher"], _SHARED["x"][part], _SHARED["recipe"])


def _student(job: tuple[int, str]) -> dict:
    seed, name = job
    t0 = time.perf_counter()
    kd = {"teacher": _SHARED["teacher"], "teacher_logits": _SHARED["logits"]}
    model, history = train_student(
        _SHARED["train"],
        _SHARED["val"],
        _SHARED["recipe"],
        seed=seed,
        progress=None if _SHARED["workers"] == 1 else False,
        **(kd if name == "distilled" else {}),
    )
    return {"model": model, "val": history.last["val_miou"], "seconds": time.perf_counter() - t0}


def train_models(
    splits: AerialSplits,
    recipe: SegmentationRecipe,
    seeds: list[int],
    teacher_seed: int,
    workers: int = 1,
) -> tuple[dict, list[dict]]:
    """The teacher (trained once with ``teacher_seed``, cached), then for each seed the
    student from scratch and the distilled student, on the teacher's training patches;
    the teacher's targets and the students in ``workers`` processes."""
    train = training_patches(splits, recipe, teacher_seed)
    val = batches(*splits.val.tensors(), batch_size=16)
    teacher, info = trained_teacher(splits, train, val, recipe, seed=teacher_seed)
    x, _ = train.tensors()
    _SHARED.update(teacher=teacher, x=x, recipe=recipe, train=train, val=val, workers=workers)
    # once for every seed: the teacher is frozen, its targets never change
    step = -(-len(x) // workers)
    parts = [slice(i, i + step) for i in range(0, len(x), step)]
    _SHARED["logits"] = torch.cat(_in_parallel(_targets, parts, workers))
    weights = recipe.weights(train)
    shared = {
        "teacher": teacher,
        "teacher_status": info["status"],
        "teacher_val": info["summary"]["epochs"][-1]["val_miou"],
        "class_weights": None
        if weights is None
        else dict(zip(CLASS_NAMES, weights.tolist(), strict=True)),
    }
    jobs = [(seed, name) for seed in seeds for name in ("scratch", "distilled")]
    done = dict(zip(jobs, _in_parallel(_student, jobs, workers), strict=True))
    _SHARED.clear()
    students = []
    for seed in seeds:
        pair = {name: done[seed, name] for name in ("scratch", "distilled")}
        students.append(
            {
                "seed": seed,
                **{name: trained["model"] for name, trained in pair.items()},
                **{f"{name}_val": trained["val"] for name, trained in pair.items()},
                "seconds": sum(trained["seconds"] for trained in pair.values()),
            }
        )
    return shared, students


def run(
    seeds: list[int],
    fast: bool,
    epochs: int | None = None,
    train_patches: int | None = None,
    folder: str | None = None,
    changes: dict | None = None,
    teacher_seed: int = 0,
    workers: int = 1,
) -> dict:
    start = time.perf_counter()
    recipe = recipe_for(fast, epochs, train_patches, changes)
    splits = aerial_splits(recipe, folder)
    x_test, y_test = splits.test.tensors()
    test = batches(x_test, y_test, batch_size=16)
    shared, students = train_models(splits, recipe, seeds, teacher_seed, workers)
    teacher_scores = evaluate_segmentation(shared["teacher"], test, NUM_CLASSES)
    per_seed = []
    for trained in students:
        row: dict = {"seed": trained["seed"], "teacher_status": shared["teacher_status"]}
        row["class_weights"] = shared["class_weights"]
        for name in MODELS:
            model = shared["teacher"] if name == "teacher" else trained[name]
            scores = (
                teacher_scores
                if name == "teacher"
                else evaluate_segmentation(model, test, NUM_CLASSES)
            )
            row[name] = scores["miou"]
            row[f"{name}_iou"] = dict(zip(CLASS_NAMES, scores["iou"].tolist(), strict=True))
            row[f"{name}_val"] = (
                shared["teacher_val"] if name == "teacher" else trained[f"{name}_val"]
            )
        row["seconds"] = trained["seconds"]
        per_seed.append(row)
        runtime.progress_print(
            f"seed {row['seed']}: "
            + " ".join(f"{m} {row[m]:.3f} (val {row[m + '_val']:.3f})" for m in MODELS)
            + f" ({row['seconds']:.0f} s)"
        )
    models = {"teacher": shared["teacher"], **students[-1]}
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
        "teacher_seed": teacher_seed,
        "settings": recipe.settings(),
        "per_seed": per_seed,
        "summary": summary,
        **ratios,
        "goals": goals,
        "threads": torch.get_num_threads(),
        "workers": workers,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"
        + (f", students in {workers} processes of 1 thread" if workers > 1 else ""),
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
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="teacher epochs (students 2x)")
    parser.add_argument("--train-patches", type=int, default=None, help="training patches")
    parser.add_argument("--data", default=None, help="folder of the Dubai aerial imagery")
    parser.add_argument("--fast", action="store_true", help="tiny settings: a smoke run")
    parser.add_argument("--teacher-seed", type=int, default=0, help="the one teacher's seed")
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes of one thread for the students (CPU)"
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="NAME=VALUE", help="other recipe settings"
    )
    args = parser.parse_args()
    changes = parse_changes(args.set)
    result = run(
        args.seeds,
        args.fast,
        args.epochs,
        args.train_patches,
        args.data,
        changes,
        args.teacher_seed,
        args.jobs,
    )
    save_results(result, RESULTS / f"segmentation{'_fast' if args.fast else ''}.json", report)


if __name__ == "__main__":
    main()
