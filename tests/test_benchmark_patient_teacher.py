"""benchmarks/patient_teacher.py runs end to end in fast mode and reports its own numbers."""

import statistics

from test_benchmarks import load

from kdlab.distill.views import MODES


def test_patient_teacher_benchmark_reports_what_it_measured():
    bench = load("patient_teacher")
    result = bench.run("fashion-mnist", [0, 1], [1, 2], n_train=256, fast=True)
    runs = result["runs"]
    assert len(runs) == 2 * 2 * len(MODES)
    assert {(r["seed"], r["epochs"], r["mode"]) for r in runs} == {
        (s, e, m) for s in (0, 1) for e in (1, 2) for m in MODES
    }
    assert all(len(r["val_accuracy"]) == r["epochs"] for r in runs)
    text = bench.report(result)
    for mode in MODES:
        accs = [r["test_accuracy"] for r in runs if r["mode"] == mode and r["epochs"] == 2]
        assert f"{statistics.fmean(accs):.2f} ± {statistics.stdev(accs):.2f}" in text
    best_at_2 = max(
        MODES,
        key=lambda m: statistics.fmean(
            r["test_accuracy"] for r in runs if r["mode"] == m and r["epochs"] == 2
        ),
    )
    assert f"- ranking at 2 epochs: {best_at_2} >" in text
    said = bench.against_baseline(runs, 2)
    assert set(said) == set(MODES) - {"fixed"}
    assert set(said.values()) <= {"better", "worse", "tie"}
    line = ", ".join(f"{m} {v}" for m, v in said.items())
    assert f"- against the fixed teacher at 2 epochs: {line}" in text


def test_against_the_fixed_teacher_a_difference_within_the_spread_is_a_tie():
    bench = load("patient_teacher")
    accuracy = {"fixed": (70, 72), "independent": (60, 61), "consistent": (73, 71.5)}
    accuracy["function_matching"] = (80, 81)
    runs = [
        {"mode": m, "epochs": 4, "seed": s, "test_accuracy": a}
        for m, values in accuracy.items()
        for s, a in enumerate(values)
    ]
    assert bench.against_baseline(runs, 4) == {
        "independent": "worse",
        "consistent": "tie",
        "function_matching": "better",
    }
