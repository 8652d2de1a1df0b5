"""benchmarks/distilbert.py runs end to end in fast mode and reports what it measured."""

import json
import statistics
import sys
from dataclasses import asdict

import pytest
from test_benchmarks import load

from kdlab.models.bert import bert_classifier, bert_config
from kdlab.recipes.distilbert import BertRecipe

FAST = BertRecipe().fast()


@pytest.fixture(scope="module")
def distilbert():
    return load("distilbert")


@pytest.fixture(scope="module")
def result(distilbert):
    return distilbert.run([0, 1], fast=True)


def test_distilbert_benchmark_measures_three_models_per_seed(result):
    rows = result["per_seed"]
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        acc = r["dev_accuracy"]
        assert set(acc) == {"teacher", "teacher_no_mlm", "student", "random_student"}
        assert all(0 <= v <= 1 for v in acc.values())
        # accuracies are counts of correct dev sentences over n_dev
        n = result["n_dev"]
        assert all(abs(v * n - round(v * n)) < 1e-6 for v in acc.values())
        for key in ("teacher_no_mlm", "student", "random_student"):
            assert r["retention"][key] == acc[key] / acc["teacher"]
    # one MLM encoder for both seeds, pre-trained for the recipe's epochs
    assert len(result["mlm"]["loss_per_epoch"]) == FAST.mlm_epochs
    # the saved recipe is the fast one, as a plain dict
    assert result["recipe"] == asdict(FAST)


def test_parameters_match_models_built_independently(result):
    teacher = asdict(FAST.teacher)
    vocab = result["recipe"]["vocab_size"]
    shape = teacher | {"layers": FAST.teacher.layers // 2}
    counts = {}
    for name, kwargs in (("teacher", teacher), ("student", shape)):
        model = bert_classifier(bert_config(vocab, **kwargs))
        counts[name] = sum(p.numel() for p in model.parameters())
    # the trained tokenizer may hold slightly fewer tokens than asked: compare the layers
    assert (
        result["parameters"]["teacher"] - result["parameters"]["student"]
        == counts["teacher"] - counts["student"]
    )
    ratio = result["parameters"]["student"] / result["parameters"]["teacher"]
    assert result["parameter_ratio"] == ratio < 1
    for b in (1, 32):
        ms = result["latency_ms"]
        assert result["speedup"][f"batch{b}"] == pytest.approx(
            ms["teacher"][f"batch{b}"] / ms["student"][f"batch{b}"]
        )


def test_goals_follow_from_the_measurements(result):
    rows = result["per_seed"]
    acc = {
        k: 100 * statistics.fmean(r["dev_accuracy"][k] for r in rows)
        for k in ("teacher", "teacher_no_mlm", "student", "random_student")
    }
    goals = {g["id"]: g["met"] for g in result["goals"]}
    assert goals["mlm_helps"] == (acc["teacher"] > acc["teacher_no_mlm"])
    assert goals["retention"] == (acc["student"] / acc["teacher"] >= 0.97)
    assert goals["beats_random_init"] == (acc["student"] - acc["random_student"] >= 2)
    for b in (1, 32):
        assert goals[f"speedup_batch{b}"] == (result["speedup"][f"batch{b}"] >= 1.8)


def test_report_prints_the_runs_own_numbers(distilbert, result):
    text = distilbert.report(result)
    rows = result["per_seed"]
    for key, label in distilbert.LABELS.items():
        values = [100 * r["dev_accuracy"][key] for r in rows]
        mean, sd = statistics.fmean(values), statistics.stdev(values)
        assert f"| {label} | {mean:.1f} ± {sd:.1f} |" in text
    assert f"| {result['parameter_ratio']:.2f} |" in text
    for b in (1, 32):
        assert f"| {result['speedup'][f'batch{b}']:.2f}x faster |" in text
    for g in result["goals"]:
        assert f"| {g['goal']} | {g['measured']} | {'met' if g['met'] else 'NOT met'} |" in text
    assert f"Wall time {result['wall_seconds']:.0f} s" in text


def test_main_saves_the_json_before_printing(distilbert, result, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(distilbert, "RESULTS", tmp_path)
    monkeypatch.setattr(distilbert, "run", lambda seeds, fast: result)
    monkeypatch.setattr(sys, "argv", ["distilbert.py", "--fast"])
    distilbert.main()
    saved = tmp_path / f"distilbert_{result['data']}_fast.json"
    assert json.loads(saved.read_text()) == json.loads(json.dumps(result))
    assert distilbert.report(result) in capsys.readouterr().out


def test_seeds_are_validated(distilbert):
    with pytest.raises(ValueError, match="distinct"):
        distilbert.run([0, 0], fast=True)
