"""kdlab.losses against float64 references written here, and against torch's own kl_div."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlab.losses import distillation_loss, soft_target_loss, softmax_with_temperature

TEMPERATURES = [1.0, 2.0, 20.0]
SCALES = [1.0, 10.0, 1e4]


def log_softmax64(z: np.ndarray, axis: int = 1) -> np.ndarray:
    """float64 log-softmax with the log-sum-exp shift, so 1e4 logits stay finite."""
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def soft_reference(s: torch.Tensor, t: torch.Tensor, temperature: float) -> float:
    """T^2 * sum over classes and positions of p (log p - log q), divided by the batch size."""
    log_q = log_softmax64(s.detach().double().numpy() / temperature)
    log_p = log_softmax64(t.detach().double().numpy() / temperature)
    kl = (np.exp(log_p) * (log_p - log_q)).sum()
    return float(temperature**2 * kl / s.shape[0])


def ce_reference(s: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over examples (and positions) of -log softmax(s)[y]."""
    log_q = log_softmax64(s.detach().double().numpy())
    picked = np.take_along_axis(log_q, y.numpy()[:, None].astype(np.int64), axis=1)
    return float(-picked.mean())


def entropy64(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=-1)


def random_logits(shape, scale=1.0, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    s = torch.tensor(rng.normal(0, scale, shape), dtype=torch.float32)
    t = torch.tensor(rng.normal(0, scale, shape), dtype=torch.float32)
    return s, t


def random_targets(batch: int, classes: int, seed: int = 0, extra=()) -> torch.Tensor:
    rng = np.random.default_rng(seed + 100)
    return torch.tensor(rng.integers(0, classes, (batch, *extra)), dtype=torch.long)


def assert_close(got: float, ref: float, rel: float = 1e-5) -> None:
    assert np.isfinite(got), got
    assert abs(got - ref) <= rel * max(1.0, abs(ref)), (got, ref)


# ------------------------------------------------------------------ soft_target_loss


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("shape", [(16, 10), (3, 7), (1, 2)])
def test_soft_target_loss_matches_float64_reference(temperature, scale, shape):
    s, t = random_logits(shape, scale, seed=int(scale) + shape[1])
    got = float(soft_target_loss(s, t, temperature))
    # float32 log-softmax of 1e4 logits has an absolute error of about 1e-3 per term
    assert_close(got, soft_reference(s, t, temperature), rel=1e-5 if scale < 1e3 else 1e-4)


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("shape", [(8, 10), (2, 5, 3, 4)])
def test_soft_target_loss_matches_torch_kl_div_batchmean(temperature, shape):
    s, t = random_logits(shape, 3.0, seed=len(shape))
    reference = (
        F.kl_div(
            F.log_softmax(s.double() / temperature, dim=1),
            F.log_softmax(t.double() / temperature, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        * temperature**2
    )
    assert_close(float(soft_target_loss(s, t, temperature)), float(reference))
    assert_close(float(soft_target_loss(s, t, temperature)), soft_reference(s, t, temperature))


@pytest.mark.parametrize("classes", [2, 10, 37])
def test_soft_target_loss_is_batchmean_not_mean(classes):
    s, t = random_logits((6, classes), 2.0, seed=classes)
    temperature = 2.0
    log_q = F.log_softmax(s / temperature, dim=1)
    p = F.softmax(t / temperature, dim=1)
    batchmean = F.kl_div(log_q, p, reduction="batchmean") * temperature**2
    with pytest.warns(UserWarning, match="batchmean"):  # torch itself warns about "mean"
        mean = F.kl_div(log_q, p, reduction="mean") * temperature**2
    got = soft_target_loss(s, t, temperature)
    # "mean" also divides by the number of classes: the two differ by exactly that factor
    torch.testing.assert_close(batchmean, mean * classes)
    torch.testing.assert_close(got, batchmean)
    assert abs(float(got) - float(mean)) > 1e-3 * float(got)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_soft_target_loss_zero_when_student_equals_teacher(temperature):
    s, _ = random_logits((12, 10), 5.0, seed=3)
    assert abs(float(soft_target_loss(s, s.clone(), temperature))) < 1e-5


@pytest.mark.parametrize("seed", range(5))
def test_soft_target_loss_nonnegative_and_shift_invariant(seed):
    s, t = random_logits((9, 6), 4.0, seed=seed)
    loss = soft_target_loss(s, t, 3.0)
    assert float(loss) >= 0
    shift = torch.randn(9, 1)
    torch.testing.assert_close(soft_target_loss(s + shift, t - 2 * shift, 3.0), loss)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_soft_target_loss_gradient_reaches_student_only(temperature):
    s, t = random_logits((5, 4), 2.0, seed=7)
    s.requires_grad_(True)
    t.requires_grad_(True)
    soft_target_loss(s, t, temperature).backward()
    assert t.grad is None
    assert s.grad is not None and torch.isfinite(s.grad).all()
    # d/ds [T^2 KL(p || softmax(s/T))] / N = T (q - p) / N
    q = torch.softmax(s.detach().double() / temperature, dim=1)
    p = torch.softmax(t.detach().double() / temperature, dim=1)
    expected = temperature * (q - p) / s.shape[0]
    torch.testing.assert_close(s.grad.double(), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("temperature", TEMPERATURES)
def test_gradcheck_float64(temperature):
    g = torch.Generator().manual_seed(0)
    s = torch.randn(4, 5, dtype=torch.float64, generator=g, requires_grad=True)
    t = torch.randn(4, 5, dtype=torch.float64, generator=g)
    y = torch.randint(0, 5, (4,), generator=g)

    def soft(z):
        return soft_target_loss(z, t, temperature)

    def mixed(z):
        return distillation_loss(z, t, y, temperature, 0.3)

    assert torch.autograd.gradcheck(soft, (s,), fast_mode=True)
    assert torch.autograd.gradcheck(mixed, (s,), fast_mode=True)


# ------------------------------------------------------------------ distillation_loss


@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("scale", SCALES)
def test_distillation_loss_matches_reference(temperature, alpha, scale):
    s, t = random_logits((10, 8), scale, seed=11)
    y = random_targets(10, 8)
    got = float(distillation_loss(s, t, y, temperature, alpha))
    ref = alpha * ce_reference(s, y) + (1 - alpha) * soft_reference(s, t, temperature)
    assert_close(got, ref, rel=1e-5 if scale < 1e3 else 1e-4)


def test_distillation_loss_segmentation_shaped():
    s, t = random_logits((2, 4, 3, 5), 2.0, seed=5)
    y = random_targets(2, 4, extra=(3, 5))
    got = float(distillation_loss(s, t, y, 2.0, 0.25))
    ce = float(F.cross_entropy(s.double(), y))
    assert_close(got, 0.25 * ce + 0.75 * soft_reference(s, t, 2.0))


def test_alpha_one_is_cross_entropy_and_alpha_zero_is_soft_loss():
    s, t = random_logits((7, 10), 3.0, seed=2)
    y = random_targets(7, 10)
    torch.testing.assert_close(distillation_loss(s, t, y, 4.0, 1.0), F.cross_entropy(s, y))
    torch.testing.assert_close(distillation_loss(s, t, y, 4.0, 0.0), soft_target_loss(s, t, 4.0))


def test_distillation_loss_accepts_int32_targets():
    s, t = random_logits((7, 10), 1.0, seed=2)
    y = random_targets(7, 10)
    torch.testing.assert_close(
        distillation_loss(s, t, y.int(), 2.0, 0.5), distillation_loss(s, t, y, 2.0, 0.5)
    )


def test_distillation_loss_gradient_reaches_student_only():
    s, t = random_logits((6, 5), 2.0, seed=9)
    s.requires_grad_(True)
    t.requires_grad_(True)
    distillation_loss(s, t, random_targets(6, 5), 4.0, 0.5).backward()
    assert t.grad is None
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


# ------------------------------------------------------------------ softmax_with_temperature


@pytest.mark.parametrize("scale", SCALES)
def test_softmax_with_temperature_matches_reference_and_sums_to_one(scale):
    s, _ = random_logits((6, 10), scale, seed=4)
    for temperature in TEMPERATURES:
        p = softmax_with_temperature(s, temperature)
        reference = np.exp(log_softmax64(s.double().numpy() / temperature))
        np.testing.assert_allclose(p.double().numpy(), reference, atol=1e-6)
        torch.testing.assert_close(p.sum(1), torch.ones(6))
        assert torch.equal(p.argmax(1), s.argmax(1))


def test_softmax_with_temperature_flattens_as_t_grows():
    s, _ = random_logits((20, 10), 3.0, seed=8)
    temperatures = [0.5, 1.0, 2.0, 5.0, 20.0, 1000.0]
    entropies = np.stack([entropy64(softmax_with_temperature(s, t).numpy()) for t in temperatures])
    assert (np.diff(entropies, axis=0) > 0).all()
    np.testing.assert_allclose(entropies[-1], np.log(10), atol=1e-3)


# ------------------------------------------------------------------ bad inputs

S, TT = random_logits((4, 3), 1.0, seed=1)
Y = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((S, TT[:, :2], Y, 2.0, 0.5), "same shape"),
        ((S, TT[:3], Y, 2.0, 0.5), "same shape"),
        ((S, TT, Y, 0.0, 0.5), "temperature"),
        ((S, TT, Y, -1.0, 0.5), "temperature"),
        ((S, TT, Y, float("nan"), 0.5), "temperature"),
        ((S, TT, Y, float("inf"), 0.5), "temperature"),
        ((S, TT, Y, "2", 0.5), "temperature"),
        ((S, TT, Y, 2.0, -0.1), "alpha"),
        ((S, TT, Y, 2.0, 1.1), "alpha"),
        ((S, TT, Y, 2.0, float("nan")), "alpha"),
        ((S.clone().index_fill_(0, torch.tensor([1]), float("nan")), TT, Y, 2.0, 0.5), "NaN"),
        ((S, TT.clone().index_fill_(1, torch.tensor([2]), float("inf")), Y, 2.0, 0.5), "infinite"),
        ((S, TT, torch.tensor([0, 1, 3, 1]), 2.0, 0.5), "targets must lie in"),
        ((S, TT, torch.tensor([0, -1, 2, 1]), 2.0, 0.5), "targets must lie in"),
        ((S, TT, Y.float(), 2.0, 0.5), "integer class indices"),
        ((S, TT, Y[:3], 2.0, 0.5), "targets must have shape"),
        ((S[:0], TT[:0], Y[:0], 2.0, 0.5), "empty batch"),
        ((S[0], TT[0], Y[:1], 2.0, 0.5), r"shape \(batch, classes"),
        ((S.long(), TT.long(), Y, 2.0, 0.5), "floating point"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_problem(args, match):
    with pytest.raises(ValueError, match=match):
        distillation_loss(*args)


@pytest.mark.parametrize("temperature", [0, -2.0, float("nan"), True])
def test_soft_target_loss_and_softmax_reject_bad_temperature(temperature):
    with pytest.raises(ValueError, match="temperature"):
        soft_target_loss(S, TT, temperature)
    with pytest.raises(ValueError, match="temperature"):
        softmax_with_temperature(S, temperature)


def test_soft_target_loss_rejects_nan_logits():
    with pytest.raises(ValueError, match="student_logits contains NaN"):
        soft_target_loss(torch.full((2, 3), float("nan")), TT[:2], 1.0)
