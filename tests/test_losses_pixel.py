"""kdlab.losses.pixel_distillation_loss against a float64 reference with random ignore masks."""

import numpy as np
import pytest
import torch

from kdlab.losses import pixel_distillation_loss, soft_target_loss

IGNORE = 255


def log_softmax64(z: np.ndarray, axis: int = 1) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def pixel_reference(s, t, temperature, targets=None) -> float:
    """T^2 * sum over labelled pixels of sum_c p_c (log p_c - log q_c), over their count."""
    log_q = log_softmax64(s.detach().double().numpy() / temperature)
    log_p = log_softmax64(t.detach().double().numpy() / temperature)
    kl = (np.exp(log_p) * (log_p - log_q)).sum(axis=1)  # one value per pixel
    valid = np.ones(kl.shape, bool) if targets is None else targets.numpy() != IGNORE
    return float(temperature**2 * kl[valid].sum() / valid.sum())


def case(shape=(3, 5, 6, 7), scale=2.0, ignored=0.3, seed=0):
    """Random student and teacher logits and targets with a random share of ignored pixels."""
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(shape, generator=g)
    t = scale * torch.randn(shape, generator=g)
    y = torch.randint(0, shape[1], (shape[0], *shape[2:]), generator=g)
    y[torch.rand(y.shape, generator=g) < ignored] = IGNORE
    return s, t, y


@pytest.mark.parametrize("temperature", [1.0, 2.0, 8.0])
@pytest.mark.parametrize("shape", [(3, 5, 6, 7), (2, 6, 16, 16), (4, 3, 10)])
@pytest.mark.parametrize("ignored", [0.0, 0.3, 0.9])
def test_matches_float64_reference_over_labelled_pixels(temperature, shape, ignored):
    s, t, y = case(shape, ignored=ignored, seed=len(shape) + int(10 * ignored))
    got = float(pixel_distillation_loss(s, t, temperature, y))
    ref = pixel_reference(s, t, temperature, y)
    assert got == pytest.approx(ref, rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_without_targets_every_pixel_counts(temperature):
    s, t, _ = case(seed=3)
    got = float(pixel_distillation_loss(s, t, temperature))
    assert got == pytest.approx(pixel_reference(s, t, temperature), rel=1e-5)


def test_ignored_pixels_do_not_change_the_loss():
    s, t, y = case(ignored=0.5, seed=4)
    before = pixel_distillation_loss(s, t, 2.0, y)
    ignored = (y == IGNORE).unsqueeze(1).expand_as(s)
    s2 = torch.where(ignored, 50 * torch.randn_like(s), s)  # garbage where there is no label
    t2 = torch.where(ignored, -50 * torch.randn_like(t), t)
    assert torch.allclose(pixel_distillation_loss(s2, t2, 2.0, y), before, rtol=1e-6)
    # while the same change moves the loss over all pixels: the mask is what hides it
    assert not torch.allclose(
        pixel_distillation_loss(s2, t2, 2.0), pixel_distillation_loss(s, t, 2.0)
    )


def test_average_is_over_labelled_pixels_not_all_pixels():
    s, t, y = case(ignored=0.5, seed=5)
    got = float(pixel_distillation_loss(s, t, 3.0, y))
    valid = y != IGNORE
    # Hinton's loss on the labelled pixels taken as a batch of examples: the same mean
    pixels_s = s.movedim(1, -1)[valid]
    pixels_t = t.movedim(1, -1)[valid]
    assert got == pytest.approx(float(soft_target_loss(pixels_s, pixels_t, 3.0)), rel=1e-5)
    summed = pixel_reference(s, t, 3.0, y) * int(valid.sum())
    assert got != pytest.approx(summed / y.numel(), rel=1e-3)  # dividing by all pixels


@pytest.mark.parametrize("temperature", [0.5, 2.0, 5.0])
def test_scaled_by_temperature_squared(temperature):
    s, t, y = case(seed=6)
    got = float(pixel_distillation_loss(s, t, temperature, y))
    # the KL of the softened distributions, taken directly with torch's kl_div, times T^2
    valid = y != IGNORE
    log_q = torch.log_softmax(s.double() / temperature, 1)
    log_p = torch.log_softmax(t.double() / temperature, 1)
    kl = torch.nn.functional.kl_div(log_q, log_p, reduction="none", log_target=True).sum(1)
    kl_mean = float(kl[valid].mean())
    assert got == pytest.approx(temperature**2 * kl_mean, rel=1e-5)
    assert got / kl_mean == pytest.approx(temperature**2, rel=1e-5)


def test_gradient_matches_formula_and_teacher_gets_none():
    """d loss / d s = T * (q - p) / |valid| at labelled pixels, and 0 where ignored."""
    temperature = 3.0
    s, t, y = case(seed=7)
    s.requires_grad_()
    t.requires_grad_()
    pixel_distillation_loss(s, t, temperature, y).backward()
    assert t.grad is None
    valid = (y != IGNORE).unsqueeze(1).double()
    q = torch.softmax(s.detach().double() / temperature, 1)
    p = torch.softmax(t.detach().double() / temperature, 1)
    expected = temperature * (q - p) * valid / valid.sum()
    assert torch.allclose(s.grad.double(), expected, atol=1e-7)


def test_identical_logits_give_zero_and_large_logits_stay_finite():
    s, _, y = case(scale=1e4, seed=8)
    assert float(pixel_distillation_loss(s, s.clone(), 2.0, y)) == pytest.approx(0.0, abs=1e-4)
    _, t, _ = case(scale=1e4, seed=9)
    assert torch.isfinite(pixel_distillation_loss(s, t, 1.0, y))


def test_clear_errors():
    s, t, y = case()
    with pytest.raises(ValueError, match="same shape"):
        pixel_distillation_loss(s, t[:, :4], 2.0, y)
    with pytest.raises(ValueError, match="temperature"):
        pixel_distillation_loss(s, t, 0.0, y)
    with pytest.raises(ValueError, match="per-pixel logits"):
        pixel_distillation_loss(s[:, :, 0, 0], t[:, :, 0, 0], 2.0)
    with pytest.raises(ValueError, match="targets must have shape"):
        pixel_distillation_loss(s, t, 2.0, y[:, :3])
    with pytest.raises(ValueError, match="integer class indices"):
        pixel_distillation_loss(s, t, 2.0, y.float())
    bad = y.clone()
    bad[0, 0, 0] = 7  # neither a class nor the ignore index
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 4\]"):
        pixel_distillation_loss(s, t, 2.0, bad)
    with pytest.raises(ValueError, match="every pixel of targets equals ignore_index"):
        pixel_distillation_loss(s, t, 2.0, torch.full_like(y, IGNORE))
    with pytest.raises(ValueError, match="NaN"):
        pixel_distillation_loss(s * float("nan"), t, 2.0, y)


def test_other_ignore_index():
    s, t, y = case(ignored=0.0, seed=10)
    y[:, :2] = -1
    got = float(pixel_distillation_loss(s, t, 2.0, y, ignore_index=-1))
    assert got == pytest.approx(
        pixel_reference(s, t, 2.0, torch.where(y == -1, IGNORE, y)), rel=1e-5
    )
