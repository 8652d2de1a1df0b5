"""benchmarks/compression.py runs end to end in fast mode and reports what it measured."""

import pytest
from test_benchmarks import load

from kdlab.models import StudentMLP
from kdlab.recipes.pipeline import FINETUNE_RECIPE


def layer_sizes(hidden: tuple[int, ...]) -> list[tuple[int, int]]:
    widths = [28 * 28, *hidden, 10]
    return list(zip(widths[:-1], widths[1:], strict=True))


def test_compression_benchmark_runs_and_reports_its_own_numbers():
    compression = load("compression")
    result = compression.run(
        "fashion-mnist", seed=0, fast=True, models=["student"], flows=["dynamic_ptq", "static_ptq"]
    )
    rows = {r["variant"]: r for r in result["rows"]}
    expected = ["fp32", "dynamic_ptq", "static_ptq"] + [
        f"{m} {s}%" for m in ("unstructured", "structured") for s in (50, 75, 90)
    ]
    assert list(rows) == expected
    # the fine-tune of notebooks 04 and 09 (kdlab.recipes.pipeline), 1 epoch in fast mode
    settings = {k: v for k, v in FINETUNE_RECIPE.as_dict().items() if k != "epochs"}
    assert result["finetune"] == settings | {"epochs": {"student": 1}}
    fp32 = rows["fp32"]
    assert fp32["speedup"] == {"batch1": 1.0, "batch256": 1.0} and fp32["flips"] == 0
    for r in rows.values():
        assert r["size_ratio"] == fp32["size_bytes"] / r["size_bytes"]
        assert r["change_points"] == pytest.approx(100 * (r["accuracy"] - fp32["accuracy"]))
        for b in ("batch1", "batch256"):
            assert r["ms"][b] > 0 and r["speedup"][b] > 0
    # int8 stores 1 byte per weight instead of 4
    assert 3.5 < rows["dynamic_ptq"]["size_ratio"] <= 4

    # Independent counts from the architecture (784-256-256-10) and k = round(s * n).
    n_params = sum(i * o + o for i, o in layer_sizes((256, 256)))
    assert n_params == sum(p.numel() for p in StudentMLP().parameters())
    assert fp32["nonzero_parameters"] == n_params
    unstructured = rows["unstructured 50%"]
    pruned = sum(round(0.5 * i * o) for i, o in layer_sizes((256, 256)))
    assert unstructured["nonzero_parameters"] == n_params - pruned
    assert unstructured["size_bytes"] == fp32["size_bytes"]  # dense tensors, zeros and all
    # structured 50 %: each hidden layer physically cut to 128 units
    structured = rows["structured 50%"]
    assert structured["nonzero_parameters"] == sum(i * o + o for i, o in layer_sizes((128, 128)))
    assert structured["size_ratio"] > 2

    goals = {g["id"]: g for g in result["goals"]}
    ratios = [rows[f]["size_ratio"] for f in ("dynamic_ptq", "static_ptq")]
    assert goals["int8_size"]["met"] == (min(ratios) >= 3.9)
    half = structured["speedup"]["batch256"] >= 1.6 and structured["change_points"] >= -1
    assert goals["pruned_speed"]["met"] == half
    accurate = [r for f, r in rows.items() if "ptq" in f and r["change_points"] >= -0.3]
    fastest = max((r["speedup"]["batch256"] for r in accurate), default=0)
    assert goals["int8_speed"]["met"] == (fastest >= 1.5)

    text = compression.report(result)
    for name in ("dynamic_ptq", "structured 50%"):
        r = rows[name]
        assert (
            f"| student | {name} | " in text
            and f"{r['size_ratio']:.2f}x | {r['speedup']['batch1']:.2f}x | "
            f"{r['speedup']['batch256']:.2f}x |"
            in text
        )
    assert f"| {100 * structured['accuracy']:.2f} | {structured['change_points']:+.2f} |" in text
    assert f"{structured['nonzero_parameters']:,}" in text
    for g in result["goals"]:
        assert f"| {g['measured']} | {'met' if g['met'] else 'NOT met'} |" in text
