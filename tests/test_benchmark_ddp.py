"""benchmarks/ddp.py runs end to end in fast mode and reports what it measured."""

from test_benchmarks import load


def test_ddp_benchmark_times_both_configurations_and_reports_their_ratio():
    bench = load("ddp")
    result = bench.run(images=1280, rounds=1, fast=True)
    assert result["configs"] == ["1 process x 2 threads", "2 processes x 1 thread"]
    (only,) = result["rounds"]
    single, multi = (only["runs"][name] for name in result["configs"])
    assert (single["processes"], single["threads"]) == (1, 2)
    assert (multi["processes"], multi["threads"]) == (2, 1)
    assert result["images"] == single["images"] == multi["images"] == 1280
    assert result["speedup"] == only["speedup"] == single["epoch_seconds"] / multi["epoch_seconds"]
    text = bench.report(result)
    epoch = multi["epoch_seconds"]
    assert f"| 2 processes x 1 thread | {epoch:.1f} | {1280 / epoch:.0f} |" in text
    assert f"**{result['speedup']:.2f}x**" in text
