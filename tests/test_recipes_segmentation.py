"""kdlab.recipes.segmentation: the recipe of notebook 05 and its benchmark, defined once."""

import dataclasses

import pytest
import torch

from kdlab.cache import cache_key
from kdlab.data.aerial import NUM_CLASSES
from kdlab.distill import median_frequency_weights
from kdlab.recipes.segmentation import (
    SegmentationRecipe,
    aerial_splits,
    segmentation_recipe,
    train_student,
    trained_teacher,
    training_patches,
)


def test_standard_and_fast_recipes():
    full = segmentation_recipe(fast=False)
    assert full == SegmentationRecipe()
    assert full.settings() == {
        "scale": 0.25,
        "patch": 64,
        "train_patches": 640,
        "per_tile": None,
        "teacher_base": 16,
        "student_base": 4,
        "epochs": 8,
        "student_epochs": 16,
        "batch_size": 8,
        "lr": 3e-3,
        "student_lr": 1e-2,
        "lr_schedule": "cosine",
        "class_weights": "median frequency",
        "temperature": 2.0,
        "alpha": 0.5,
        "latency_size": 256,
    }
    fast = segmentation_recipe(fast=True)
    assert (fast.per_tile, fast.train_patches, fast.epochs, fast.student_epochs) == (1, 16, 2, 4)
    assert fast.latency_size == 64 and fast.kd == {"temperature": 2.0, "alpha": 0.5}


def test_changes_and_the_students_twice_the_epochs():
    assert segmentation_recipe(False, epochs=3).student_epochs == 6
    assert segmentation_recipe(False, epochs=3, student_epochs=5).student_epochs == 5
    assert segmentation_recipe(False, temperature=1.0).temperature == 1.0
    with pytest.raises(ValueError, match=r"unknown recipe settings \['temprature'\]"):
        segmentation_recipe(False, temprature=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SegmentationRecipe().lr = 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive int"),
        ({"patch": 40}, "patch must be a multiple of 16"),
        ({"latency_size": 100}, "latency_size must be a multiple of 16"),
        ({"scale": 0}, "scale must be in"),
        ({"student_lr": 0}, "student_lr must be > 0"),
        ({"alpha": 1.5}, "alpha must be in"),
        ({"class_weights": "inverse"}, "class_weights must be one of"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        SegmentationRecipe(**changes)


def test_the_teachers_cache_key_is_the_one_notebook_05_used():
    """Teachers cached before the recipe moved here are still found."""
    recipe = segmentation_recipe(fast=False)
    splits = type("Splits", (), {"name": "dubai-aerial", "tiles": {"train": ["Tile 2"]}})()
    train = [None] * 640
    old = {  # notebook 05's teacher_config, written out as it was
        "data": "dubai-aerial",
        "scale": 0.25,
        "patch": 64,
        "tiles": {"train": ["Tile 2"]},
        "train_patches": 640,
        "recipe": {"epochs": 8, "batch_size": 8, "lr": 3e-3, "lr_schedule": "cosine"},
        "seed": 0,
        "base": 16,
        "class_weights": "median frequency",
        "fast": False,
    }
    assert cache_key(recipe.teacher_config(splits, train, 0)) == cache_key(old)
    # the students' settings do not retrain the teacher; the teacher's do
    students = dataclasses.replace(recipe, student_lr=0.1, temperature=4.0, latency_size=64)
    assert students.teacher_config(splits, train, 0) == recipe.teacher_config(splits, train, 0)
    assert dataclasses.replace(recipe, lr=0.1).teacher_config(splits, train, 0) != old


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Synthetic scenes (an empty data folder), a tiny recipe, a cached teacher."""
    recipe = segmentation_recipe(
        True, patch=16, train_patches=8, teacher_base=4, student_base=2, epochs=1, batch_size=4
    )
    splits = aerial_splits(recipe, tmp_path_factory.mktemp("no-data"))
    assert splits.synthetic
    train = training_patches(splits, recipe, seed=0)
    val = [(x, y) for x, y in splits.val.loader(8)][:1]
    teacher, info = trained_teacher(splits, train, val, recipe, seed=0, verbose=False)
    return recipe, splits, train, val, teacher, info


def test_teacher_is_trained_once_then_loaded(tiny):
    recipe, splits, train, val, teacher, info = tiny
    assert len(train) == 8 and info["status"] in ("trained", "loaded from cache")
    assert len(info["summary"]["epochs"]) == recipe.epochs
    again, info2 = trained_teacher(splits, train, val, recipe, seed=0, verbose=False)
    assert info2["status"] == "loaded from cache"
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert not teacher.training


def test_students_from_scratch_and_distilled(tiny):
    recipe, _, train, val, teacher, _ = tiny
    scratch, history = train_student(train, val, recipe, seed=0)
    assert len(history) == recipe.student_epochs and "soft_loss" not in history.last
    assert count(scratch) < count(teacher)
    distilled, kd_history = train_student(train, val, recipe, teacher=teacher, seed=0)
    assert "soft_loss" in kd_history.last
    # teacher logits passed in are the ones it would compute: the same student
    x, _ = train.tensors()
    with torch.no_grad():
        logits = teacher(x)
    same, _ = train_student(train, val, recipe, teacher=teacher, teacher_logits=logits, seed=0)
    for key, value in distilled.state_dict().items():
        torch.testing.assert_close(value, same.state_dict()[key], msg=key)


def test_student_arguments_are_checked(tiny):
    recipe, _, train, val, teacher, _ = tiny
    x, _ = train.tensors()
    with pytest.raises(ValueError, match="without the teacher"):
        train_student(train, val, recipe, teacher_logits=torch.zeros(len(x), NUM_CLASSES))
    with pytest.raises(ValueError, match="one .* map per training patch"):
        train_student(train, val, recipe, teacher=teacher, teacher_logits=torch.zeros(2, 6, 4, 4))


def test_class_weights(tiny):
    recipe, _, train, *_ = tiny
    expected = median_frequency_weights(train.labels, NUM_CLASSES)
    assert torch.equal(recipe.weights(train), expected)
    assert dataclasses.replace(recipe, class_weights=None).weights(train) is None


def count(model):
    return sum(p.numel() for p in model.parameters())
