"""Deep mutual learning and ONE against float64 references; every peer and branch learns."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from kdlab.losses import OnTheFlyNativeEnsemble, mutual_learning_losses, one_loss


def rand(shape, seed, scale=1.0, grad=False):
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(0, scale, shape), dtype=torch.float32, requires_grad=grad)


def log_softmax64(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def ce64(z: np.ndarray, y: np.ndarray) -> float:
    return float(-log_softmax64(z)[np.arange(len(y)), y].mean())


def kl64(teacher: np.ndarray, student: np.ndarray, temperature: float) -> float:
    """T^2 * batch mean of KL(p_teacher^T || p_student^T)."""
    log_p, log_q = log_softmax64(teacher / temperature), log_softmax64(student / temperature)
    return float(temperature**2 * (np.exp(log_p) * (log_p - log_q)).sum() / len(teacher))


def targets(batch, classes, seed=0):
    return torch.tensor(np.random.default_rng(seed).integers(0, classes, batch))


# ------------------------------------------------------------------ deep mutual learning


@pytest.mark.parametrize("peers", [2, 3])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_mutual_learning_matches_float64_reference(peers, temperature):
    logits = [rand((8, 5), k, scale=2.0) for k in range(peers)]
    y = targets(8, 5)
    z = [t.double().numpy() for t in logits]
    reference = [
        ce64(z[k], y.numpy())
        + sum(kl64(z[j], z[k], temperature) for j in range(peers) if j != k) / (peers - 1)
        for k in range(peers)
    ]
    got = mutual_learning_losses(logits, y, temperature)
    np.testing.assert_allclose(got.numpy(), reference, rtol=1e-5)


def test_mutual_learning_gives_each_peer_only_its_own_gradient():
    y = targets(6, 4)
    a, b, c = (rand((6, 4), k, grad=True) for k in range(3))
    mutual_learning_losses([a, b, c], y).sum().backward()
    summed = a.grad.clone()
    a2, b2, c2 = (rand((6, 4), k, grad=True) for k in range(3))
    mutual_learning_losses([a2, b2, c2], y)[0].backward()
    torch.testing.assert_close(summed, a2.grad)
    for other in (b2, c2):
        assert other.grad is None or not other.grad.any(), "peer 0's loss trained another peer"


def test_mutual_learning_updates_every_peer():
    torch.manual_seed(0)
    peers = [nn.Linear(6, 3) for _ in range(3)]
    before = [copy.deepcopy(p.state_dict()) for p in peers]
    opt = torch.optim.SGD([w for p in peers for w in p.parameters()], lr=0.1)
    x, y = rand((16, 6), 1), targets(16, 3)
    mutual_learning_losses([p(x) for p in peers], y).sum().backward()
    opt.step()
    for k, (p, old) in enumerate(zip(peers, before, strict=True)):
        assert not torch.equal(p.weight, old["weight"]), f"peer {k} was not updated"


def test_mutual_learning_rejects_bad_inputs():
    y = targets(4, 3)
    with pytest.raises(ValueError, match="at least 2"):
        mutual_learning_losses([rand((4, 3), 0)], y)
    with pytest.raises(ValueError, match="same shape"):
        mutual_learning_losses([rand((4, 3), 0), rand((4, 5), 1)], y)
    with pytest.raises(ValueError, match="temperature"):
        mutual_learning_losses([rand((4, 3), 0), rand((4, 3), 1)], y, temperature=0)


# ------------------------------------------------------------------ ONE


def small_one(branches=3, classes=4):
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
    heads = [
        nn.Sequential(
            nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, classes)
        )
        for _ in range(branches)
    ]
    return OnTheFlyNativeEnsemble(trunk, heads, gate_features=4)


def test_one_ensemble_is_the_gate_weighted_sum_of_branches():
    model = small_one()
    x = rand((5, 1, 4, 4), 2)
    logits, ensemble = model(x)
    assert logits.shape == (3, 5, 4) and ensemble.shape == (5, 4)
    with torch.no_grad():
        shared = model.trunk(x).double()
        w = model.gate.weight.double()
        scores = shared.mean(dim=(2, 3)) @ w.T + model.gate.bias.double()
        gate = torch.softmax(scores, dim=1).numpy()
    manual = np.einsum("bk,kbc->bc", gate, logits.detach().double().numpy())
    np.testing.assert_allclose(ensemble.detach().numpy(), manual, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(model.branch(1)(x), logits[1])


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_one_loss_matches_float64_reference(temperature):
    branches = [rand((8, 5), k, scale=2.0) for k in range(3)]
    ensemble, y = rand((8, 5), 7, scale=2.0), targets(8, 5)
    e, yy = ensemble.double().numpy(), y.numpy()
    reference = ce64(e, yy) + sum(
        ce64(z.double().numpy(), yy) + kl64(e, z.double().numpy(), temperature) for z in branches
    )
    got = one_loss(torch.stack(branches), ensemble, y, temperature)
    assert float(got) == pytest.approx(reference, rel=1e-5)


def test_one_kl_term_does_not_train_the_ensemble():
    branches, ensemble, y = rand((2, 6, 4), 0, grad=True), rand((6, 4), 1, grad=True), targets(6, 4)
    one_loss(branches, ensemble, y).backward()
    ce_only = rand((6, 4), 1, grad=True)
    torch.nn.functional.cross_entropy(ce_only, y).backward()
    torch.testing.assert_close(ensemble.grad, ce_only.grad)


def test_one_step_updates_trunk_gate_and_every_branch():
    model = small_one()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = rand((8, 1, 4, 4), 3), targets(8, 4)
    one_loss(*model(x), y).backward()
    opt.step()
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert "trunk.0.weight" in changed and "gate.weight" in changed
    for k in range(3):
        assert f"branches.{k}.3.weight" in changed, f"branch {k} was not updated"


def test_one_rejects_bad_configuration():
    trunk, head = nn.Identity(), nn.Linear(4, 2)
    with pytest.raises(ValueError, match="at least 2 branches"):
        OnTheFlyNativeEnsemble(trunk, [head], gate_features=4)
    with pytest.raises(ValueError, match="gate_features"):
        OnTheFlyNativeEnsemble(trunk, [head, head], gate_features=0)
    model = OnTheFlyNativeEnsemble(trunk, [nn.Linear(3, 2), nn.Linear(3, 2)], gate_features=4)
    with pytest.raises(ValueError, match="gate_features=4"):
        model(torch.randn(2, 3))
    with pytest.raises(ValueError, match="branch index"):
        model.branch(2)
    with pytest.raises(ValueError, match="ensemble_logits"):
        one_loss(rand((2, 4, 3), 0), rand((4, 5), 1), targets(4, 3))
