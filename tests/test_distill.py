"""kdlab.distill: the teacher stays frozen, the loss is the documented mix, runs repeat."""

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from kdlab.data import batches, synthetic_digits
from kdlab.distill import Distiller, freeze
from kdlab.losses import distillation_loss
from kdlab.models import MLP, StudentMLP, TeacherCNN, logits_of


def small_data(n: int = 96, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return x, y


def student(seed: int = 0, dropout: float = 0.0) -> MLP:
    torch.manual_seed(seed)
    return MLP((16,), dropout=dropout)


def teacher_mlp(seed: int = 1) -> MLP:
    torch.manual_seed(seed)
    return MLP((32,))


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_teacher_frozen_and_unchanged_while_student_learns():
    torch.manual_seed(0)
    teacher = TeacherCNN(width=4)  # batch norm: its running statistics move in train mode
    teacher.train()
    before_teacher, s = state(teacher), student()
    before_student = state(s)
    distiller = Distiller(s, teacher, device="cpu")
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    x, y = small_data()
    distiller.fit(batches(x, y, batch_size=32), epochs=1, progress=False)
    after_teacher = teacher.state_dict()
    for key, value in before_teacher.items():
        assert torch.equal(value, after_teacher[key]), key
    assert all(p.grad is None for p in teacher.parameters())
    changed = [not torch.equal(v, s.state_dict()[k]) for k, v in before_student.items()]
    assert all(changed)


def test_freeze_sets_eval_and_no_grad():
    model = freeze(MLP((8,), dropout=0.5))
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert all(not m.training for m in model.modules())


def test_teacher_switched_to_train_mode_mid_training_raises():
    distiller = Distiller(student(), teacher_mlp(), device="cpu")
    x, y = small_data()

    def unfreeze(epoch, record):
        distiller.teacher.train()

    with pytest.raises(RuntimeError, match="train mode"):
        distiller.fit(batches(x, y, batch_size=32), epochs=2, progress=False, callbacks=[unfreeze])
    assert len(distiller.history) == 1


def test_without_teacher_trains_on_labels():
    s = student()
    reference = copy.deepcopy(s)
    distiller = Distiller(s, None, alpha=0.3, device="cpu")
    assert distiller.alpha == 1.0
    x, y = small_data(32)
    step = distiller.train_step(x, y)
    assert "soft_loss" not in step
    assert step["loss"] == step["hard_loss"]
    with torch.no_grad():
        expected = float(F.cross_entropy(reference(x), y))
    assert step["loss"] == pytest.approx(expected, rel=1e-6)


def test_history_records_every_epoch():
    s, x, y = student(), *small_data()
    xv, yv = small_data(40, seed=5)
    distiller = Distiller(s, teacher_mlp(), temperature=3.0, alpha=0.25, device="cpu")
    seen = []
    history = distiller.fit(
        batches(x, y, batch_size=32),
        epochs=2,
        val=batches(xv, yv, batch_size=16),
        progress=False,
        callbacks=[lambda epoch, record: seen.append(epoch)],
    )
    assert seen == [0, 1] and len(history) == 2
    for key in ("loss", "hard_loss", "soft_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert len(history[key]) == 2, key
    for record in history.epochs:
        # the mix is linear, so the epoch means mix the same way as the batch losses
        mixed = 0.25 * record["hard_loss"] + 0.75 * record["soft_loss"]
        assert record["loss"] == pytest.approx(mixed, rel=1e-5)
        assert 0 <= record["val_accuracy"] <= 1 and record["seconds"] > 0
    s.eval()
    with torch.no_grad():
        accuracy = float((s(xv).argmax(1) == yv).double().mean())
        val_loss = float(F.cross_entropy(s(xv).double(), yv))
    assert history.last["val_accuracy"] == pytest.approx(accuracy)
    assert history.last["val_loss"] == pytest.approx(val_loss, rel=1e-5)


def test_first_step_loss_is_the_documented_mix():
    x, y = small_data(32)
    s, teacher = student(), teacher_mlp().eval()
    with torch.no_grad():
        expected = distillation_loss(s(x), teacher(x), y, 4.0, 0.1)
    step = Distiller(s, teacher, temperature=4.0, alpha=0.1, device="cpu").train_step(x, y)
    assert step["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_precomputed_teacher_logits_match_live_teacher():
    x, y = small_data(48)
    teacher = teacher_mlp().eval()
    logits = logits_of(teacher, x)
    live = Distiller(student(), teacher, temperature=2.0, alpha=0.5, device="cpu")
    stored = Distiller(student(), teacher, temperature=2.0, alpha=0.5, device="cpu")
    first_live = live.train_step(x, y)
    first_stored = stored.train_step(x, y, logits)
    assert first_live == pytest.approx(first_stored, rel=1e-6)
    for a, b in zip(live.student.parameters(), stored.student.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    history = stored.fit(batches(x, y, logits, batch_size=16), epochs=1, progress=False)
    assert len(history["soft_loss"]) == 1


def test_precomputed_teacher_logits_are_used_as_given():
    x, y = small_data(48)
    s, teacher = student(), teacher_mlp().eval()
    other = torch.randn(48, 10, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        expected = distillation_loss(s(x), other, y, 2.0, 0.5)
    step = Distiller(s, teacher, temperature=2.0, alpha=0.5, device="cpu").train_step(x, y, other)
    assert step["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_batches_with_logits_but_no_teacher_raise():
    x, y = small_data(32)
    distiller = Distiller(student(), None, device="cpu")
    with pytest.raises(ValueError, match="without a teacher"):
        distiller.fit(batches(x, y, torch.randn(32, 10), batch_size=16), epochs=1, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Distiller(student(), teacher_mlp(), device="cpu", **kwargs)


def test_bad_fit_arguments_raise():
    x, y = small_data(32)
    distiller = Distiller(student(), teacher_mlp(), device="cpu")
    with pytest.raises(ValueError, match="epochs"):
        distiller.fit(batches(x, y, batch_size=16), epochs=0, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        distiller.fit([], epochs=1, progress=False)
    with pytest.raises(ValueError, match="batches must be"):
        distiller.fit([(x, y, y, y)], epochs=1, progress=False)
    s = student()
    with pytest.raises(ValueError, match="same module"):
        Distiller(s, s)


def run(seed: int) -> tuple[dict[str, torch.Tensor], list[float]]:
    x, y = small_data(64)
    distiller = Distiller(student(dropout=0.3), teacher_mlp(), seed=seed, device="cpu")
    history = distiller.fit(batches(x, y, batch_size=16, shuffle=True), epochs=2, progress=False)
    return state(distiller.student), history["loss"]


def test_same_seed_same_result_on_cpu():
    weights_a, losses_a = run(seed=3)
    weights_b, losses_b = run(seed=3)
    weights_c, _ = run(seed=4)
    assert losses_a == losses_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    assert not all(torch.equal(weights_a[k], weights_c[k]) for k in weights_a)


def test_training_on_synthetic_digits_beats_chance():
    train, val = synthetic_digits(600, seed=0), synthetic_digits(300, seed=1)
    teacher = MLP((64,))
    history = Distiller(teacher, seed=0, device="cpu").fit(
        train.loader(50, shuffle=True), epochs=3, val=val.loader(300), progress=False
    )
    assert history.last["val_accuracy"] > 0.6  # chance is 0.1
    # soft targets alone (alpha=0) carry the teacher's knowledge to a fresh student
    distilled = Distiller(student(), teacher, alpha=0.0, temperature=4.0, seed=0, device="cpu")
    history = distilled.fit(
        train.loader(50, shuffle=True), epochs=3, val=val.loader(300), progress=False
    )
    assert history.last["val_accuracy"] > 0.5


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_fit():
    data = synthetic_digits(64, seed=0)
    student = StudentMLP((16,))
    distiller = Distiller(student, lr=1e-2, lr_schedule="cosine", seed=0)
    seen = []
    distiller.fit(
        data.loader(16),
        2,
        progress=False,
        callbacks=[lambda epoch, record: seen.append(distiller.optimizer.param_groups[0]["lr"])],
    )
    # 4 steps per epoch, 8 in all: cos annealing gives lr * (1 + cos(pi * t / 8)) / 2
    expected = [1e-2 * (1 + math.cos(math.pi * t / 8)) / 2 for t in (4, 8)]
    assert seen == pytest.approx(expected, abs=1e-12)


def test_unknown_lr_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule"):
        Distiller(StudentMLP((8,)), lr_schedule="step")


def test_a_frozen_student_is_refused_with_the_fix():
    student = StudentMLP().requires_grad_(False)
    with pytest.raises(ValueError, match=r"requires_grad_\(True\)"):
        Distiller(student)


def test_linear_schedule_warms_up_then_decays_to_zero_once_per_batch():
    data = synthetic_digits(64, seed=0)
    distiller = Distiller(StudentMLP((16,)), lr=1e-2, lr_schedule="linear", warmup=0.25, seed=0)
    seen = []
    original = distiller.train_step

    def spy(*batch):
        seen.append(distiller.optimizer.param_groups[0]["lr"])
        return original(*batch)

    distiller.train_step = spy
    distiller.fit(data.loader(16), 2, progress=False)
    # 8 steps, int(0.25 * 8) = 2 of warm-up: lr * min((t + 1) / 2, (8 - t) / 6) at step t
    expected = [1e-2 * f for f in (0.5, 1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert distiller.optimizer.param_groups[0]["lr"] == 0.0


def test_schedules_need_the_number_of_batches_and_a_valid_warmup():
    x, y = small_data(32)
    distiller = Distiller(student(), lr_schedule="linear", device="cpu")
    with pytest.raises(ValueError, match="len()"):
        distiller.fit((b for b in batches(x, y, batch_size=16)), 1, progress=False)
    with pytest.raises(ValueError, match="warmup"):
        Distiller(student(), lr_schedule="linear", warmup=1.0)


class WeightedDistiller(Distiller):
    """A task with other batches, through the hooks alone: ``(x, y, weight)`` with one
    weight per example, a weighted cross-entropy named ``weighted_ce``, examples counted
    by their total weight, no training accuracy, and batches of zero weight skipped."""

    loss_key = "weighted_ce"

    def prepare_batch(self, batch):
        return None if float(batch[2].sum()) == 0 else self.to_device(batch)

    def loss_parts(self, x, y, weight):
        logits = self.student(x)
        loss = (F.cross_entropy(logits, y, reduction="none") * weight).sum() / weight.sum()
        return logits, {"weighted_ce": loss}

    def examples(self, batch):
        return int(batch[2].sum())

    def train_accuracy(self, output, batch):
        return None


@pytest.mark.parametrize("progress", [False, True])
def test_hooks_define_batches_parts_counts_and_skips(progress):
    x, y = small_data(48)
    weight = torch.tensor([1.0, 2.0, 3.0, 4.0] * 4 + [0.0] * 16 + [2.0] * 16)
    data = [(x[i : i + 16], y[i : i + 16], weight[i : i + 16]) for i in (0, 16, 32)]
    s, reference = student(), student()
    distiller = WeightedDistiller(s, lr=1e-2, device="cpu")
    history = distiller.fit(data, 1, progress=progress)
    assert set(history.last) == {"weighted_ce", "seconds"}  # no train_accuracy, no hard_loss
    # by hand: the same two steps (the zero-weight batch is skipped), weighed by weight
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-2)
    total, count = 0.0, 0
    for xb, yb, wb in (data[0], data[2]):
        loss = (F.cross_entropy(reference(xb), yb, reduction="none") * wb).sum() / wb.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total, count = total + float(loss.detach()) * int(wb.sum()), count + int(wb.sum())
    assert history.last["weighted_ce"] == pytest.approx(total / count, rel=1e-6)
    for a, b in zip(s.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert {int(v["step"]) for v in distiller.optimizer.state.values()} == {2}


def test_to_device_moves_tensors_and_keeps_the_rest():
    distiller = Distiller(student(), device="cpu")
    x = torch.zeros(2, 3)
    moved = distiller.to_device((x, None, "label"))
    assert moved[0].device.type == "cpu" and moved[1:] == (None, "label")
