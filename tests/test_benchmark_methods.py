"""benchmarks/methods.py runs end to end in fast mode and reports its own numbers."""

import dataclasses
import random
import statistics

import pytest
from test_benchmarks import load

from kdlab.recipes import beyond_logits


@pytest.fixture(scope="module")
def bench():
    return load("methods")


@pytest.fixture(scope="module")
def result(bench):
    return bench.run("fashion-mnist", [0, 1], epochs=1, n_train=256, fast=True)


def test_every_method_runs_for_every_seed(bench, result):
    runs = result["runs"]
    assert {(r["seed"], r["method"]) for r in runs} == {
        (s, m) for s in (0, 1) for m in bench.METHODS
    }
    assert len(runs) == 2 * len(bench.METHODS)
    assert all(0 <= r["test_accuracy"] <= 100 for r in runs)
    assert all(r["seconds_per_epoch"] > 0 and r["cpu_seconds_per_epoch"] > 0 for r in runs)
    assert result["n_train"] == 256


def test_the_benchmark_trains_notebook_07s_table_with_its_settings(bench, result):
    assert bench.METHODS == tuple(beyond_logits.METHODS)
    assert result["training"] == dataclasses.asdict(beyond_logits.TRAINING)
    assert result["methods"] == list(beyond_logits.METHODS)


def test_report_holds_the_runs_own_statistics(bench, result):
    runs = result["runs"]

    def values(method, key):
        return [r[key] for r in runs if r["method"] == method]

    means = {m: statistics.fmean(values(m, "test_accuracy")) for m in bench.METHODS}
    sds = {m: statistics.stdev(values(m, "test_accuracy")) for m in bench.METHODS}
    kd_wall = statistics.fmean(values("KD", "seconds_per_epoch"))
    kd_cpu = statistics.fmean(values("KD", "cpu_seconds_per_epoch"))
    ranked = sorted(bench.METHODS, key=lambda m: -means[m])
    text = bench.report(result)
    for rank, method in enumerate(ranked, 1):
        wall = statistics.fmean(values(method, "seconds_per_epoch")) / kd_wall
        cpu = statistics.fmean(values(method, "cpu_seconds_per_epoch")) / kd_cpu
        row = (
            f"| {rank} | {method} | {means[method]:.2f} ± {sds[method]:.2f} "
            f"| {means[method] - means['KD']:+.2f} | {wall:.2f}x | {cpu:.2f}x |"
        )
        assert row in text, row
    assert "- ranking: " + " > ".join(ranked) in text
    better = [m for m in ranked if m != "KD" and means[m] - means["KD"] > max(sds[m], sds["KD"])]
    worse = [m for m in ranked if means[m] - means["KD"] < -max(sds[m], sds["KD"])]
    assert f"- beat plain KD by more than the seed spread: {', '.join(better) or 'none'}" in text
    assert f"- below plain KD by more than the seed spread: {', '.join(worse) or 'none'}" in text


def test_verdicts_follow_the_seed_spread(bench):
    # synthetic runs: methods from well below to well above KD, with spreads both smaller
    # and larger than KD's, so that every verdict and both sides of the margin occur
    gen = random.Random(0)
    methods = ["KD"] + [f"m{i}" for i in range(40)]
    shift = {m: 0.0 if m == "KD" else gen.uniform(-3, 3) for m in methods}
    noise = {m: 0.6 if m == "KD" else gen.choice([0.2, 1.5]) for m in methods}
    runs = [
        {
            "seed": seed,
            "method": m,
            "test_accuracy": 80 + shift[m] + gen.gauss(0, noise[m]),
            "seconds_per_epoch": gen.uniform(1, 2),
            "cpu_seconds_per_epoch": gen.uniform(1, 2),
        }
        for seed in range(3)
        for m in methods
    ]
    rows = {row["method"]: row for row in bench.summarize(runs, methods)}
    kd = [r["test_accuracy"] for r in runs if r["method"] == "KD"]
    expected = {}
    for m in methods[1:]:
        accs = [r["test_accuracy"] for r in runs if r["method"] == m]
        diff = statistics.fmean(accs) - statistics.fmean(kd)
        margin = max(statistics.stdev(accs), statistics.stdev(kd))
        assert rows[m]["vs KD (points)"] == pytest.approx(diff)
        expected[m] = (
            "beats plain KD"
            if diff > margin
            else "below plain KD"
            if diff < -margin
            else "within the spread of plain KD"
        )
        assert rows[m]["verdict"] == expected[m], m
    assert len(set(expected.values())) == 3


def test_methods_are_checked(bench):
    with pytest.raises(ValueError, match="include 'KD'"):
        bench.run("fashion-mnist", [0], epochs=1, n_train=64, fast=True, methods=["AT"])
    with pytest.raises(ValueError, match="unknown methods"):
        bench.run("fashion-mnist", [0], epochs=1, n_train=64, fast=True, methods=["KD", "CRD"])
