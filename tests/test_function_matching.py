"""Views, mixup and the four ways of producing the teacher's targets (Beyer et al. 2022):
kdlab.distill.views, and the track's set-up in kdlab.recipes.patient_teacher."""

import pytest
import torch
from torch import nn

from kdlab.data import synthetic_digits
from kdlab.distill import Distiller, freeze
from kdlab.distill.views import MODES, TeachingBatches, mixup, random_views
from kdlab.losses import soft_target_loss
from kdlab.models import StudentMLP
from kdlab.recipes.patient_teacher import distil_and_score, distil_with_views, transfer_setup


def images(n=16, seed=0):
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def linear_teacher():
    torch.manual_seed(0)
    linear = nn.Linear(28 * 28, 10)
    with torch.no_grad():
        linear.weight.mul_(10)  # confident enough that its soft targets are far from uniform
    return freeze(nn.Sequential(nn.Flatten(), linear))


def test_identity_view_returns_the_image():
    x = images()
    out = random_views(x, torch.Generator().manual_seed(0), min_scale=1, max_shift=0, flip=False)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=0)


def test_flip_only_views_are_the_image_or_its_mirror_and_both_occur():
    x = images(64)
    out = random_views(x, torch.Generator().manual_seed(1), min_scale=1, max_shift=0)
    same = (out - x).abs().flatten(1).amax(1) < 1e-4
    mirrored = (out - x.flip(-1)).abs().flatten(1).amax(1) < 1e-4
    assert bool((same | mirrored).all())
    assert 0 < int(mirrored.sum()) < len(x)


def test_views_are_reproducible_from_the_seed_and_differ_between_draws():
    x = images()
    a = random_views(x, torch.Generator().manual_seed(3))
    b = random_views(x, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    g = torch.Generator().manual_seed(3)
    first, second = random_views(x, g), random_views(x, g)
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, x)


def test_mixup_of_identical_images_changes_nothing_and_stays_between_partners():
    x = images(1).expand(8, -1, -1, -1).clone()
    torch.testing.assert_close(mixup(x, torch.Generator().manual_seed(0)), x)
    constant = torch.arange(8.0).view(8, 1, 1, 1).expand(8, 1, 4, 4).contiguous()
    mixed = mixup(constant, torch.Generator().manual_seed(0))
    assert bool((mixed.flatten(1).std(1) < 1e-6).all())  # each image is still a constant
    assert bool((mixed >= 0).all() and (mixed <= 7).all())
    assert not torch.allclose(mixed, constant)


@pytest.mark.parametrize("bad", [torch.randn(3, 28, 28), torch.zeros(0, 1, 4, 4), "x"])
def test_views_refuse_what_is_not_a_batch_of_images(bad):
    with pytest.raises(ValueError, match="images"):
        random_views(bad, torch.Generator())


def first_batch(mode, seed=0):
    teacher, x = linear_teacher(), images(40)
    y = torch.arange(40) % 10
    batches = TeachingBatches(teacher, x, y, mode, batch_size=16, seed=seed)
    assert len(batches) == 3
    view, labels, logits = next(iter(batches))
    return teacher, x, y, view, labels, logits


def test_fixed_teacher_labels_the_clean_image_not_the_students_view():
    teacher, x, _, view, _, logits = first_batch("fixed")
    clean = {tuple(row.tolist()) for row in teacher(x).round(decimals=4)}
    assert all(tuple(row.tolist()) in clean for row in logits.round(decimals=4))
    assert not torch.allclose(logits, teacher(view), atol=1e-4)


@pytest.mark.parametrize("mode", ["consistent", "function_matching"])
def test_consistent_modes_label_exactly_the_students_view(mode):
    teacher, x, _, view, _, logits = first_batch(mode)
    torch.testing.assert_close(logits, teacher(view))


def test_independent_views_differ_from_the_students():
    teacher, _, _, view, _, logits = first_batch("independent")
    assert not torch.allclose(logits, teacher(view), atol=1e-4)


def test_function_matching_views_are_mixed():
    _, x, _, view, _, _ = first_batch("function_matching")
    _, _, _, consistent_view, _, _ = first_batch("consistent")
    assert not torch.allclose(view, consistent_view)


def test_each_pass_is_a_new_epoch_with_new_views():
    batches = TeachingBatches(
        linear_teacher(), images(16), torch.zeros(16, dtype=torch.long), "consistent", batch_size=16
    )
    (a, *_), (b, *_) = next(iter(batches)), next(iter(batches))
    assert not torch.allclose(a, b)


def test_teaching_batches_refuse_bad_settings():
    teacher, x, y = linear_teacher(), images(4), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="mode must be one of"):
        TeachingBatches(teacher, x, y, "consistant")
    with pytest.raises(ValueError, match="labels"):
        TeachingBatches(teacher, x, y[:3], "fixed")
    with pytest.raises(ValueError, match="train mode"):
        TeachingBatches(nn.Linear(784, 10).train(), x, y, "fixed")


# Not "independent": with its noisy targets a student need not get closer on clean images in
# a few steps (the paper's point); its batches are checked above.
@pytest.mark.parametrize("mode", [m for m in MODES if m != "independent"])
def test_distilling_in_each_mode_brings_the_student_closer_to_the_teacher(mode):
    teacher = linear_teacher()
    digits = synthetic_digits(256, seed=0)  # smooth images, so views stay near the data
    x, y = digits.x, digits.y
    student = StudentMLP()

    def gap():
        with torch.no_grad():
            return float(soft_target_loss(student(x), teacher(x), temperature=1.0))

    before = gap()
    batches = TeachingBatches(teacher, x, y, mode, batch_size=64, seed=0)
    Distiller(student, teacher, temperature=1.0, alpha=0.0, lr=3e-3).fit(
        batches, epochs=20, progress=False
    )
    assert gap() < 0.9 * before


def test_transfer_setup_and_a_scored_run_are_the_plain_distillation_timed_and_scored():
    setup = transfer_setup("fashion-mnist", 96, fast=True, seed=0)
    assert len(setup.train) == 96 and 0 < setup.teacher_accuracy <= 1
    assert not setup.teacher.training
    scored = distil_and_score(setup, "consistent", 2, seed=0, batch_size=32)
    assert len(scored["val_accuracy"]) == 2 and scored["seconds"] > 0
    assert scored["val_accuracy"] == [100 * a for a in scored["history"]["val_accuracy"]]
    plain, _ = distil_with_views(
        setup.teacher, setup.train, setup.splits.val, "consistent", 2, seed=0, batch_size=32
    )
    for key, value in plain.state_dict().items():  # the same student from the same seed
        torch.testing.assert_close(value, scored["student"].state_dict()[key], msg=key)
