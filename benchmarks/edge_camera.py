"""Benchmark: the edge-camera case, a DenseNet teacher distilled into SqueezeNet 1.1 on land-cover
patches of the Dubai aerial imagery, then the student in int8 and exported.

The case distilled a pre-trained DenseNet-201 into a SqueezeNet (about 5 % of its size) and
found that 15 more epochs with distillation raised the already trained student's accuracy by
2 points. Here, with kdlab.recipes.edge_camera (notebook 10's recipe):

1. the DenseNet teacher (cached) and its logits for the 8 flips/rotations of every training
   patch, computed once (exact: the augmentation draws one of those 8 views);
2. on validation data (Tile 1), seed 0: the further training's temperature for the
   distilled run and its learning rate for the labels-only run, 3 tries each (the same
   tuning budget for both);
3. per seed: the student trained on the labels alone ("pre-trained", cached), a student
   distilled from scratch with the same epochs, and the pre-trained student trained N more
   epochs with and without the teacher; all scored on the test tile (Tile 8), mean ± sd over
   the seeds, and kdlab.report.verdict (a difference within the seed spread is a tie);
4. the pre-trained + distilled student of the first seed in int8 (PT2E compiled by
   Inductor, FX static PTQ, FX QAT) next to the fp32 teacher and student: parameters, size,
   latency at batch 1 (the camera) and 32, test accuracy; its PT2E int8 program exported
   with torch.export (.pt2), loaded back and compared with PyTorch's outputs;
5. on a CUDA machine, fp32/fp16/bf16 latency on the GPU (not measured on a CPU-only one).

Saves ``benchmarks/results/edge_camera.json``, which notebook 10 shows when it exists.

    python benchmarks/edge_camera.py                # seeds 0 1 2, about 30 min on 2 busy cores
    python benchmarks/edge_camera.py --fast --seeds 0 1   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from kdlab import runtime
from kdlab.recipes.edge_camera import (
    EdgeCameraRecipe,
    accuracy,
    edge_camera_recipe,
    landcover_splits,
    pretrained_student,
    teacher_views,
    train_student,
    trained_teacher,
)
from kdlab.recipes.edge_deployment import (
    PT2E_EAGER,
    cost_table,
    export_int8,
    gpu_table,
    int8_students,
)
from kdlab.report import format_spread, save_results, spread, verdict

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = {
    "teacher": "DenseNet teacher",
    "alone": "student alone (pre-trained)",
    "scratch_kd": "student distilled from scratch",
    "further_labels": "pre-trained + N epochs, labels only",
    "further_kd": "pre-trained + N epochs, distilled",
}
TEMPERATURES = (1.0, 2.0, 4.0)  # tried for the distilled further training
LEARNING_RATES = (1e-4, 3e-4, 1e-3)  # tried for the labels-only further training


def tune(splits, recipe: EdgeCameraRecipe, teacher, views, pre) -> dict:
    """Validation accuracy of the further training of seed 0's pre-trained student: distilled
    at each temperature, labels-only at each learning rate; the best of each is kept."""
    tried: dict[str, dict[str, float]] = {"temperature": {}, "lr": {}}
    for t in TEMPERATURES:
        model, _ = train_student(
            splits, recipe, teacher=teacher, view_logits=views, start=pre, temperature=t
        )
        tried["temperature"][str(t)] = accuracy(model, splits.val)
    for lr in LEARNING_RATES:
        model, _ = train_student(splits, recipe, start=pre, lr=lr)
        tried["lr"][str(lr)] = accuracy(model, splits.val)
    best = {k: float(max(v, key=v.get)) for k, v in tried.items()}
    return {"tried": tried, **best}


def run(seeds: list[int], fast: bool, folder: str | None = None, tuning: bool = True) -> dict:
    start, load = time.perf_counter(), os.getloadavg()
    recipe = edge_camera_recipe(fast)
    splits = landcover_splits(recipe, folder)
    print(splits.describe())
    teacher, info = trained_teacher(splits, recipe)
    views = teacher_views(teacher, splits.train)
    teacher_accuracy = accuracy(teacher, splits.test)  # one teacher for every seed
    chosen = {"temperature": recipe.temperature, "lr": recipe.further_lr, "tried": None}
    if tuning:
        pre, _ = pretrained_student(splits, recipe, seed=seeds[0], verbose=False)
        chosen = tune(splits, recipe, teacher, views, pre)
        runtime.progress_print(f"chosen on validation: {chosen}")
    kd = {"teacher": teacher, "view_logits": views, "temperature": chosen["temperature"]}
    per_seed, students = [], {}
    for seed in runtime.progress_bar(seeds, desc="seeds", unit="seed"):
        t0 = time.perf_counter()
        pre, _ = pretrained_student(splits, recipe, seed=seed, verbose=False)
        models = {
            "teacher": teacher,
            "alone": pre,
            "scratch_kd": train_student(splits, recipe, **kd, seed=seed)[0],
            "further_labels": train_student(splits, recipe, start=pre, lr=chosen["lr"], seed=seed)[
                0
            ],
            "further_kd": train_student(splits, recipe, **kd, start=pre, seed=seed)[0],
        }
        row = {"seed": seed, "teacher": teacher_accuracy}
        row |= {name: accuracy(m, splits.test) for name, m in models.items() if name != "teacher"}
        row["seconds"] = time.perf_counter() - t0
        per_seed.append(row)
        students.setdefault("first", models)
        runtime.progress_print(
            f"seed {seed}: "
            + " ".join(f"{k} {row[k]:.4f}" for k in MODELS)
            + f" ({row['seconds']:.0f} s)"
        )
    first = students["first"]
    student = first["further_kd"]
    int8 = int8_students(student, splits, recipe, teacher=teacher, compile=not fast)
    deployed = {"teacher fp32": teacher, "student fp32": student, **int8}
    table = cost_table(
        deployed, splits.test, min_run_time=0.05 if fast else 0.5, rounds=1 if fast else 3
    )
    path = runtime.cache_dir() / "exports" / "edge_camera_student_int8.pt2"
    exported = export_int8(int8[PT2E_EAGER], student, splits.test, path)
    gpu = gpu_table({"teacher": teacher, "student": student}, recipe.patch)
    summary = {}
    for name in MODELS:
        mean, sd = spread([r[name] for r in per_seed])
        summary[name] = {"mean": mean, "sd": sd}
    t_row, s_row = table.loc["teacher fp32"], table.loc["student fp32"]
    return {
        "data": splits.name,
        "synthetic": splits.synthetic,
        "describe": splits.describe(),
        "majority_class_test_accuracy": float(
            splits.test.labels.bincount().max() / len(splits.test)
        ),
        "seeds": seeds,
        "settings": recipe.settings(),
        "teacher_status": info["status"],
        "chosen": chosen,
        "per_seed": per_seed,
        "summary": summary,
        "verdicts": verdicts(per_seed),
        "parameter_ratio": float(s_row["parameters"] / t_row["parameters"]),
        "size_ratio": float(t_row["size_MB"] / s_row["size_MB"]),
        "speedup_batch1": float(t_row["ms@1"] / s_row["ms@1"]),
        "speedup_batch32": float(t_row["ms@32"] / s_row["ms@32"]),
        "deployment": {
            name: {k: float(v) for k, v in row.items()} for name, row in table.iterrows()
        },
        "export": exported,
        "gpu": None if gpu is None else gpu.to_dict(orient="index"),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, load average "
        f"{load[0]:.1f} at the start",
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def verdicts(rows: list[dict]) -> dict[str, str]:
    """The case's questions over the seeds: better, worse, tie or one run."""

    def of(a: str, b: str) -> str:
        return verdict([r[a] for r in rows], [r[b] for r in rows])

    return {
        "further: distilled vs labels only": of("further_kd", "further_labels"),
        "from scratch: distilled vs alone": of("scratch_kd", "alone"),
        "further distilled vs the pre-trained student": of("further_kd", "alone"),
    }


def report(result: dict) -> str:
    rows, summary = result["per_seed"], result["summary"]
    s = result["settings"]
    lines = [
        f"Edge camera on {result['data']} ({len(rows)} seeds, {result['machine']})",
        result["describe"],
        f"majority class alone: {result['majority_class_test_accuracy']:.2%} of the test tile",
        f"chosen on validation: temperature {result['chosen']['temperature']:g} (distilled), "
        f"lr {result['chosen']['lr']:g} (labels only), tried {result['chosen']['tried']}",
        "",
        f"| model (N = {s['further_epochs']}) | test accuracy % (mean ± sd) |",
        "|---|---|",
    ]
    for name, label in MODELS.items():
        lines.append(f"| {label} | {format_spread([100 * r[name] for r in rows], 2)} |")
    gain = summary["further_kd"]["mean"] - summary["further_labels"]["mean"]
    lines += ["", "| comparison | verdict |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in result["verdicts"].items()]
    lines += [
        f"| further distillation minus labels only | {100 * gain:+.2f} points (case: +2) |",
        "",
        "| measure | value |",
        "|---|---|",
        f"| student parameters / teacher | {result['parameter_ratio']:.1%} (case: about 5 %) |",
        f"| size ratio teacher / student | {result['size_ratio']:.1f}x |",
        f"| student speed-up at batch 1 | {result['speedup_batch1']:.1f}x |",
        f"| student speed-up at batch 32 | {result['speedup_batch32']:.1f}x |",
        "",
        "| model | size MB | ms@1 | ms@32 | test accuracy % |",
        "|---|---|---|---|---|",
    ]
    for name, row in result["deployment"].items():
        lines.append(
            f"| {name} | {row['size_MB']:.3f} | {row['ms@1']:.2f} | {row['ms@32']:.2f} | "
            f"{row['accuracy %']:.2f} |"
        )
    e = result["export"]
    lines += [
        "",
        f"exported int8 program: {e['bytes'] / 1e6:.2f} MB (.pt2); largest |logit difference| "
        f"to PyTorch's int8 model {e['max_abs_diff']:.2g}, same prediction on "
        f"{e['agreement']:.2%} of the test patches ({e['agreement_fp32']:.2%} with fp32), "
        f"test accuracy {e['accuracy']:.2%}",
        "GPU: not measured (no CUDA device on this machine)"
        if result["gpu"] is None
        else "GPU ms: " + str(result["gpu"]),
        f"wall time {result['wall_seconds']:.0f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", default=None, help="folder of the Dubai aerial imagery")
    parser.add_argument("--fast", action="store_true", help="tiny settings: a smoke run")
    parser.add_argument("--no-tuning", action="store_true", help="keep the recipe's T and lr")
    args = parser.parse_args()
    result = run(args.seeds, args.fast, args.data, tuning=not args.no_tuning)
    save_results(result, RESULTS / f"edge_camera{'_fast' if args.fast else ''}.json", report)


if __name__ == "__main__":
    main()
