"""The trainers of notebook 07: each one step updates what it should and nothing else; and the
methods table that notebook 07 and benchmarks/methods.py share."""

import copy
import json
from pathlib import Path

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
from kdlab.recipes.beyond_logits import (
    METHODS,
    TRAINING,
    Training,
    compare,
    run_method,
    teacher_outputs,
)

COURSE = Path(__file__).resolve().parents[1] / "course"


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


# --------------------------------------------------------------------------- the table


def tiny_set(n=24, seed=0):
    x, y = batch(n, seed)
    return ImageSet(x, y, "synthetic-test", tuple(str(i) for i in range(10)), "generated")


def test_methods_table_builds_every_distiller_and_one_step_trains_its_student():
    torch.manual_seed(0)
    teacher = TeacherCNN().eval()
    x, y = batch()
    carried = teacher_outputs(METHODS.values(), teacher, x)
    assert list(METHODS) == ["no KD", "KD", "DKD", "FitNets", "AT", "RKD", "SP", "DML", "ONE"]
    for name, method in METHODS.items():
        distiller = method.distiller(teacher, seed=0)
        # the shared settings reach every method: Adam at TRAINING.lr, TRAINING's schedule
        assert distiller.lr_schedule == TRAINING.lr_schedule == "constant", name
        assert isinstance(distiller.optimizer, torch.optim.Adam), name
        assert distiller.optimizer.param_groups[0]["lr"] == TRAINING.lr, name
        before = [p.detach().clone() for p in distiller.student.parameters()]
        step = distiller.train_step(x, y, carried[name])
        assert torch.isfinite(torch.tensor(step["loss"])), name
        after = list(distiller.student.parameters())
        # the first convolution and the linear head (the last weight and bias) both learn
        for k in (0, -2, -1):
            assert not torch.equal(before[k], after[k].detach()), f"{name}: parameter {k} stayed"
    assert carried["no KD"] is None and carried["DML"] is None and carried["ONE"] is None
    assert carried["KD"] is carried["DKD"]  # computed once, shared
    assert carried["AT"] is carried["SP"] and carried["FitNets"].shape == (16, 64, 7, 7)
    assert not carried["KD"].requires_grad and not carried["AT"].requires_grad
    torch.testing.assert_close(carried["KD"], teacher(x))


def test_every_method_starts_from_the_same_student_for_a_seed():
    teacher = TeacherCNN().eval()
    reference = [
        p.detach().clone() for p in METHODS["no KD"].distiller(teacher, 5).student.parameters()
    ]
    other_seed = [p.detach() for p in METHODS["no KD"].distiller(teacher, 6).student.parameters()]
    assert not all(torch.equal(a, b) for a, b in zip(reference, other_seed, strict=True))
    for name, method in METHODS.items():
        student = method.distiller(teacher, 5).student  # DML: peer 0; ONE: trunk + branch 0
        params = [p.detach() for p in student.parameters()]
        assert len(params) == len(reference), name
        assert all(torch.equal(a, b) for a, b in zip(params, reference, strict=True)), name


def test_method_options_are_read_only_and_variants_are_checked():
    sp = METHODS["SP"]
    with pytest.raises(TypeError):
        sp.options["weight"] = 1.0  # the shared table cannot be changed by accident
    variant = sp.with_options(weight=300.0)
    assert variant.options["weight"] == 300.0 and sp.options["weight"] == 3000.0
    assert variant.distiller(TeacherCNN().eval(), 0).weight == 300.0
    with pytest.raises(ValueError, match="no options"):
        sp.with_options(wieght=1.0)
    hints = METHODS["FitNets"]
    a, b = (hints.distiller(TeacherCNN().eval(), 0).term for _ in range(2))
    assert isinstance(a, HintLoss) and a is not b  # a fresh regressor for every run
    assert "weight 3000" in sp.settings() and "make_term" not in sp.settings()
    assert sp.describe()["method"] == "SP"
    with pytest.raises(ValueError, match="lr_schedule"):
        Training(lr_schedule="step")


def test_compare_trains_every_method_per_seed_with_the_given_training():
    data = tiny_set()
    chosen = [METHODS["no KD"], METHODS["KD"], METHODS["AT"]]
    seen = []
    runs = compare(
        chosen,
        TeacherCNN().eval(),
        data,
        data,
        seeds=[0, 1],
        epochs=1,
        training=Training(lr_schedule="cosine", batch_size=8),
        on_run=seen.append,
    )
    assert [(r["seed"], r["method"]) for r in runs] == [(s, m.name) for s in (0, 1) for m in chosen]
    assert seen == runs
    for r in runs:
        assert 0 <= r["accuracy"] <= 1
        assert r["seconds_per_epoch"] > 0 and r["cpu_seconds_per_epoch"] > 0
    with pytest.raises(ValueError, match="seed"):
        compare(chosen, TeacherCNN(), data, data, seeds=[], epochs=1)


def test_notebook_07_imports_the_table_instead_of_copying_it():
    notebook = json.loads((COURSE / "07_beyond_logits.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    assert "from kdlab.recipes.beyond_logits import" in code
    for copied in ("FeatureDistiller(", "DecoupledDistiller(", "lr_schedule", "METHODS = "):
        assert copied not in code, f"notebook 07 builds its own table again ({copied})"
