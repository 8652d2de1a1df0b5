"""The segmentation benchmark runs end to end in fast mode and reports its own numbers."""

import importlib.util
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
    teacher, student = summary["teacher"], summary["distilled"]
    assert result["parameter_ratio"] == student["parameters"] / teacher["parameters"] < 0.25
    assert result["speedup_batch1"] == teacher["ms@1"] / student["ms@1"]
    assert result["goals"]["student <= 25% of teacher parameters"]
    assert result["goals"]["distilled above scratch"] == (
        student["mIoU mean"] > summary["scratch"]["mIoU mean"]
    )
    text = segmentation.report(result)
    mean_teacher = statistics.fmean(r["teacher"] for r in rows)
    assert f"| teacher | {mean_teacher:.3f} ±" in text
    assert f"| student parameters / teacher | {result['parameter_ratio']:.1%} |" in text
