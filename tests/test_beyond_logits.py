"""The trainers of notebook 07: each one step updates what it should and nothing else."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlab.data import ImageSet
from kdlab.distill import (
    DecoupledDistiller,
    FeatureDistiller,
    MutualDistiller,
    NativeEnsembleDistiller,
)
from kdlab.hooks import activations_of
from kdlab.losses import (
    HintLoss,
    OnTheFlyNativeEnsemble,
    attention_transfer_loss,
    decoupled_kd_loss,
)
from kdlab.models import StudentCNN, TeacherCNN
from kdlab.recipes.beyond_logits import run_method


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def changed(before: dict, model: nn.Module) -> set[str]:
    return {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}


def test_student_cnn_stages_match_the_teacher_spatially():
    x, _ = batch(2)
    student, teacher = StudentCNN(width=8), TeacherCNN(width=32)
    for name in ("features.0", "features.1"):
        s, t = activations_of(student, name, x), activations_of(teacher, name, x)
        assert s.shape[2:] == t.shape[2:] and s.shape[1] * 4 == t.shape[1]
    assert student(x).shape == (2, 10)
    with pytest.raises(ValueError, match="width"):
        StudentCNN(width=0)


def test_feature_distiller_trains_student_and_regressor_but_not_teacher():
    torch.manual_seed(0)
    student, teacher, hint = StudentCNN(), TeacherCNN(), HintLoss(16, 64)
    teacher_before, regressor_before = (
        copy.deepcopy(teacher.state_dict()),
        hint.regressor.weight.clone(),
    )
    student_before = copy.deepcopy(student.state_dict())
    d = FeatureDistiller(
        student, teacher, hint, student_layer="features.1", teacher_layer="features.1", seed=0
    )
    x, y = batch()
    step = d.train_step(x, y)
    assert changed(teacher_before, teacher) == set(), "the teacher changed"
    assert not torch.equal(hint.regressor.weight, regressor_before), "regressor not trained"
    assert "features.0.0.weight" in changed(student_before, student)
    assert step["loss"] == pytest.approx(step["hard_loss"] + step["feature_loss"], rel=1e-5)


def test_feature_distiller_precomputed_activation_gives_the_same_loss():
    torch.manual_seed(0)
    student, teacher = StudentCNN(), TeacherCNN().eval()
    d = FeatureDistiller(
        student,
        teacher,
        attention_transfer_loss,
        student_layer="features.1",
        teacher_layer="features.1",
        weight=2.0,
    )
    student.eval()  # batch-norm in one mode for every forward pass below
    x, y = batch()
    _, live = d.loss_parts(x, y)
    _, cached = d.loss_parts(x, y, activations_of(teacher, "features.1", x))
    torch.testing.assert_close(live["loss"], cached["loss"])
    expected = F.cross_entropy(student(x), y) + 2.0 * attention_transfer_loss(
        activations_of(student, "features.1", x), activations_of(teacher, "features.1", x)
    )
    torch.testing.assert_close(live["loss"], expected)


def test_feature_distiller_rejects_wrong_layer_names_at_once():
    with pytest.raises(ValueError, match="valid names"):
        FeatureDistiller(
            StudentCNN(),
            TeacherCNN(),
            attention_transfer_loss,
            student_layer="features.7",
            teacher_layer="features.1",
        )


def test_decoupled_distiller_adds_dkd_to_cross_entropy():
    torch.manual_seed(0)
    student, teacher = StudentCNN(), TeacherCNN().eval()
    d = DecoupledDistiller(student, teacher, tc_weight=0.5, nc_weight=3.0, temperature=2.0)
    x, y = batch()
    with torch.no_grad():
        logits, parts = d.loss_parts(x, y)
        expected = F.cross_entropy(logits, y) + decoupled_kd_loss(
            logits, teacher(x), y, 0.5, 3.0, 2.0
        )
    torch.testing.assert_close(parts["loss"], expected)


def test_mutual_distiller_updates_every_peer():
    torch.manual_seed(0)
    peers = [StudentCNN(), StudentCNN(), StudentCNN()]
    before = [copy.deepcopy(p.state_dict()) for p in peers]
    d = MutualDistiller(peers)
    d.train_step(*batch())
    for k, (peer, old) in enumerate(zip(peers, before, strict=True)):
        assert "head.1.weight" in changed(old, peer), f"peer {k} was not updated"
    assert d.student is peers[0]
    with pytest.raises(ValueError, match="2 distinct"):
        MutualDistiller([peers[0], peers[0]])


def test_native_ensemble_distiller_updates_trunk_gate_and_branches():
    torch.manual_seed(0)
    base = StudentCNN()
    branches = [copy.deepcopy(nn.Sequential(base.features[1], base.head)) for _ in range(3)]
    model = OnTheFlyNativeEnsemble(base.features[0], branches, gate_features=8)
    before = copy.deepcopy(model.state_dict())
    NativeEnsembleDistiller(model).train_step(*batch())
    moved = changed(before, model)
    assert {"trunk.0.weight", "gate.weight"} <= moved
    for k in range(3):
        assert f"branches.{k}.1.1.weight" in moved, f"branch {k} was not updated"


def test_run_method_reports_accuracy_and_time():
    x, y = batch(40)
    data = ImageSet(x, y, "synthetic-test", tuple(str(i) for i in range(10)), "generated")
    result = run_method(
        lambda seed: MutualDistiller([StudentCNN(), StudentCNN()], seed=seed),
        data,
        data,
        epochs=1,
        seed=0,
    )
    assert 0 <= result["accuracy"] <= 1 and result["seconds_per_epoch"] > 0
