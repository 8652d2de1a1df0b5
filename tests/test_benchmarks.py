"""The benchmarks run end to end in fast mode and their reports hold what they measured."""

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_soft_targets_benchmark_runs_and_reports_its_own_numbers():
    soft_targets = load("soft_targets")
    result = soft_targets.run("fashion-mnist", [0, 1], fast=True, epochs=1)
    rows = result["per_seed"]
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        assert all(isinstance(r[k], int) for k in ("teacher", "scratch", "distilled"))
        expected = (r["scratch"] - r["distilled"]) / max(r["scratch"] - r["teacher"], 1)
        assert r["gap_closed"] == expected
    assert result["speedup_batch256"] > 0 and result["size_ratio"] > 1
    text = soft_targets.report(result)
    mean_teacher = sum(r["teacher"] for r in rows) / len(rows)
    mean_gap = 100 * sum(r["gap_closed"] for r in rows) / len(rows)
    assert f"| teacher | {mean_teacher:.1f} ±" in text
    assert f"| gap closed % (mean ± sd) | {mean_gap:.1f} ±" in text
    said = soft_targets.distilled_vs_scratch(rows)
    assert f"| distilled vs scratch over seeds (test errors) | {said} |" in text


def test_soft_targets_verdict_counts_fewer_errors_as_better():
    soft_targets = load("soft_targets")
    rows = [{"scratch": s, "distilled": d} for s, d in ((150, 120), (160, 118), (155, 125))]
    assert soft_targets.distilled_vs_scratch(rows) == "better"
    rows = [{"scratch": s, "distilled": d} for s, d in ((150, 140), (120, 150))]
    assert soft_targets.distilled_vs_scratch(rows) == "tie"  # within the seeds' spread
    assert soft_targets.distilled_vs_scratch(rows[:1]) == "one run"
