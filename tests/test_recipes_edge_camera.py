"""kdlab.recipes.edge_camera and edge_deployment: the recipe's checks, torchvision's models and
their size ratio, the teacher's precomputed views against running it on every batch, a
student trained further from a copy, the int8 flows and the exported program's outputs."""

import copy

import pytest
import torch
from torchvision.models import densenet201

from kdlab import bench
from kdlab.data.landcover import VIEWS, dihedral, landcover_from_patches
from kdlab.data.patches import AerialPatches, normalise
from kdlab.models import logits_of
from kdlab.recipes import edge_camera as ec
from kdlab.recipes import edge_deployment as ed


def test_recipe_refuses_bad_and_unknown_settings():
    recipe = ec.edge_camera_recipe(fast=True)
    with pytest.raises(ValueError, match="unknown recipe settings"):
        recipe.replace(temprature=2.0)
    for bad in (
        {"alpha": 1.5},
        {"temperature": 0.0},
        {"further_epochs": 0},
        {"block_config": (2, 0)},
        {"train_patches": 0},
        {"scale": 2.0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            recipe.replace(**bad)
    assert ec.edge_camera_recipe(fast=False, temperature=2.0).temperature == 2.0
    assert not ec.edge_camera_recipe(fast=False).fast


def test_the_full_teacher_is_a_shortened_densenet201_with_the_student_near_five_percent():
    full = ec.edge_camera_recipe(fast=False)
    reference = sum(p.numel() for p in densenet201(weights=None).parameters())
    ours = ec.teacher_model(full.replace(block_config=ec.DENSENET201["block_config"]))
    ours.classifier = torch.nn.Linear(ours.classifier.in_features, 1000)
    assert bench.count_parameters(ours) == reference  # same growth rate, stem and blocks
    ratio = bench.count_parameters(ec.student_model()) / bench.count_parameters(
        ec.teacher_model(full)
    )
    assert 0.04 < ratio < 0.08, ratio  # the case: about 5 %; here 7 %
    assert full.growth_rate == ec.DENSENET201["growth_rate"]


def tiny_splits(n: int = 24):
    """A land-cover split of random 32x32 patches (every patch pure Land or Water)."""
    g = torch.Generator().manual_seed(0)
    labels = (torch.arange(n) % 2).to(torch.uint8)
    maps = labels[:, None, None].expand(n, 32, 32).clone()
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=g).to(torch.uint8)
    images[labels == 1, 2] //= 4  # water is less blue here: something to learn
    data = landcover_from_patches(AerialPatches(images, maps, ("Tile 2",) * n, "test"), 0.8)

    class Splits:
        train, val, test = data, data, data

    return Splits()


def test_teacher_views_are_the_teacher_on_each_flip_and_rotation():
    splits = tiny_splits(6)
    recipe = ec.edge_camera_recipe(fast=True)
    teacher = ec.teacher_model(recipe).eval()
    views = ec.teacher_views(teacher, splits.train)
    assert views.shape == (6, VIEWS, 5)
    for k in range(VIEWS):
        x = normalise(dihedral(splits.train.images, k))
        torch.testing.assert_close(views[:, k], logits_of(teacher, x))


def test_precomputed_views_train_the_same_student_as_running_the_teacher():
    splits = tiny_splits()
    recipe = ec.edge_camera_recipe(fast=True, batch_size=8, student_epochs=1)
    torch.manual_seed(0)
    teacher = ec.teacher_model(recipe).eval()
    online, h1 = ec.train_student(splits, recipe, teacher=teacher, seed=3, progress=False)
    views = ec.teacher_views(teacher, splits.train)
    offline, h2 = ec.train_student(
        splits, recipe, teacher=teacher, view_logits=views, seed=3, progress=False
    )
    for a, b in zip(online.state_dict().values(), offline.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert h1["soft_loss"] == pytest.approx(h2["soft_loss"], rel=1e-4)
    with pytest.raises(ValueError, match="without the teacher"):
        ec.train_student(splits, recipe, view_logits=views)


def test_training_further_starts_from_a_copy_and_leaves_the_start_alone():
    splits = tiny_splits()
    recipe = ec.edge_camera_recipe(fast=True, batch_size=8, further_epochs=1)
    start = ec.student_model().eval()
    before = copy.deepcopy(start.state_dict())
    further, history = ec.train_student(splits, recipe, start=start, progress=False)
    assert len(history) == recipe.further_epochs
    assert further is not start
    for name, value in start.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert any(
        not torch.equal(a, b)
        for a, b in zip(further.state_dict().values(), before.values(), strict=True)
    )


def test_int8_students_and_the_exported_program_agree_with_pytorch(tmp_path):
    splits = tiny_splits()
    recipe = ec.edge_camera_recipe(fast=True, batch_size=8)
    student = ec.student_model().eval()
    models = ed.int8_students(student, splits, recipe, calibration=16, compile=False)
    assert set(models) == {ed.PT2E_EAGER, ed.FX, ed.QAT}
    x, _ = splits.test.tensors()
    with torch.no_grad():
        reference = student(x)
        for name, model in models.items():
            out = model(x)
            assert out.shape == reference.shape, name
            assert torch.isfinite(out).all(), name
    path = tmp_path / "student.pt2"
    exported = ed.export_int8(models[ed.PT2E_EAGER], student, splits.test, path)
    assert path.stat().st_size == exported["bytes"] > 0
    # the int8 weights and the graph, not the test patches (a saved example keeps its storage)
    assert exported["bytes"] < 3 * bench.serialized_size(student)
    assert exported["max_abs_diff"] < 1e-4
    assert exported["agreement"] == 1.0
    with pytest.raises(ValueError, match=".pt2"):
        ed.export_int8(models[ed.PT2E_EAGER], student, splits.test, tmp_path / "s.onnx")


def test_cost_table_measures_every_model_and_its_accuracy():
    splits = tiny_splits()
    student = ec.student_model().eval()
    table = ed.cost_table(
        {"a": student, "b": copy.deepcopy(student)}, splits.test, min_run_time=0.01
    )
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "accuracy %"] == pytest.approx(100 * ec.accuracy(student, splits.test))
    assert {"ms@1", "ms@32", "size_MB"} <= set(table.columns)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only answer")
def test_gpu_table_is_none_without_cuda():
    assert ed.gpu_table({"student": ec.student_model()}, 32) is None
