"""kdlab.recipes.segmentation: the recipe of notebook 05 and its benchmark, defined once."""

import dataclasses

import pytest
import torch

from kdlab.cache import cache_key
from kdlab.data.aerial import NUM_CLASSES, augment
from kdlab.distill import median_frequency_weights
from kdlab.recipes.segmentation import (
    SegmentationRecipe,
    _SymmetricViews,
    aerial_splits,
    segmentation_recipe,
    symmetric_logits,
    teacher_targets,
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
        "train_patches": 1332,
        "per_tile": None,
        "teacher_base": 16,
        "student_base": 4,
        "epochs": 6,
        "student_epochs": 12,
        "batch_size": 16,
        "student_batch_size": 32,
        "student_augment": True,
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
        ({"student_augment": "yes"}, "student_augment must be True or False"),
        ({"student_batch_size": 0}, "student_batch_size must be a positive int"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        SegmentationRecipe(**changes)


def test_the_teachers_cache_key_keeps_its_format():
    """The key is notebook 05's teacher_config, written out: the same format finds the
    teachers cached by the benchmark, whichever of the two ran first."""
    recipe = segmentation_recipe(fast=False)
    splits = type("Splits", (), {"name": "dubai-aerial", "tiles": {"train": ["Tile 2"]}})()
    train = [None] * 1332
    old = {  # the teacher_config format, written out
        "data": "dubai-aerial",
        "scale": 0.25,
        "patch": 64,
        "tiles": {"train": ["Tile 2"]},
        "train_patches": 1332,
        "recipe": {"epochs": 6, "batch_size": 16, "lr": 3e-3, "lr_schedule": "cosine"},
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
    logits = symmetric_logits(teacher, x) if recipe.student_augment else teacher(x).detach()
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


def test_symmetric_logits_are_equivariant_and_differ_from_one_view(tiny):
    _, _, train, _, teacher, _ = tiny
    x, y = train.tensors()
    mean = symmetric_logits(teacher, x)
    with torch.no_grad():
        plain = teacher(x)
    assert mean.shape == plain.shape and not torch.allclose(mean, plain)
    # the mean over the 8 views, turned with a patch, is the mean over the turned patch's views
    stacked, _ = augment(torch.cat([x, mean], 1), y, torch.Generator().manual_seed(3))
    torch.testing.assert_close(symmetric_logits(teacher, stacked[:, :3]), stacked[:, 3:])


def test_symmetric_views_turn_the_maps_with_the_patches():
    x = torch.arange(5 * 3 * 4 * 4, dtype=torch.float32).reshape(5, 3, 4, 4)
    y = (x[:, 0] % 6).long()  # each pixel's class is read off its first channel
    views = _SymmetricViews(x, y, x[:, :2].clone(), batch_size=2, seed=0)
    assert len(views) == 3
    epochs = [list(views) for _ in range(2)]
    for batches_ in epochs:
        assert sum(len(b[0]) for b in batches_) == 5
        for bx, by, maps in batches_:
            torch.testing.assert_close(maps, bx[:, :2])  # the same symmetry as the image
            assert torch.equal(by, (bx[:, 0] % 6).long())  # and the class map too
    first = torch.cat([b[0] for b in epochs[0]])
    second = torch.cat([b[0] for b in epochs[1]])
    assert not torch.equal(first, second)  # new order and views every epoch


def test_augmented_students_distil_the_symmetric_targets(tiny):
    recipe, _, train, val, teacher, _ = tiny
    augmented = dataclasses.replace(recipe, student_augment=True)
    unaugmented = dataclasses.replace(recipe, student_augment=False)
    x, _ = train.tensors()
    torch.testing.assert_close(teacher_targets(teacher, x, augmented), symmetric_logits(teacher, x))
    with torch.no_grad():
        torch.testing.assert_close(teacher_targets(teacher, x, unaugmented), teacher(x))
    scratch, history = train_student(train, val, augmented, seed=0)
    distilled, kd_history = train_student(train, val, augmented, teacher=teacher, seed=0)
    assert "soft_loss" in kd_history.last and "soft_loss" not in history.last
    plain, _ = train_student(train, val, unaugmented, seed=0)
    assert not torch.equal(plain.head.weight, scratch.head.weight)  # the views changed training


def count(model):
    return sum(p.numel() for p in model.parameters())
