"""kdlab.report: the spread over seeds against statistics, the verdict's tie rule, and saved
results read back with their provenance."""

import json
import statistics

import pytest

from kdlab.report import format_spread, load_results, save_results, spread, verdict


def test_spread_matches_statistics():
    values = [886.0, 881.5, 891.4]
    mean, sd = spread(values)
    assert mean == pytest.approx(statistics.fmean(values))
    assert sd == pytest.approx(statistics.stdev(values))
    assert spread([3.0]) == (3.0, 0.0)
    expected = f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"
    assert format_spread(values) == expected
    with pytest.raises(ValueError, match="at least one value"):
        spread([])


@pytest.mark.parametrize(
    ("method", "baseline", "higher", "expected"),
    [
        ([90.0, 91.0, 92.0], [80.0, 81.0, 82.0], True, "better"),
        ([90.0, 91.0, 92.0], [80.0, 81.0, 82.0], False, "worse"),
        ([91.0, 91.5, 92.0], [90.0, 91.0, 92.0], True, "tie"),  # difference 0.5 < sd 1.0
        ([87.01, 87.30, 86.72], [86.91, 87.15, 86.66], True, "tie"),
        ([90.0], [80.0, 81.0], True, "one run"),
    ],
)
def test_verdict_calls_a_difference_within_the_spread_a_tie(method, baseline, higher, expected):
    assert verdict(method, baseline, higher_is_better=higher) == expected


def test_missing_results_name_the_benchmark_that_writes_them(tmp_path, monkeypatch, capsys):
    for script in ("soft.py", "soft_targets.py", "patient_teacher.py"):
        (tmp_path / script).write_text("")
    monkeypatch.setenv("KDLAB_RESULTS", str(tmp_path / "results"))
    assert load_results("soft_targets_mnist") is None
    assert "`python benchmarks/soft_targets.py`" in capsys.readouterr().out
    assert load_results("patient_teacher_fashion-mnist") is None
    assert "`python benchmarks/patient_teacher.py`" in capsys.readouterr().out


def test_saved_results_are_read_back_with_their_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDLAB_RESULTS", str(tmp_path))
    assert load_results("soft_targets_mnist") is None
    assert "No saved results" in capsys.readouterr().out
    result = {"machine": "2-core test box", "per_seed": [{"seed": 0, "errors": 5}]}
    save_results(result, tmp_path / "soft_targets_mnist.json", lambda r: "report")
    capsys.readouterr()
    assert load_results("soft_targets_mnist") == result
    assert "NOT this notebook's run" in capsys.readouterr().out
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_results("broken")
    with pytest.raises(ValueError, match="stem"):
        load_results("broken.json")
    assert json.loads((tmp_path / "soft_targets_mnist.json").read_text()) == result
