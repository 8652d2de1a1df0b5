"""kdlab.models.unet and kdlab.distill.segmentation: U-Net shapes and checks, the slim
student's size, the distiller, the class weights."""

import copy
import statistics

import pytest
import torch
import torch.nn.functional as F

from kdlab.bench import count_parameters, flops
from kdlab.distill import SegmentationDistiller, median_frequency_weights
from kdlab.losses import pixel_distillation_loss
from kdlab.models import SlimUNet, UNet

IGNORE = 255


def tiny_batch(n=4, classes=3, size=16, seed=0):
    """Images whose class is readable from the pixel colour, with some unlabelled pixels."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n, size // 4, size // 4), generator=g)
    y = y.repeat_interleave(4, 1).repeat_interleave(4, 2)
    x = F.one_hot(y, 3).permute(0, 3, 1, 2).float() + 0.1 * torch.randn(
        n, 3, size, size, generator=g
    )
    y[:, :2] = IGNORE
    return x, y


@pytest.mark.parametrize("model_cls", [UNet, SlimUNet])
@pytest.mark.parametrize(("depth", "size"), [(1, (6, 10)), (2, (16, 12)), (3, (24, 32))])
@pytest.mark.parametrize("bilinear", [True, False])
def test_logits_have_the_input_size(model_cls, depth, size, bilinear):
    torch.manual_seed(0)
    model = model_cls(in_channels=3, num_classes=5, base=4, depth=depth, bilinear=bilinear)
    out = model(torch.randn(2, 3, *size))
    assert out.shape == (2, 5, *size)


def test_default_sizes_and_other_channel_counts():
    assert UNet()(torch.randn(1, 3, 32, 32)).shape == (1, 6, 32, 32)
    assert SlimUNet()(torch.randn(1, 3, 32, 32)).shape == (1, 6, 32, 32)
    assert UNet(in_channels=1, num_classes=2, base=4, depth=2)(torch.randn(1, 1, 8, 8)).shape == (
        1,
        2,
        8,
        8,
    )


def test_size_not_divisible_by_two_to_the_depth_is_a_clear_error():
    model = UNet(base=4, depth=3)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*depth = 8 .* got 20x16"):
        model(torch.randn(1, 3, 20, 16))
    with pytest.raises(ValueError, match=r"shape \(batch, 3, H, W\)"):
        model(torch.randn(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"shape \(batch, 3, H, W\)"):
        model(torch.randn(3, 16, 16))


@pytest.mark.parametrize(
    "kwargs", [{"depth": 0}, {"base": 0}, {"num_classes": 1}, {"in_channels": 2.0}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        UNet(**kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"base": 8, "separable": True}])
def test_student_is_much_smaller_and_cheaper_than_the_teacher(kwargs):
    teacher, student = UNet(), SlimUNet(**kwargs)
    assert count_parameters(student) <= 0.25 * count_parameters(teacher)
    assert flops(student, (3, 64, 64)) <= 0.25 * flops(teacher, (3, 64, 64))
    convs = [m for m in student.modules() if isinstance(m, torch.nn.Conv2d)]
    depthwise = [m for m in convs if m.groups > 1]
    if kwargs.get("separable"):  # a 3x3 depthwise filter per channel
        assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    else:  # a quarter of the teacher's channels, plain convolutions
        assert not depthwise
        assert convs[0].out_channels == teacher.stem[0][0].out_channels // 4


def models(classes=3, seed=0):
    torch.manual_seed(seed)
    teacher = UNet(num_classes=classes, base=8, depth=2)
    student = SlimUNet(num_classes=classes, base=4, depth=2)
    return teacher, student


def test_distiller_freezes_the_teacher_and_lowers_the_loss():
    teacher, student = models()
    teacher.train()
    before = copy.deepcopy(teacher.state_dict())
    distiller = SegmentationDistiller(student, teacher, num_classes=3, alpha=0.5, lr=1e-2)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x, y = tiny_batch()
    losses = [distiller.train_step(x, y)["loss"] for _ in range(15)]
    assert losses[-1] < 0.85 * losses[0], losses
    for key, value in teacher.state_dict().items():  # batch-norm statistics included
        assert torch.equal(value, before[key]), key
    assert all(p.grad is None for p in teacher.parameters())


def test_distiller_loss_is_the_documented_mix():
    teacher, student = models(seed=1)
    alpha, temperature = 0.3, 2.5
    distiller = SegmentationDistiller(
        student, teacher, num_classes=3, alpha=alpha, temperature=temperature
    )
    x, y = tiny_batch(seed=1)
    _, parts = distiller.loss_parts(x, y)
    with torch.no_grad():
        s, t = student(x).double(), teacher(x).double()
    valid = y != IGNORE
    # cross-entropy over labelled pixels: -log softmax at the true class, averaged
    log_q = torch.log_softmax(s, 1)
    ce = -log_q.gather(1, y.clamp(max=2).unsqueeze(1)).squeeze(1)[valid].mean()
    kd = pixel_distillation_loss(s, t, temperature, y)
    assert float(parts["hard_loss"].detach()) == pytest.approx(float(ce), rel=1e-5)
    assert float(parts["soft_loss"].detach()) == pytest.approx(float(kd), rel=1e-5)
    assert float(parts["loss"].detach()) == pytest.approx(
        float(alpha * ce + (1 - alpha) * kd), rel=1e-5
    )


def test_fit_records_pixel_scores_over_labelled_pixels():
    teacher, student = models(seed=2)
    x, y = tiny_batch(n=8, seed=2)
    data = [(x[:4], y[:4]), (x[4:], y[4:])]
    distiller = SegmentationDistiller(student, None, num_classes=3, lr=1e-2)
    history = distiller.fit(data, epochs=2, val=data, progress=False)
    assert len(history) == 2
    for key in ("loss", "train_accuracy", "val_loss", "val_accuracy", "val_miou"):
        assert len(history[key]) == 2, key
    with torch.no_grad():
        student.eval()
        pred = torch.cat([student(xb).argmax(1) for xb, _ in data])
    valid = y != IGNORE
    assert history.last["val_accuracy"] == pytest.approx(float((pred == y)[valid].float().mean()))
    assert 0 <= history.last["val_miou"] <= 1
    assert "soft_loss" not in history.last  # no teacher: cross-entropy alone


def test_distiller_arguments():
    teacher, student = models()
    with pytest.raises(ValueError, match="ignore_index=2 is a class index"):
        SegmentationDistiller(student, teacher, num_classes=3, ignore_index=2)
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationDistiller(student, teacher, num_classes=1)
    with pytest.raises(ValueError, match="temperature"):
        SegmentationDistiller(student, teacher, num_classes=3, temperature=0)


def reference_median_frequency(labels, classes, ignore=IGNORE):
    """Eigen and Fergus's weights written out image by image with Python numbers."""
    pixels, image_pixels = [0] * classes, [0] * classes
    for image in labels.tolist():
        flat = [v for row in image for v in row if v != ignore]
        for c in set(flat):
            pixels[c] += flat.count(c)
            image_pixels[c] += len(flat)
    frequency = {c: pixels[c] / image_pixels[c] for c in range(classes) if pixels[c]}
    median = statistics.median(frequency.values())
    return [median / frequency[c] if c in frequency else 0.0 for c in range(classes)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_median_frequency_weights_match_the_formula(seed):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (6, 5, 7), generator=g)
    labels[labels == 3] = torch.randint(0, 2, (int((labels == 3).sum()),), generator=g)
    labels[0, 0, :3] = 3  # a rare class, in one image only
    labels[1:3, 2] = IGNORE
    labels[4] = 2  # an image of one class
    weights = median_frequency_weights(labels, num_classes=5)
    expected = reference_median_frequency(labels, 5)
    assert weights.tolist() == pytest.approx(expected, rel=1e-6)
    assert weights[4] == 0  # absent class
    assert weights[3] == max(weights)  # the rarest class weighs most


def test_median_frequency_weights_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        median_frequency_weights(torch.zeros(2, 4, 4, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="class 7, outside 0..5"):
        median_frequency_weights(torch.full((1, 4, 4), 7), 6)
    with pytest.raises(ValueError, match="every pixel"):
        median_frequency_weights(torch.full((1, 4, 4), IGNORE), 6)
    with pytest.raises(ValueError, match="class maps"):
        median_frequency_weights(torch.zeros(4), 6)


def test_class_weights_weigh_the_cross_entropy_by_true_class():
    teacher, student = models(seed=3)
    weights = [0.5, 2.0, 3.0]
    distiller = SegmentationDistiller(
        student, teacher, num_classes=3, alpha=0.4, temperature=2.0, class_weights=weights
    )
    x, y = tiny_batch(seed=3)
    _, parts = distiller.loss_parts(x, y)
    with torch.no_grad():
        s, t = student(x).double(), teacher(x).double()
    valid = y != IGNORE
    truth = y.clamp(max=2)
    nll = -torch.log_softmax(s, 1).gather(1, truth.unsqueeze(1)).squeeze(1)
    w = torch.tensor(weights, dtype=torch.float64)[truth]
    ce = (w * nll)[valid].sum() / w[valid].sum()
    kd = pixel_distillation_loss(s, t, 2.0, y)  # the KD term is not weighted
    assert float(parts["hard_loss"].detach()) == pytest.approx(float(ce), rel=1e-5)
    assert float(parts["loss"].detach()) == pytest.approx(float(0.4 * ce + 0.6 * kd), rel=1e-5)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 2.0], "3 finite numbers"),
        ([1.0, float("nan"), 1.0], "finite"),
        ([0, 0, 0], "not all 0"),
        ([1.0, -1.0, 1.0], ">= 0"),
    ],
)
def test_class_weights_are_checked(weights, message):
    _, student = models()
    with pytest.raises(ValueError, match=message):
        SegmentationDistiller(student, None, num_classes=3, class_weights=weights)
