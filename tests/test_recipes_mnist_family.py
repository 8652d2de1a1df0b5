"""kdlab.recipes.mnist_family: the student's recipe as a dataclass with the values (and so the
cache keys) of the dict it replaced, its checks, and train_student's two ways to vary it."""

import pytest
import torch

from kdlab.cache import cache_key
from kdlab.data import synthetic_digits
from kdlab.models import StudentMLP
from kdlab.recipes import STUDENT_RECIPE, Splits, StudentRecipe, train_student

OLD_DICT = {
    "epochs": 20,
    "temperature": 2.0,
    "alpha": 0.5,
    "lr": 1e-3,
    "batch_size": 128,
    "lr_schedule": "cosine",
}


def test_the_recipe_keeps_the_values_and_cache_keys_of_the_old_dict():
    assert STUDENT_RECIPE.as_dict() == OLD_DICT
    fast = STUDENT_RECIPE.replace(epochs=3)
    assert cache_key({"recipe": fast.as_dict()}) == cache_key({"recipe": OLD_DICT | {"epochs": 3}})
    assert STUDENT_RECIPE.epochs == 20 and fast.epochs == 3  # replace makes a new recipe


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"temprature": 4.0}, r"unknown recipe settings \['temprature'\]"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"temperature": 0.0}, "temperature must be a finite number > 0"),
        ({"alpha": 1.5}, r"alpha must be in \[0, 1\]"),
        ({"lr_schedule": "step"}, "lr_schedule must be"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        STUDENT_RECIPE.replace(**changes)


def test_overrides_and_a_recipe_train_the_same_student():
    data = synthetic_digits(96, seed=0)
    splits = Splits(data, synthetic_digits(32, seed=1), synthetic_digits(32, seed=2), fast=True)
    teacher = StudentMLP((32,)).eval()
    small = StudentRecipe(epochs=1, batch_size=32, lr_schedule="constant")
    a, history = train_student(splits, teacher, seed=4, progress=False, recipe=small)
    b, _ = train_student(
        splits, teacher, seed=4, progress=False, epochs=1, batch_size=32, lr_schedule="constant"
    )
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, msg=key)
    assert len(history) == 1 and "soft_loss" in history.last
    with pytest.raises(ValueError, match="unknown recipe settings"):
        train_student(splits, teacher, learning_rate=0.1)
