"""RKD distance/angle and similarity-preserving KD against float64 loop references."""

import itertools

import numpy as np
import pytest
import torch

from kdlab.losses import rkd_angle_loss, rkd_distance_loss, rkd_loss, similarity_preserving_loss


def rand(shape, seed, scale=1.0, grad=False):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(0, scale, shape), dtype=torch.float32, requires_grad=grad)


def huber(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(a - b)
    return np.where(d < 1, 0.5 * d**2, d - 0.5)


def flat64(x: torch.Tensor) -> np.ndarray:
    return x.detach().double().numpy().reshape(len(x), -1)


def distance_reference(s: torch.Tensor, t: torch.Tensor) -> float:
    pairs = [(i, j) for i in range(len(s)) for j in range(len(s)) if i != j]

    def normalised(x):
        d = np.array([np.linalg.norm(x[i] - x[j]) for i, j in pairs])
        return d / d.mean()

    return float(huber(normalised(flat64(s)), normalised(flat64(t))).mean())


def angle_reference(s: torch.Tensor, t: torch.Tensor) -> float:
    triplets = list(itertools.permutations(range(len(s)), 3))

    def cosines(x):
        out = []
        for i, j, k in triplets:
            u, v = x[i] - x[j], x[k] - x[j]
            out.append(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))
        return np.array(out)

    return float(huber(cosines(flat64(s)), cosines(flat64(t))).mean())


def sp_reference(s: torch.Tensor, t: torch.Tensor) -> float:
    def graph(a):
        g = a @ a.T
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    return float(((graph(flat64(s)) - graph(flat64(t))) ** 2).sum() / len(s) ** 2)


def rotation(dim: int, seed: int) -> torch.Tensor:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return torch.tensor(q, dtype=torch.float32)


LOSSES = [
    (rkd_distance_loss, distance_reference),
    (rkd_angle_loss, angle_reference),
    (similarity_preserving_loss, sp_reference),
]
IDS = ["rkd_distance", "rkd_angle", "similarity_preserving"]


@pytest.mark.parametrize("loss,reference", LOSSES, ids=IDS)
@pytest.mark.parametrize(
    "s_shape,t_shape", [((6, 4), (6, 9)), ((5, 2, 3, 3), (5, 7)), ((3, 5), (3, 5))]
)
@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0])
def test_matches_float64_reference(loss, reference, s_shape, t_shape, scale):
    s, t = rand(s_shape, 1, scale), rand(t_shape, 2)
    assert float(loss(s, t)) == pytest.approx(reference(s, t), rel=1e-4, abs=1e-7)


def test_rkd_uses_large_errors_linearly():
    """Distances far apart (normalised gap > 1) must fall in smooth L1's linear part."""
    s = torch.tensor([[0.0], [1.0], [100.0]])
    t = torch.tensor([[0.0], [50.0], [100.0]])
    assert float(rkd_distance_loss(s, t)) == pytest.approx(distance_reference(s, t), rel=1e-5)


@pytest.mark.parametrize("loss", [rkd_distance_loss, rkd_angle_loss], ids=IDS[:2])
def test_rkd_is_invariant_to_scaling_rotation_and_translation(loss):
    s, t = rand((7, 5), 3), rand((7, 8), 4)
    base = float(loss(s, t))
    assert base > 1e-4
    moved = 3.7 * s @ rotation(5, 0) + rand((1, 5), 9)
    assert float(loss(moved, 0.02 * t)) == pytest.approx(base, rel=1e-4)


def test_sp_is_invariant_to_common_scaling_and_rotation_of_features():
    s, t = rand((6, 5), 3), rand((6, 8), 4)
    base = float(similarity_preserving_loss(s, t))
    assert base > 1e-4
    assert float(similarity_preserving_loss(4.2 * s @ rotation(5, 1), 0.3 * t)) == pytest.approx(
        base, rel=1e-4
    )


def test_losses_are_zero_for_identical_relations():
    s = rand((5, 6), 0)
    for loss in (rkd_distance_loss, rkd_angle_loss, similarity_preserving_loss):
        assert float(loss(2.0 * s, s)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "loss", [rkd_distance_loss, rkd_angle_loss, similarity_preserving_loss], ids=IDS
)
def test_gradient_reaches_student_only_and_is_finite(loss):
    s, t = rand((6, 4), 1, grad=True), rand((6, 9), 2, grad=True)
    loss(s, t).backward()
    assert t.grad is None, "gradient reached the teacher's embeddings"
    assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_rkd_loss_weighs_distance_and_angle():
    s, t = rand((5, 4), 1), rand((5, 6), 2)
    expected = 2.0 * rkd_distance_loss(s, t) + 0.5 * rkd_angle_loss(s, t)
    torch.testing.assert_close(rkd_loss(s, t, distance_weight=2.0, angle_weight=0.5), expected)
    with pytest.raises(ValueError, match="angle_weight"):
        rkd_loss(s, t, angle_weight=-1)


def test_relation_losses_reject_bad_inputs():
    with pytest.raises(ValueError, match="at least 3"):
        rkd_angle_loss(rand((2, 4), 0), rand((2, 4), 1))
    with pytest.raises(ValueError, match="at least 2"):
        rkd_distance_loss(rand((1, 4), 0), rand((1, 4), 1))
    with pytest.raises(ValueError, match="same batch"):
        similarity_preserving_loss(rand((4, 4), 0), rand((5, 4), 1))
    with pytest.raises(ValueError, match="NaN"):
        rkd_distance_loss(torch.full((3, 2), float("nan")), rand((3, 2), 1))
    with pytest.raises(ValueError, match=r"\(batch, \.\.\.\)"):
        similarity_preserving_loss(rand((4,), 0), rand((4,), 1))
