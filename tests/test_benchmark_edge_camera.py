"""The edge-camera benchmark runs end to end in fast mode and reports its own numbers."""

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def edge_camera():
    spec = importlib.util.spec_from_file_location(
        "bench_edge_camera", BENCHMARKS / "edge_camera.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_edge_camera_benchmark_runs_and_reports_its_own_numbers(edge_camera):
    result = edge_camera.run([0, 1], fast=True)
    rows = result["per_seed"]
    assert [r["seed"] for r in rows] == [0, 1]
    for name in edge_camera.MODELS:
        values = [r[name] for r in rows]
        assert all(0 <= v <= 1 for v in values)
        assert result["summary"][name]["mean"] == pytest.approx(statistics.fmean(values))
        assert result["summary"][name]["sd"] == pytest.approx(statistics.stdev(values))
    chosen = result["chosen"]
    tried = chosen["tried"]
    assert tried["temperature"][str(chosen["temperature"])] == max(tried["temperature"].values())
    assert tried["lr"][str(chosen["lr"])] == max(tried["lr"].values())
    further = [r["further_kd"] for r in rows], [r["further_labels"] for r in rows]
    margin = max(statistics.stdev(further[0]), statistics.stdev(further[1]))
    gain = statistics.fmean(further[0]) - statistics.fmean(further[1])
    expected = "better" if gain > margin else "worse" if gain < -margin else "tie"
    assert result["verdicts"]["further: distilled vs labels only"] == expected
    deployment = result["deployment"]
    teacher, student = deployment["teacher fp32"], deployment["student fp32"]
    assert result["parameter_ratio"] == pytest.approx(student["parameters"] / teacher["parameters"])
    assert result["speedup_batch1"] == pytest.approx(teacher["ms@1"] / student["ms@1"])
    assert len(deployment) == 5  # teacher, student and three int8 students
    assert result["export"]["agreement"] == 1.0
    assert result["gpu"] is None or result["gpu"]
    text = edge_camera.report(result)
    alone = [100 * r["alone"] for r in rows]
    assert f"| student alone (pre-trained) | {statistics.fmean(alone):.2f} ±" in text
    assert f"| further: distilled vs labels only | {expected} |" in text
    assert f"| student parameters / teacher | {result['parameter_ratio']:.1%}" in text
