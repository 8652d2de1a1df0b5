"""The segmentation benchmark runs end to end in fast mode and reports its own numbers."""

import importlib.util
import os
import statistics
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def segmentation():
    spec = importlib.util.spec_from_file_location(
        "bench_segmentation", BENCHMARKS / "segmentation.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_segmentation_benchmark_runs_and_reports_its_own_numbers(segmentation):
    result = segmentation.run([0, 1], fast=True, epochs=1, train_patches=8)
    rows = result["per_seed"]
    assert [r["seed"] for r in rows] == [0, 1]
    summary = result["summary"]
    for name in ("teacher", "scratch", "distilled"):
        values = [r[name] for r in rows]
        assert all(0 <= v <= 1 for v in values)
        assert summary[name]["mIoU mean"] == pytest.approx(statistics.fmean(values))
        assert summary[name]["mIoU sd"] == pytest.approx(statistics.stdev(values))
        for r in rows:  # mIoU is the mean of the per-class IoUs that are not NaN
            ious = [v for v in r[f"{name}_iou"].values() if v == v]
            assert r[name] == pytest.approx(statistics.fmean(ious))
    # one teacher for every seed: the seeds vary the students
    assert result["teacher_seed"] == 0 and rows[0]["teacher"] == rows[1]["teacher"]
    assert rows[0]["teacher_iou"] == rows[1]["teacher_iou"]
    assert all(0 <= r[f"{m}_val"] <= 1 for r in rows for m in ("teacher", "scratch", "distilled"))
    teacher, student = summary["teacher"], summary["distilled"]
    assert result["parameter_ratio"] == student["parameters"] / teacher["parameters"] < 0.25
    assert result["speedup_batch1"] == teacher["ms@1"] / student["ms@1"]
    assert result["goals"]["student <= 25% of teacher parameters"]
    # above scratch only by more than the seed spread (a difference within it is a tie)
    distilled = [r["distilled"] for r in rows]
    scratch = [r["scratch"] for r in rows]
    margin = max(statistics.stdev(distilled), statistics.stdev(scratch))
    gain = statistics.fmean(distilled) - statistics.fmean(scratch)
    assert result["goals"]["distilled above scratch"] == (gain > margin)
    assert result["settings"] == segmentation.recipe_for(True, 1, 8).settings()
    assert result["settings"]["student_epochs"] == 2 * result["settings"]["epochs"] == 2
    text = segmentation.report(result)
    mean_teacher = statistics.fmean(r["teacher"] for r in rows)
    assert f"| teacher | {mean_teacher:.3f} ±" in text
    assert f"| student parameters / teacher | {result['parameter_ratio']:.1%} |" in text
    expected = "better" if gain > margin else "worse" if gain < -margin else "tie"
    assert f"| distilled vs scratch over seeds | {expected} |" in text


def test_recipe_changes_from_the_command_line(segmentation):
    changes = segmentation.parse_changes(
        ["alpha=0.1", "student_augment=true", "lr_schedule=cosine"]
    )
    assert changes == {"alpha": 0.1, "student_augment": True, "lr_schedule": "cosine"}
    recipe = segmentation.recipe_for(True, None, None, changes)
    assert (recipe.alpha, recipe.student_augment) == (0.1, True)
    with pytest.raises(ValueError, match="--set takes name=value"):
        segmentation.parse_changes(["alpha"])
    with pytest.raises(ValueError, match="unknown recipe settings"):
        segmentation.recipe_for(True, None, None, {"alpah": 0.1})


def test_jobs_run_in_worker_processes_in_order(segmentation):
    here = os.getpid()
    assert segmentation._in_parallel(_pid_and_square, [1, 2, 3], 1) == [
        (here, n * n) for n in (1, 2, 3)
    ]
    done = segmentation._in_parallel(_pid_and_square, [1, 2, 3, 4], 2)
    assert [square for _, square in done] == [1, 4, 9, 16]
    assert here not in {pid for pid, _ in done}


def _pid_and_square(n):
    return os.getpid(), n * n


def test_one_seed_cannot_show_the_distilled_student_above_scratch(segmentation):
    rows = [{"seed": 0, "distilled": 0.5, "scratch": 0.1}]
    assert segmentation.distilled_vs_scratch(rows) == "one run"
