"""Decoupled KD (TCKD + NCKD) against a float64 reference and its identity with plain KD."""

import numpy as np
import pytest
import torch

from kdlab.losses import decoupled_kd_loss, soft_target_loss


def rand(shape, seed, scale=1.0, grad=False):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(0, scale, shape), dtype=torch.float32, requires_grad=grad)


def dkd_reference(s, t, y, alpha, beta, temperature):
    """Per sample: binary KL on [p_target, 1 - p_target] and KL over the renormalised others."""
    s, t = s.detach().double().numpy() / temperature, t.detach().double().numpy() / temperature
    tckd = nckd = 0.0
    for b, label in enumerate(y.numpy()):
        ps, pt = np.exp(s[b] - s[b].max()), np.exp(t[b] - t[b].max())
        ps, pt = ps / ps.sum(), pt / pt.sum()
        bs, bt = np.array([ps[label], 1 - ps[label]]), np.array([pt[label], 1 - pt[label]])
        tckd += (bt * np.log(bt / bs)).sum()
        hs, ht = np.delete(ps, label), np.delete(pt, label)
        hs, ht = hs / hs.sum(), ht / ht.sum()
        nckd += (ht * np.log(ht / hs)).sum()
    return temperature**2 * (alpha * tckd + beta * nckd) / len(y)


@pytest.mark.parametrize("alpha,beta,temperature", [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0), (0, 1, 2)])
def test_dkd_matches_float64_reference(alpha, beta, temperature):
    s, t = rand((8, 10), 0, 2.0), rand((8, 10), 1, 2.0)
    y = torch.tensor(np.random.default_rng(2).integers(0, 10, 8))
    got = float(decoupled_kd_loss(s, t, y, alpha, beta, temperature))
    assert got == pytest.approx(dkd_reference(s, t, y, alpha, beta, temperature), rel=1e-5)


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_kd_is_tckd_plus_weighted_nckd(temperature):
    """Zhao et al.'s eq. 7 for one example: KD = TCKD + (1 - p_t^teacher) NCKD."""
    s, t, y = rand((1, 6), 3, 2.0), rand((1, 6), 4, 2.0), torch.tensor([2])
    p_target = float(torch.softmax(t / temperature, dim=1)[0, 2])
    dkd = decoupled_kd_loss(s, t, y, alpha=1.0, beta=1 - p_target, temperature=temperature)
    torch.testing.assert_close(dkd, soft_target_loss(s, t, temperature), rtol=1e-5, atol=1e-6)


def test_dkd_gradient_reaches_student_only_and_stays_finite_for_huge_logits():
    s, t = rand((4, 5), 5, 1e3, grad=True), rand((4, 5), 6, 1e3, grad=True)
    y = torch.tensor([0, 1, 2, 3])
    loss = decoupled_kd_loss(s, t, y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    assert t.grad is None, "gradient reached the teacher's logits"


def test_dkd_rejects_bad_arguments():
    s, t, y = rand((4, 5), 0), rand((4, 5), 1), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="beta"):
        decoupled_kd_loss(s, t, y, beta=-1)
    with pytest.raises(ValueError, match="temperature"):
        decoupled_kd_loss(s, t, y, temperature=0)
    with pytest.raises(ValueError, match="at least 3 classes"):
        decoupled_kd_loss(s[:, :2], t[:, :2], torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="targets"):
        decoupled_kd_loss(s, t, torch.tensor([0, 1, 2, 9]))
