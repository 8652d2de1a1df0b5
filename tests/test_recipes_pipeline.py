"""kdlab.recipes.pipeline: the cached distilled student and the distilled fine-tune after
pruning that notebooks 04 and 09 and benchmarks/compression.py share."""

import copy
import json
from pathlib import Path

import pytest
import torch

from kdlab import prune
from kdlab.data import synthetic_digits
from kdlab.models import StudentMLP
from kdlab.recipes import Splits
from kdlab.recipes.pipeline import (
    FAST_STUDENT_EPOCHS,
    FINETUNE_RECIPE,
    distilled_student,
    finetune_distilled,
)

COURSE = Path(__file__).resolve().parents[1] / "course"


@pytest.fixture(scope="module")
def data():
    return synthetic_digits(256, seed=0)


def small_mlp(seed: int = 0) -> StudentMLP:
    torch.manual_seed(seed)
    return StudentMLP((32, 32))


def test_finetune_keeps_pruned_weights_at_zero_and_trains_the_others(data):
    dense = small_mlp()
    pruned = prune.prune_unstructured(copy.deepcopy(dense), 0.75)
    layers = [m for m in pruned.modules() if isinstance(m, torch.nn.Linear)]
    masks = [m.weight_mask.clone() for m in layers]
    before = [m.weight.detach().clone() for m in layers]
    dense_before = copy.deepcopy(dense.state_dict())
    history = finetune_distilled(pruned, dense, data, 2, val=data, seed=0, batch_size=64)
    assert len(history) == 2 and "soft_loss" in history.last and "val_accuracy" in history.last
    for layer, mask, old in zip(layers, masks, before, strict=True):
        weight = layer.weight.detach()
        assert torch.all(weight[mask == 0] == 0), "a pruned weight grew back"
        assert not torch.equal(weight[mask == 1], old[mask == 1]), "the kept weights did not learn"
    for key, value in dense.state_dict().items():
        assert torch.equal(value, dense_before[key]), f"the dense teacher changed ({key})"


def test_finetune_from_labels_alone_and_with_precomputed_logits(data):
    dense = small_mlp()
    labels_only = finetune_distilled(small_mlp(1), None, data, 1, seed=0)
    assert "soft_loss" not in labels_only.last

    # the dense model's logits computed once, or computed by the fine-tune: the same run
    with torch.no_grad():
        logits = dense.eval()(data.x)
    a, b = small_mlp(1), small_mlp(1)
    finetune_distilled(a, dense, data, 1, seed=3)
    finetune_distilled(b, dense, data, 1, dense_logits=logits, seed=3)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, msg=key)


def test_finetune_checks_its_arguments(data):
    with pytest.raises(ValueError, match="unknown recipe settings"):
        finetune_distilled(small_mlp(), small_mlp(1), data, 1, learning_rate=0.1)
    with pytest.raises(ValueError, match="without the dense model"):
        finetune_distilled(small_mlp(), None, data, 1, dense_logits=torch.zeros(len(data), 10))
    with pytest.raises(ValueError, match="rows"):
        finetune_distilled(small_mlp(), small_mlp(1), data, 1, dense_logits=torch.zeros(3, 10))
    assert FINETUNE_RECIPE.as_dict() == {
        "epochs": 20,
        "temperature": 2.0,
        "alpha": 0.5,
        "lr": 1e-3,
        "batch_size": 128,
        "lr_schedule": "cosine",
    }


def test_distilled_student_is_trained_once_then_loaded(data):
    splits = Splits(data, synthetic_digits(64, seed=1), synthetic_digits(64, seed=2), fast=True)
    teacher = small_mlp(7).eval()
    info = {"path": "/somewhere/teacher-cnn-0123456789abcdef.pt"}
    student, first = distilled_student(splits, teacher, info, seed=0, verbose=False)
    assert first["status"] == "trained"
    assert len(first["summary"]["history"]) == FAST_STUDENT_EPOCHS
    assert first["config"]["recipe"]["epochs"] == FAST_STUDENT_EPOCHS
    assert isinstance(student, StudentMLP) and not student.training
    again, second = distilled_student(splits, teacher, info, seed=0, verbose=False)
    assert second["status"] == "loaded from cache" and second["path"] == first["path"]
    for x, y in zip(student.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    _, other_seed = distilled_student(splits, teacher, info, seed=1, verbose=False)
    assert other_seed["path"] != first["path"]


@pytest.mark.parametrize("name", ["04_pruning", "09_pipeline"])
def test_notebooks_use_the_pipeline_recipe_instead_of_their_own(name):
    notebook = json.loads((COURSE / f"{name}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "distilled_student(" in code and "finetune_distilled(" in code
    for copied in ("def train_distilled", "cached_model(", "Distiller(", '"lr": 5e-4'):
        assert copied not in code, f"notebook {name} defines its own recipe again ({copied})"
