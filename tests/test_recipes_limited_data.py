"""kdlab.recipes.limited_data: the few-example subset, mixup batches the teacher labels,
each row's training data and the gap-recovered arithmetic; and benchmarks/limited_data.py
runs end to end in fast mode and reports its own numbers."""

import pytest
import torch
from test_benchmarks import load

from kdlab import recipes
from kdlab.distill.views import TeachingBatches, mixup
from kdlab.models import TeacherCNN, logits_of
from kdlab.recipes import limited_data


@pytest.fixture(scope="module")
def splits():
    return recipes.mnist_family_splits("fashion-mnist", fast=True, seed=0)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return TeacherCNN(8).eval()


def test_few_examples_draws_the_share_asked_for_and_depends_on_the_seed(splits):
    few = limited_data.few_examples(splits.train, 0.03, seed=0)
    assert len(few) == round(0.03 * len(splits.train))
    again = limited_data.few_examples(splits.train, 0.03, seed=0)
    other = limited_data.few_examples(splits.train, 0.03, seed=1)
    assert torch.equal(few.x, again.x)
    assert not torch.equal(few.x, other.x)
    with pytest.raises(ValueError, match="fraction must be in"):
        limited_data.few_examples(splits.train, 0.0)


def test_function_matching_without_views_mixes_the_images_themselves(splits, teacher):
    few = limited_data.few_examples(splits.train, 0.1, seed=0)
    batches = TeachingBatches(
        teacher, few.x, few.y, "function_matching", batch_size=32, seed=0, views=False
    )
    check = torch.Generator().manual_seed(0)  # the same draws, replayed
    order = torch.randperm(len(few), generator=check)
    seen = 0
    for start, (x, _y, z) in zip(range(0, len(few), 32), batches, strict=True):
        expected = mixup(few.x[order[start : start + 32]], check)
        assert torch.allclose(x, expected)  # mixup of the clean images, no zoom or shift
        assert torch.allclose(z, logits_of(teacher, x), atol=1e-5)  # teacher on the mix
        seen += len(x)
    assert seen == len(few)


def test_rows_train_on_what_they_say(splits, teacher, monkeypatch):
    seen = {}

    def fake_train_student(splits_, with_teacher, *, train, recipe, **kwargs):
        seen[row] = (len(train), with_teacher is not None, recipe)
        return torch.nn.Linear(1, 1), None

    monkeypatch.setattr(limited_data, "train_student", fake_train_student)
    for row in limited_data.ROWS:
        if row != "few, function matching":
            limited_data.train_row(row, splits, teacher)
    n_few = len(limited_data.few_examples(splits.train))
    n_all = len(splits.train)
    assert seen["few, hard labels"][:2] == (n_few, False)
    assert seen["few, soft targets"][:2] == (n_few, True)
    assert seen["all, hard labels"][:2] == (n_all, False)
    assert seen["all, soft targets only"][:2] == (n_all, True)
    assert seen["all, soft targets only"][2].alpha == 0  # no label seen
    with pytest.raises(ValueError, match="row must be one of"):
        limited_data.train_row("some, labels", splits, teacher)


def test_gap_recovered():
    assert limited_data.gap_recovered(1500, 1800, 1000) == pytest.approx(0.375)
    assert limited_data.gap_recovered(1000, 1800, 1000) == 1
    with pytest.raises(ValueError, match="must beat"):
        limited_data.gap_recovered(900, 1000, 1000)


def test_benchmark_runs_and_reports_its_own_numbers():
    bench = load("limited_data")
    result = bench.run("fashion-mnist", [0, 1], fast=True, fraction=0.1, epochs=1)
    rows = result["per_seed"]
    assert [r["seed"] for r in rows] == [0, 1]
    assert all(isinstance(r[row], int) for r in rows for row in limited_data.ROWS)
    assert all(recipe["epochs"] == 1 for recipe in result["recipes"].values())
    text = bench.report(result)
    for row in limited_data.ROWS:
        errs = [r[row] for r in rows]
        assert f"| {row} | {sum(errs) / len(errs):.1f} ±" in text
