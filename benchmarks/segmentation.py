"""Benchmark: pixel-wise distillation of a U-Net on the Dubai aerial imagery, over seeds.

For each seed: the U-Net teacher (cached), the slim student (kdlab.segmentation.SlimUNet,
a quarter of the teacher's channels) trained from the labels alone, and the same student
distilled with pixel-wise KD (Liu et al. 2019), all scored on the held-out test tile
(Tile 8): mIoU and per-class IoU. Every model's cross-entropy weighs classes by median
frequency over the training patches (Eigen and Fergus 2015), so rare classes are learned.
The students train without augmentation, so the teacher's logits are computed once per
patch (exact under that condition) and a distilled epoch costs about what a scratch one does.
Then parameters, checkpoint size and latency at 256x256 (batch 1 and 8) measured side by
side, and the goals of the satellite track: student <= 25 % of the teacher's parameters,
>= 3x faster at batch 1, distilled student >= 95 % of the teacher's mIoU and above the
student from scratch. Saves ``benchmarks/results/segmentation.json``, which notebook 05
shows when it exists. Without the real data (``$KDLAB_DATA/dubai-aerial``) ``--fast``
runs on synthetic scenes and says so.

    python benchmarks/segmentation.py                  # seeds 0 1, quarter resolution
    python benchmarks/segmentation.py --seeds 0 1 2 --epochs 12 --train-patches 1000
    python benchmarks/segmentation.py --fast --seeds 0  # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from kdlab import bench, runtime
from kdlab.cache import cached_model
from kdlab.data import aerial, batches
from kdlab.data.aerial import CLASS_NAMES, NUM_CLASSES
from kdlab.distill import SegmentationDistiller, median_frequency_weights
from kdlab.metrics import evaluate_segmentation
from kdlab.models import SlimUNet, UNet, logits_of
from kdlab.report import save_results

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("teacher", "scratch", "distilled")
GOALS = {"parameter_ratio_max": 0.25, "speedup_batch1_min": 3.0, "retained_miou_min": 0.95}


def settings(fast: bool, epochs: int | None, train_patches: int | None) -> dict:
    """The data and training settings of a run (fast: tiny, for a smoke test). ``epochs``
    is the teacher's; the students train twice as many (their steps are much cheaper)."""
    epochs = epochs or (1 if fast else 8)
    return {
        "scale": 0.25,
        "patch": 64,
        "train_patches": train_patches or (16 if fast else 640),
        "per_tile": 1 if fast else None,
        "teacher_base": 16,
        "student_base": 4,
        "epochs": epochs,
        "student_epochs": 2 * epochs,
        "batch_size": 8,
        "lr": 3e-3,
        "student_lr": 1e-2,
        "lr_schedule": "cosine",
        "class_weights": "median frequency",
        "temperature": 2.0,
        "alpha": 0.5,
        "latency_size": 64 if fast else 256,
    }


def train_models(splits: aerial.AerialSplits, cfg: dict, seed: int) -> dict:
    """Teacher (cached), student from scratch and distilled student for one seed."""
    train = splits.train.subset(cfg["train_patches"], seed=seed)
    x_val, y_val = splits.val.tensors()
    val = batches(x_val, y_val, batch_size=16)
    weights = median_frequency_weights(train.labels, NUM_CLASSES)
    common = {
        "num_classes": NUM_CLASSES,
        "lr_schedule": cfg["lr_schedule"],
        "class_weights": weights,
    }

    def train_teacher(model):
        trainer = SegmentationDistiller(model, None, seed=seed, lr=cfg["lr"], **common)
        data = train.loader(cfg["batch_size"], shuffle=True, seed=seed, augment=True)
        return trainer.fit(data, cfg["epochs"], val, progress=False).to_dict()

    config = {"data": splits.name, "tiles": splits.tiles, "seed": seed, **cfg}
    teacher, info = cached_model(
        "aerial-unet-teacher",
        config,
        lambda: UNet(3, NUM_CLASSES, base=cfg["teacher_base"]),
        train_teacher,
        verbose=False,
    )
    x, y = train.tensors()
    soft = logits_of(teacher, x, batch_size=16)
    students = {}
    for name, with_teacher in (("scratch", False), ("distilled", True)):
        runtime.seed_everything(seed)
        student = SlimUNet(3, NUM_CLASSES, base=cfg["student_base"])
        kd = {"temperature": cfg["temperature"], "alpha": cfg["alpha"]} if with_teacher else {}
        teacher_or_none = teacher if with_teacher else None
        trainer = SegmentationDistiller(
            student, teacher_or_none, seed=seed, lr=cfg["student_lr"], **common, **kd
        )
        data = batches(
            x,
            y,
            *((soft,) if with_teacher else ()),
            batch_size=cfg["batch_size"],
            shuffle=True,
            seed=seed,
        )
        trainer.fit(data, cfg["student_epochs"], val, progress=False)
        students[name] = student.eval()
    return {
        "teacher": teacher,
        **students,
        "teacher_status": info["status"],
        "class_weights": dict(zip(CLASS_NAMES, weights.tolist(), strict=True)),
    }


def run(
    seeds: list[int],
    fast: bool,
    epochs: int | None = None,
    train_patches: int | None = None,
    folder: str | None = None,
) -> dict:
    start = time.perf_counter()
    cfg = settings(fast, epochs, train_patches)
    splits = aerial.load_aerial(
        folder,
        patch_size=cfg["patch"],
        scale=cfg["scale"],
        per_tile=cfg["per_tile"],
        fast=fast,
    )
    x_test, y_test = splits.test.tensors()
    test = batches(x_test, y_test, batch_size=16)
    per_seed = []
    for seed in seeds:
        t0 = time.perf_counter()
        models = train_models(splits, cfg, seed)
        row: dict = {"seed": seed, "teacher_status": models["teacher_status"]}
        row["class_weights"] = models["class_weights"]
        for name in MODELS:
            scores = evaluate_segmentation(models[name], test, NUM_CLASSES)
            row[name] = scores["miou"]
            row[f"{name}_iou"] = dict(zip(CLASS_NAMES, scores["iou"].tolist(), strict=True))
        row["seconds"] = time.perf_counter() - t0
        per_seed.append(row)
        print(
            f"seed {seed}: "
            + " ".join(f"{m} {row[m]:.3f}" for m in MODELS)
            + f" ({row['seconds']:.0f} s)",
            flush=True,
        )
    costs = {}
    side = cfg["latency_size"]
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
        values = [r[name] for r in per_seed]
        summary[name] = {
            "mIoU mean": statistics.fmean(values),
            "mIoU sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            **costs[name],
        }
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
        "distilled above scratch": student["mIoU mean"] > summary["scratch"]["mIoU mean"],
    }
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "test_tiles": splits.tiles["test"],
        "seeds": seeds,
        "settings": cfg,
        "per_seed": per_seed,
        "summary": summary,
        **ratios,
        "goals": goals,
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.3f} ± {sd:.3f}"


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
            f"| {name} | {spread([r[name] for r in rows])} | {s['parameters']:,} | "
            f"{s['size_MB']:.3f} | {s['ms@1']:.1f} | {s['ms@8']:.1f} |"
        )
    lines += ["", "| class | " + " | ".join(MODELS) + " |", "|---|---|---|---|"]
    for c in CLASS_NAMES:
        cells = [f"{statistics.fmean(r[f'{m}_iou'][c] for r in rows):.3f}" for m in MODELS]
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
