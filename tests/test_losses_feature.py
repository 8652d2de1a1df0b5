"""FitNets hints and attention transfer against float64 references written here."""

import numpy as np
import pytest
import torch

from kdlab.losses import HintLoss, attention_map, attention_transfer_loss


def rand(shape, seed, scale=1.0, grad=False):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(0, scale, shape), dtype=torch.float32, requires_grad=grad)


def attention_reference(a: np.ndarray, p: float) -> np.ndarray:
    """vec(sum_c |A_c|^p) divided by its L2 norm, per sample."""
    q = (np.abs(a.astype(np.float64)) ** p).sum(axis=1).reshape(len(a), -1)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# ------------------------------------------------------------------ hint loss


@pytest.mark.parametrize("shape_s,shape_t", [((4, 3, 5, 5), (4, 8, 5, 5)), ((6, 5), (6, 2))])
def test_hint_loss_matches_float64_regressor_on_student_side(shape_s, shape_t):
    torch.manual_seed(0)
    hint = HintLoss(shape_s[1], shape_t[1])
    s, t = rand(shape_s, 1), rand(shape_t, 2)
    w = hint.regressor.weight.detach().double().numpy()[:, :, 0, 0]  # (teacher, student)
    b = hint.regressor.bias.detach().double().numpy()
    s64, t64 = s.double().numpy(), t.double().numpy()
    mapped = np.einsum("ts,bs...->bt...", w, s64)
    mapped += b.reshape((1, -1) + (1,) * (s64.ndim - 2))
    reference = ((mapped - t64) ** 2).mean()
    assert float(hint(s, t).detach()) == pytest.approx(reference, rel=1e-5)


def test_hint_loss_trains_student_and_regressor_not_teacher():
    hint = HintLoss(3, 8)
    s, t = rand((4, 3, 5, 5), 1, grad=True), rand((4, 8, 5, 5), 2, grad=True)
    hint(s, t).backward()
    assert t.grad is None, "gradient reached the teacher's features"
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert hint.regressor.weight.grad.abs().sum() > 0
    assert hint.regressor.weight.shape == (8, 3, 1, 1), "the regressor maps student -> teacher"


def test_hint_loss_is_zero_when_regressor_maps_exactly():
    hint = HintLoss(4, 4)
    with torch.no_grad():
        hint.regressor.weight.copy_(torch.eye(4)[:, :, None, None])
        hint.regressor.bias.zero_()
    s = rand((2, 4, 3, 3), 5)
    assert float(hint(s, s).detach()) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "s_shape,t_shape,match",
    [
        ((4, 3, 5, 5), (4, 8, 4, 4), "spatial size"),
        ((4, 3, 5, 5), (5, 8, 5, 5), "batch size"),
        ((4, 2, 5, 5), (4, 8, 5, 5), "built for 3 student"),
        ((4, 3), (4, 8, 5, 5), "2-D or both 4-D"),
        ((4, 3, 5), (4, 8, 5), "shape"),
    ],
)
def test_hint_loss_rejects_mismatched_features(s_shape, t_shape, match):
    with pytest.raises(ValueError, match=match):
        HintLoss(3, 8)(rand(s_shape, 0), rand(t_shape, 1))


@pytest.mark.parametrize("channels", [(0, 4), (4, -1), (2.5, 4), (True, 4)])
def test_hint_loss_rejects_bad_channels(channels):
    with pytest.raises(ValueError, match="positive int"):
        HintLoss(*channels)


# ------------------------------------------------------------------ attention transfer


@pytest.mark.parametrize("p", [1.0, 2.0, 4.0])
def test_attention_map_matches_float64_reference(p):
    a = rand((3, 6, 4, 5), 3, scale=2.0)
    got = attention_map(a, p).double().numpy()
    np.testing.assert_allclose(got, attention_reference(a.numpy(), p), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-6)


def test_attention_map_ignores_activation_scale_and_sign():
    a = rand((2, 5, 4, 4), 4)
    torch.testing.assert_close(attention_map(-7.5 * a), attention_map(a))


@pytest.mark.parametrize("channels", [(4, 4), (3, 16)])
def test_attention_transfer_loss_matches_float64_reference(channels):
    s, t = rand((5, channels[0], 6, 6), 6), rand((5, channels[1], 6, 6), 7, scale=3.0)
    diff = attention_reference(s.numpy(), 2) - attention_reference(t.numpy(), 2)
    reference = np.linalg.norm(diff, axis=1).mean()
    assert float(attention_transfer_loss(s, t)) == pytest.approx(reference, rel=1e-5)


def test_attention_transfer_gradient_reaches_student_only():
    s, t = rand((4, 3, 5, 5), 1, grad=True), rand((4, 8, 5, 5), 2, grad=True)
    attention_transfer_loss(s, t).backward()
    assert t.grad is None, "gradient reached the teacher's features"
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_attention_transfer_rejects_bad_inputs():
    with pytest.raises(ValueError, match="spatial size"):
        attention_transfer_loss(rand((2, 3, 5, 5), 0), rand((2, 3, 4, 4), 1))
    with pytest.raises(ValueError, match=r"\(batch, channels, H, W\)"):
        attention_transfer_loss(rand((2, 3), 0), rand((2, 3), 1))
    with pytest.raises(ValueError, match="p must be"):
        attention_map(rand((2, 3, 4, 4), 0), p=0)
