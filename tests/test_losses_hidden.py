"""kdlab.losses.hidden: the masked cosine loss and DistilBERT's triple loss, against float64
references written from the formulas and PyTorch's CosineEmbeddingLoss."""

import pytest
import torch
import torch.nn.functional as F

from kdlab.losses import cosine_hidden_loss, distilbert_loss


def random_mask(batch: int, length: int, g: torch.Generator) -> torch.Tensor:
    """Right padding of random lengths (at least one real token per row)."""
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    return (torch.arange(length)[None, :] < lengths[:, None]).long()


def cosine_reference(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - cos averaged over real positions, one position at a time in float64."""
    total, count = 0.0, 0
    for b in range(s.shape[0]):
        for i in range(s.shape[1]):
            if mask[b, i]:
                u, v = s[b, i].double(), t[b, i].double()
                total += 1 - float(u @ v / (u.norm() * v.norm()))
                count += 1
    return total / count


def kl_reference(student: torch.Tensor, teacher: torch.Tensor, T: float) -> float:
    p = torch.softmax(teacher.double() / T, dim=1)
    log_q = torch.log_softmax(student.double() / T, dim=1)
    return float((p * (p.log() - log_q)).sum(1).mean() * T**2)


@pytest.mark.parametrize("seed", range(5))
def test_cosine_loss_matches_float64_reference_with_random_padding(seed):
    g = torch.Generator().manual_seed(seed)
    s, t = torch.randn(4, 7, 16, generator=g), torch.randn(4, 7, 16, generator=g)
    mask = random_mask(4, 7, g)
    assert float(cosine_hidden_loss(s, t, mask)) == pytest.approx(
        cosine_reference(s, t, mask), abs=1e-6
    )


def test_cosine_loss_matches_torch_cosine_embedding_loss_on_real_positions():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 9, 8, generator=g), torch.randn(3, 9, 8, generator=g)
    mask = random_mask(3, 9, g)
    keep = mask.bool()
    library = torch.nn.CosineEmbeddingLoss()(s[keep], t[keep], torch.ones(int(keep.sum())))
    assert torch.allclose(cosine_hidden_loss(s, t, mask), library, atol=1e-6)


def test_padding_values_do_not_change_the_loss_or_receive_gradient():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(4, 6, 8, generator=g), torch.randn(4, 6, 8, generator=g)
    mask = random_mask(4, 6, g)
    mask[0, -1] = 0  # make sure some padding exists
    pad = ~mask.bool()
    s2, t2 = s.clone(), t.clone()
    s2[pad] = 1e3 * torch.randn(int(pad.sum()), 8, generator=g)
    t2[pad] = float("nan")
    s2.requires_grad_(True)
    loss = cosine_hidden_loss(s2, t2, mask)
    assert torch.allclose(loss, cosine_hidden_loss(s, t, mask))
    loss.backward()
    assert (s2.grad[pad] == 0).all() and s2.grad[~pad].abs().sum() > 0


def test_averaging_over_padding_would_give_a_different_number():
    # Guards the test above: with padding, the mean over all positions differs.
    g = torch.Generator().manual_seed(2)
    s, t = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    all_positions = (1 - F.cosine_similarity(s, t, dim=-1)).mean()
    assert not torch.allclose(cosine_hidden_loss(s, t, mask), all_positions)


def test_bool_and_integer_masks_agree_and_identical_states_give_zero():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 4, 8, generator=g)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0]])
    t = torch.randn(2, 4, 8, generator=g)
    assert torch.equal(cosine_hidden_loss(s, t, mask), cosine_hidden_loss(s, t, mask.bool()))
    assert float(cosine_hidden_loss(s, 3 * s, mask)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_hidden_loss(s, -s, mask)) == pytest.approx(2.0, abs=1e-6)


def test_teacher_side_is_detached():
    s = torch.randn(2, 3, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, requires_grad=True)
    cosine_hidden_loss(s, t, torch.ones(2, 3)).backward()
    assert t.grad is None and s.grad is not None


@pytest.mark.parametrize(
    "s_shape, t_shape, m_shape, match",
    [
        ((2, 3, 4), (2, 3, 5), (2, 3), "same shape"),
        ((2, 3), (2, 3), (2, 3), "batch, length, hidden"),
        ((2, 3, 4), (2, 3, 4), (2, 4), "attention_mask must be"),
    ],
)
def test_cosine_loss_shape_errors(s_shape, t_shape, m_shape, match):
    with pytest.raises(ValueError, match=match):
        cosine_hidden_loss(torch.randn(s_shape), torch.randn(t_shape), torch.ones(m_shape))


def test_cosine_loss_value_errors():
    s, t = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="all padding"):
        cosine_hidden_loss(s, t, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="only 0"):
        cosine_hidden_loss(s, t, torch.full((2, 3), 2))
    s[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cosine_hidden_loss(s, t, torch.ones(2, 3))


def triple_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return {
        "student_logits": torch.randn(5, 3, generator=g),
        "teacher_logits": 3 * torch.randn(5, 3, generator=g),
        "targets": torch.randint(0, 3, (5,), generator=g),
        "student_hidden": torch.randn(5, 6, 8, generator=g),
        "teacher_hidden": torch.randn(5, 6, 8, generator=g),
        "attention_mask": random_mask(5, 6, g),
    }


@pytest.mark.parametrize("weights", [(0.3, 1.7, 2.9), (2.9, 0.3, 1.7), (1.7, 2.9, 0.3)])
def test_triple_loss_weights_apply_to_the_right_terms(weights):
    w_soft, w_hard, w_cos = weights
    x = triple_inputs()
    T = 2.5
    soft = kl_reference(x["student_logits"], x["teacher_logits"], T)
    hard = float(F.cross_entropy(x["student_logits"].double(), x["targets"]))
    cos = cosine_reference(x["student_hidden"], x["teacher_hidden"], x["attention_mask"])
    parts = distilbert_loss(**x, temperature=T, w_soft=w_soft, w_hard=w_hard, w_cos=w_cos)
    assert float(parts["soft_loss"]) == pytest.approx(soft, rel=1e-5)
    assert float(parts["hard_loss"]) == pytest.approx(hard, rel=1e-5)
    assert float(parts["cos_loss"]) == pytest.approx(cos, rel=1e-5)
    expected = w_soft * soft + w_hard * hard + w_cos * cos
    assert float(parts["loss"]) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("term", ["soft", "hard", "cos"])
def test_each_weight_alone_selects_its_term(term):
    x = triple_inputs(1)
    weights = {"w_soft": 0.0, "w_hard": 0.0, "w_cos": 0.0, f"w_{term}": 1.0}
    parts = distilbert_loss(**x, temperature=3.0, **weights)
    assert torch.allclose(parts["loss"], parts[f"{term}_loss"])


def test_triple_loss_gradients_reach_only_the_student():
    x = triple_inputs(2)
    for key in ("student_logits", "teacher_logits", "student_hidden", "teacher_hidden"):
        x[key].requires_grad_(True)
    distilbert_loss(**x)["loss"].backward()
    assert x["teacher_logits"].grad is None and x["teacher_hidden"].grad is None
    assert x["student_logits"].grad.abs().sum() > 0 and x["student_hidden"].grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"w_soft": -1.0}, "w_soft must be a finite number >= 0"),
        ({"w_cos": float("inf")}, "w_cos must be a finite number >= 0"),
        ({"w_hard": True}, "w_hard must be a number"),
        ({"w_soft": 0, "w_hard": 0, "w_cos": 0}, "all 0"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_triple_loss_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        distilbert_loss(**triple_inputs(), **kwargs)


def test_triple_loss_checks_targets():
    x = triple_inputs()
    x["targets"] = torch.tensor([0, 1, 2, 3, 0])
    with pytest.raises(ValueError, match="targets must lie in"):
        distilbert_loss(**x)


def mlm_inputs(seed: int = 0):
    """Per-token logits over a vocabulary of 11, right padding, about a third of the real
    tokens masked (label = the token to predict), the rest labelled -100."""
    g = torch.Generator().manual_seed(seed)
    batch, length, vocab = 4, 7, 11
    mask = random_mask(batch, length, g)
    mask[0] = 1  # at least one full row, so some token is real and masked
    labels = torch.randint(0, vocab, (batch, length), generator=g)
    chosen = (torch.rand(batch, length, generator=g) < 0.35) & mask.bool()
    chosen[0, 0] = True
    return {
        "student_logits": torch.randn(batch, length, vocab, generator=g),
        "teacher_logits": 3 * torch.randn(batch, length, vocab, generator=g),
        "targets": torch.where(chosen, labels, torch.full_like(labels, -100)),
        "student_hidden": torch.randn(batch, length, 8, generator=g),
        "teacher_hidden": torch.randn(batch, length, 8, generator=g),
        "attention_mask": mask,
    }


def hf_default_reference(x: dict, T: float) -> tuple[float, float]:
    """Soft and hard losses of Hugging Face's distiller.py by default, one token at a time in
    float64: the soft term averaged over every real token, the MLM term over the masked ones."""
    soft, real, hard, masked = 0.0, 0, 0.0, 0
    for b, i in torch.nonzero(x["attention_mask"]).tolist():
        soft += kl_reference(x["student_logits"][b, i][None], x["teacher_logits"][b, i][None], T)
        real += 1
    for b, i in torch.nonzero(x["targets"] != -100).tolist():
        log_q = torch.log_softmax(x["student_logits"][b, i].double(), dim=0)
        hard -= float(log_q[x["targets"][b, i]])
        masked += 1
    return soft / real, hard / masked


@pytest.mark.parametrize("seed", range(3))
def test_mlm_option_matches_the_hf_distiller_default(seed):
    x = mlm_inputs(seed)
    T = 2.0
    soft, hard = hf_default_reference(x, T)
    cos = cosine_reference(x["student_hidden"], x["teacher_hidden"], x["attention_mask"])
    parts = distilbert_loss(**x, temperature=T, w_soft=5.0, w_hard=2.0, w_cos=1.0, mlm=True)
    assert float(parts["soft_loss"]) == pytest.approx(soft, rel=1e-5)
    assert float(parts["hard_loss"]) == pytest.approx(hard, rel=1e-5)
    assert float(parts["cos_loss"]) == pytest.approx(cos, rel=1e-5)
    assert float(parts["loss"]) == pytest.approx(5 * soft + 2 * hard + cos, rel=1e-5)


def test_mlm_option_soft_loss_covers_unmasked_real_tokens_and_skips_padding():
    x = mlm_inputs(4)
    base = distilbert_loss(**x, mlm=True)
    unmasked_real = x["attention_mask"].bool() & (x["targets"] == -100)
    changed = dict(x, teacher_logits=x["teacher_logits"].clone())
    changed["teacher_logits"][unmasked_real] += 5 * torch.randn(int(unmasked_real.sum()), 11)
    assert not torch.isclose(distilbert_loss(**changed, mlm=True)["soft_loss"], base["soft_loss"])
    padded = dict(x, student_logits=x["student_logits"].clone())
    padded["student_logits"][~x["attention_mask"].bool()] = float("nan")
    assert torch.equal(distilbert_loss(**padded, mlm=True)["soft_loss"], base["soft_loss"])


def test_mlm_option_gradients_reach_only_the_student():
    x = mlm_inputs(5)
    for key in ("student_logits", "teacher_logits", "student_hidden", "teacher_hidden"):
        x[key].requires_grad_(True)
    distilbert_loss(**x, mlm=True)["loss"].backward()
    assert x["teacher_logits"].grad is None and x["teacher_hidden"].grad is None
    pad = ~x["attention_mask"].bool()
    assert (x["student_logits"].grad[pad] == 0).all()
    assert x["student_logits"].grad[~pad].abs().sum() > 0


def test_mlm_option_argument_errors():
    x = mlm_inputs()
    with pytest.raises(ValueError, match="mask no token"):
        distilbert_loss(**dict(x, targets=torch.full_like(x["targets"], -100)), mlm=True)
    with pytest.raises(ValueError, match=r"per token, of shape \(batch, length, vocab\)"):
        distilbert_loss(**triple_inputs(), mlm=True)
    with pytest.raises(ValueError, match="MLM labels of shape"):
        distilbert_loss(**dict(x, targets=x["targets"][:, :3]), mlm=True)
    wrong = x["targets"].clone()
    wrong[0, 0] = 11
    with pytest.raises(ValueError, match="targets must lie in"):
        distilbert_loss(**dict(x, targets=wrong), mlm=True)
