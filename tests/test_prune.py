"""kdlab.prune against references written here (sorting, hand counts) and torch's own
``torch.nn.utils.prune``, on random weights and the edge cases of the rounding of k."""

import copy
import warnings
from itertools import pairwise

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as tprune
from torch import nn

from kdlab.bench import count_parameters, serialized_size
from kdlab.distill import Distiller
from kdlab.models import MLP, StudentMLP, TeacherCNN
from kdlab.prune import (
    gradual_schedule,
    iterative_pruning,
    magnitude_mask,
    make_permanent,
    prune_global,
    prune_structured,
    prune_unstructured,
    shrink,
    sparsity_report,
    structured_mask,
)

SPARSITIES = [0.0, 0.5, 0.9, 1.0]
SHAPES = [(1,), (5,), (7,), (3, 5), (4, 3, 3, 3), (11, 13)]
BAD_FRACTIONS = [-0.1, 1.1, float("nan"), float("inf"), "0.5", True, None]


def random_weight(shape, seed=0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.normal(size=shape), dtype=torch.float32)


def expected_k(sparsity: float, n: int) -> int:
    """Round half to even, written out, as torch.nn.utils.prune counts."""
    x = sparsity * n
    low = int(np.floor(x))
    if x - low > 0.5 or (x - low == 0.5 and low % 2 == 1):
        return low + 1
    return low


def tiny_mlp(seed=0, **kwargs) -> MLP:
    torch.manual_seed(seed)
    return MLP(in_features=12, num_classes=5, **kwargs).eval()


def tiny_cnn(seed=0) -> TeacherCNN:
    """TeacherCNN (width 4) with random batch-norm parameters and running statistics."""
    torch.manual_seed(seed)
    model = TeacherCNN(width=4)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data.normal_()
            module.bias.data.normal_()
            module.running_mean.normal_()
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def weight(module: nn.Module) -> torch.Tensor:
    """The weight the layer computes with (mask applied), fresh."""
    if hasattr(module, "weight_orig"):
        return (module.weight_orig * module.weight_mask).detach()
    return module.weight.detach()


def linears(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


# ------------------------------------------------------------------ magnitude_mask


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_magnitude_mask_keeps_the_largest_magnitudes(shape, sparsity):
    w = random_weight(shape, seed=len(shape))
    mask = magnitude_mask(w, sparsity)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    magnitudes = np.abs(w.double().numpy()).ravel()
    k = expected_k(sparsity, magnitudes.size)
    # Reference: a sort gives the k-th smallest magnitude; everything above it stays.
    if k == 0:
        expected = np.ones(magnitudes.size, dtype=bool)
    else:
        expected = magnitudes > np.sort(magnitudes)[k - 1]
    np.testing.assert_array_equal(mask.numpy().ravel(), expected)


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.9, 1.0])
@pytest.mark.parametrize(
    "make_layer", [lambda: nn.Linear(13, 7), lambda: nn.Conv2d(3, 5, 3)], ids=["linear", "conv"]
)
def test_magnitude_mask_matches_torch_l1_unstructured(sparsity, make_layer):
    torch.manual_seed(1)
    layer = make_layer()
    mask = magnitude_mask(layer.weight, sparsity)
    tprune.l1_unstructured(layer, "weight", amount=sparsity)
    assert torch.equal(mask, layer.weight_mask.bool())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_magnitude_mask_prunes_exactly_k(shape, sparsity):
    w = random_weight(shape, seed=3)
    n = w.numel()
    zeros = int((~magnitude_mask(w, sparsity)).sum())
    assert zeros == expected_k(sparsity, n)
    layer = nn.Linear(1, n)
    layer.weight.data = w.reshape(n, 1).clone()
    tprune.l1_unstructured(layer, "weight", amount=sparsity)
    assert zeros == int((layer.weight_mask == 0).sum()), "count differs from torch's"


@pytest.mark.parametrize(
    ("n", "sparsity", "zeros"),
    [(5, 0.5, 2), (7, 0.5, 4), (1, 0.5, 0), (3, 0.5, 2), (10, 0.25, 2), (10, 0.35, 4)],
)
def test_rounding_of_k_is_half_to_even(n, sparsity, zeros):
    w = random_weight((n,), seed=n)
    assert int((~magnitude_mask(w, sparsity)).sum()) == zeros


def test_ties_prune_the_lower_index_first_and_are_repeatable():
    w = torch.tensor([2.0, 1.0, -1.0, 1.0, 3.0, -1.0])
    mask = magnitude_mask(w, 0.5)
    assert mask.tolist() == [True, False, False, False, True, True]
    assert torch.equal(mask, magnitude_mask(w.clone(), 0.5))
    assert magnitude_mask(torch.zeros(2, 3), 0.5).flatten().tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("bad", BAD_FRACTIONS)
def test_magnitude_mask_rejects_bad_sparsity(bad):
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask(torch.randn(4), bad)


@pytest.mark.parametrize(
    "bad",
    [torch.empty(0), torch.arange(4), torch.tensor([1.0, float("nan")]), [1.0, 2.0]],
    ids=["empty", "integer", "nan", "list"],
)
def test_magnitude_mask_rejects_bad_weights(bad):
    with pytest.raises(ValueError, match="weight"):
        magnitude_mask(bad, 0.5)


# ------------------------------------------------------------------ layer-wise and global


@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_prune_unstructured_matches_torch_per_layer(sparsity):
    model = tiny_mlp(hidden_sizes=(9, 7))
    reference = copy.deepcopy(model)
    biases = [layer.bias.detach().clone() for layer in linears(model)]
    prune_unstructured(model, sparsity)
    for layer, ref, bias in zip(linears(model), linears(reference), biases, strict=True):
        tprune.l1_unstructured(ref, "weight", amount=sparsity)
        assert torch.equal(layer.weight_mask, ref.weight_mask)
        assert int((weight(layer) == 0).sum()) == expected_k(sparsity, layer.weight.numel())
        assert torch.equal(layer.bias, bias), "unstructured pruning must leave biases alone"


def test_prune_unstructured_chosen_layers_by_name_or_module():
    model = tiny_mlp(hidden_sizes=(9, 7))
    first, second, last = linears(model)
    prune_unstructured(model, 0.5, layers=["net.1"])
    prune_unstructured(model, 0.5, layers=[last])
    assert hasattr(first, "weight_mask") and hasattr(last, "weight_mask")
    assert not hasattr(second, "weight_mask")


def test_pruning_again_is_cumulative_and_keeps_earlier_zeros():
    model = tiny_mlp(hidden_sizes=(16,))
    layer = linears(model)[0]
    prune_unstructured(model, 0.5)
    first_zeros = weight(layer) == 0
    with torch.no_grad():  # fine-tuning moves the weights; masked ones must stay zero
        layer.weight_orig.add_(torch.randn_like(layer.weight_orig))
    prune_unstructured(model, 0.75)
    zeros = weight(layer) == 0
    assert bool(zeros[first_zeros].all())
    assert int(zeros.sum()) == expected_k(0.75, layer.weight.numel())


@pytest.mark.parametrize("sparsity", [0.2, 0.5, 0.9])
def test_prune_global_keeps_the_global_top_k(sparsity):
    model = tiny_mlp(hidden_sizes=(9, 7))
    with torch.no_grad():
        linears(model)[1].weight.mul_(10)  # a layer of large weights should keep more
    before = [weight(layer).abs().double().numpy().ravel() for layer in linears(model)]
    prune_global(model, sparsity)
    kept = [(weight(layer) != 0).numpy().ravel() for layer in linears(model)]
    pooled = np.concatenate(before)
    k = expected_k(sparsity, pooled.size)
    threshold = np.sort(pooled)[k - 1]
    np.testing.assert_array_equal(np.concatenate(kept), pooled > threshold)
    kept_values = np.concatenate([b[m] for b, m in zip(before, kept, strict=True)])
    pruned_values = np.concatenate([b[~m] for b, m in zip(before, kept, strict=True)])
    assert kept_values.min() > pruned_values.max(), "one threshold separates kept and pruned"
    per_layer = [1 - m.mean() for m in kept]
    assert per_layer[1] < per_layer[0], "the large-weight layer should be pruned less"


def test_prune_global_matches_torch_global_unstructured():
    model = tiny_mlp(hidden_sizes=(9, 7))
    reference = copy.deepcopy(model)
    prune_global(model, 0.6)
    tprune.global_unstructured(
        [(layer, "weight") for layer in linears(reference)],
        pruning_method=tprune.L1Unstructured,
        amount=0.6,
    )
    for layer, ref in zip(linears(model), linears(reference), strict=True):
        assert torch.equal(layer.weight_mask, ref.weight_mask)


# ------------------------------------------------------------------ structured


@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize(
    "make_layer", [lambda: nn.Linear(6, 9), lambda: nn.Conv2d(3, 7, 3)], ids=["linear", "conv"]
)
def test_structured_mask_matches_torch_ln_structured(norm, amount, make_layer):
    torch.manual_seed(2)
    layer = make_layer()
    keep = structured_mask(layer.weight, amount, norm)
    scores = layer.weight.detach().double().flatten(1).abs().pow(norm).sum(1)
    k = expected_k(amount, len(scores))
    expected = torch.ones(len(scores), dtype=torch.bool)
    expected[torch.sort(scores).indices[:k]] = False
    assert torch.equal(keep, expected)
    tprune.ln_structured(layer, "weight", amount=amount, n=norm, dim=0)
    assert torch.equal(keep, layer.weight_mask.flatten(1).bool().all(1))


@pytest.mark.parametrize("amount", [0.25, 0.5])
def test_prune_structured_zeroes_whole_rows_and_their_biases(amount):
    model = tiny_mlp(hidden_sizes=(8, 6))
    reference = copy.deepcopy(model)
    prune_structured(model, amount, norm=2)
    *hidden, last = linears(model)
    for layer, ref in zip(hidden, linears(reference)[:-1], strict=True):
        tprune.ln_structured(ref, "weight", amount=amount, n=2, dim=0)
        pruned_rows = (weight(layer) == 0).all(1)
        assert torch.equal(pruned_rows, ~ref.weight_mask.bool().all(1))
        assert int(pruned_rows.sum()) == expected_k(amount, layer.out_features)
        assert bool((weight(layer)[~pruned_rows] != 0).all()), "kept rows must stay whole"
        assert bool((layer.bias[pruned_rows] == 0).all()), "a pruned neuron's bias is zeroed"
        assert bool((layer.bias[~pruned_rows] != 0).all())
    assert not hasattr(last, "weight_mask"), "the output layer (classes) is not pruned"


def test_prune_structured_zeroes_the_following_batch_norm():
    model = tiny_cnn()
    prune_structured(model, 0.5)
    for stage in model.features:
        conv, bn = stage[0], stage[1]
        pruned = (weight(conv) == 0).flatten(1).all(1)
        assert int(pruned.sum()) == conv.out_channels // 2
        assert bool((bn.weight[pruned] == 0).all() and (bn.bias[pruned] == 0).all())
        assert bool((bn.weight[~pruned] != 0).all())


@pytest.mark.parametrize("bad", [0, 3, "l1", True])
def test_structured_rejects_bad_norm(bad):
    with pytest.raises(ValueError, match="norm"):
        structured_mask(torch.randn(3, 4), 0.5, bad)
    with pytest.raises(ValueError, match="norm"):
        prune_structured(tiny_mlp(hidden_sizes=(4,)), 0.5, norm=bad)


def test_structured_mask_needs_a_matrix():
    with pytest.raises(ValueError, match="at least 2"):
        structured_mask(torch.randn(5), 0.5)


# ------------------------------------------------------------------ report and permanence


def test_sparsity_report_matches_a_hand_count():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]]))
        model[0].bias.copy_(torch.tensor([0.0, 1.0]))
        model[2].weight.copy_(torch.tensor([[4.0, 5.0]]))
    tprune.custom_from_mask(model[2], "weight", torch.tensor([[0.0, 1.0]]))
    report = sparsity_report(model)
    assert list(report.index) == ["0", "2", "total"]
    assert report.loc["0", "parameters"] == 8 and report.loc["0", "zeros"] == 4
    assert report.loc["0", "sparsity"] == pytest.approx(4 / 8)
    assert report.loc["0", "weight_sparsity"] == pytest.approx(3 / 6)
    assert report.loc["2", "parameters"] == 2 and report.loc["2", "zeros"] == 1
    assert report.loc["total", "parameters"] == 10 == count_parameters(model)
    assert report.loc["total", "zeros"] == 5
    assert report.loc["total", "weight_sparsity"] == pytest.approx(4 / 8)


def test_sparsity_report_after_pruning_counts_the_masks():
    model = tiny_cnn()
    prune_unstructured(model, 0.7)
    report = sparsity_report(model)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            n = module.weight.numel()
            assert report.loc[name, "weight_sparsity"] == pytest.approx(expected_k(0.7, n) / n)
    assert report.loc["total", "parameters"] == count_parameters(model)


def test_make_permanent_leaves_plain_weights_with_the_zeros():
    model = tiny_cnn()
    dense_keys = set(model.state_dict())
    x = torch.randn(2, 1, 28, 28)
    prune_structured(model, 0.5)
    prune_unstructured(model, 0.3)
    masked_out = model(x)
    masks = {name: weight(m) == 0 for name, m in model.named_modules() if hasattr(m, "weight")}
    make_permanent(model)
    assert set(model.state_dict()) == dense_keys
    for name, module in model.named_modules():
        if name in masks:
            assert isinstance(module.weight, nn.Parameter)
            assert torch.equal(module.weight == 0, masks[name])
    assert torch.allclose(model(x), masked_out)
    assert make_permanent(model) is model, "a second call is a no-op"


# ------------------------------------------------------------------ shrink


def assert_same_function(masked: nn.Module, small: nn.Module, x: torch.Tensor) -> None:
    masked.eval()
    small.eval()
    with torch.no_grad():
        assert torch.allclose(masked(x), small(x), atol=1e-5, rtol=1e-5)


def test_shrink_mlp_is_smaller_and_computes_the_same():
    torch.manual_seed(0)
    model = StudentMLP((32, 16)).eval()
    prune_structured(model, 0.5)
    small = shrink(model)
    assert_same_function(model, small, torch.randn(4, 1, 28, 28))
    assert type(small) is StudentMLP
    expected = (784 * 16 + 16) + (16 * 8 + 8) + (8 * 10 + 10)
    assert count_parameters(small) == expected
    dense = StudentMLP((32, 16))
    assert serialized_size(small) < serialized_size(dense)
    assert hasattr(model.net[1], "weight_mask"), "shrink must not change its argument"


def test_shrink_teacher_cnn_with_batch_norm_statistics():
    model = tiny_cnn()
    prune_structured(model, 0.5)
    small = shrink(model)
    assert_same_function(model, small, torch.randn(3, 1, 28, 28))
    width = 4
    expected = (
        (width // 2) * 1 * 9  # conv 1 (no bias), 2 of 4 filters
        + 2 * (width // 2)  # its batch norm
        + width * (width // 2) * 9  # conv 2: 4 of 8 filters, 2 input channels
        + 2 * width  # its batch norm
        + (width * 49) * 128  # head: 4 channels of 7x7 in, 128 of 256 out
        + 128
        + 128 * 10
        + 10
    )
    assert count_parameters(small) == expected
    bn = small.features[1][1]
    kept = (weight(model.features[1][0]) != 0).flatten(1).any(1)
    assert torch.equal(bn.running_mean, model.features[1][1].running_mean[kept])
    dense = make_permanent(tiny_cnn())
    assert count_parameters(small) < count_parameters(dense) / 3
    assert serialized_size(small) < serialized_size(dense) / 3


def test_shrink_sequential_with_batch_norm_1d_and_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(10, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 3)
    )
    model[1].running_mean.normal_()
    model.eval()
    prune_structured(model, 0.25)
    small = shrink(model)
    assert small[0].out_features == 9 and small[1].num_features == 9 and small[4].in_features == 9
    assert_same_function(model, small, torch.randn(5, 10))


def test_shrink_after_iterative_pruning_and_a_fully_pruned_layer():
    model = tiny_cnn()
    prune_structured(model, 0.25)
    prune_structured(model, 0.5)
    prune_structured(model, 1.0, layers=["head.2"])
    small = shrink(model)
    assert small.features[1][0].out_channels == 4
    assert small.head[2].out_features == 1, "a layer keeps one (dead) unit"
    assert_same_function(model, small, torch.randn(2, 1, 28, 28))


def test_shrink_keeps_zero_weight_units_with_a_bias_and_warns():
    model = tiny_mlp(hidden_sizes=(6,))
    tprune.ln_structured(model.net[1], "weight", amount=0.5, n=1, dim=0)  # weights only
    with pytest.warns(UserWarning, match="constant"):
        small = shrink(model)
    assert small.net[1].out_features == 6
    assert_same_function(model, small, torch.randn(3, 12))


def test_shrink_of_an_unpruned_model_changes_nothing():
    model = tiny_cnn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = shrink(model)
    assert count_parameters(small) == count_parameters(model)
    assert_same_function(model, small, torch.randn(2, 1, 28, 28))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return x + self.fc(x)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "Sigmoid"),
        (nn.Sequential(Residual(), nn.Linear(4, 2)), "Residual"),
        (nn.Sequential(nn.Linear(4, 8), nn.Conv2d(2, 2, 3)), "Conv2d after"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.Linear(4, 2)), "Flatten"),
        (nn.Sequential(nn.Conv2d(2, 4, 3, groups=2), nn.Conv2d(4, 2, 1)), "grouped"),
        (nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)), "directly follow"),
        (nn.Sequential(nn.ReLU(), nn.Dropout()), "no Linear or Conv2d"),
        (nn.Conv1d(2, 2, 1), "Conv1d"),
    ],
    ids=["sigmoid", "custom", "conv-after-linear", "no-flatten", "grouped", "bn", "empty", "1d"],
)
def test_shrink_refuses_what_it_does_not_understand(model, message):
    with pytest.raises(ValueError, match=message):
        shrink(model)


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize("bad", BAD_FRACTIONS)
@pytest.mark.parametrize(
    "prune", [prune_unstructured, prune_global, prune_structured], ids=lambda f: f.__name__
)
def test_pruning_rejects_bad_fractions(prune, bad):
    with pytest.raises(ValueError, match="sparsity|amount"):
        prune(tiny_mlp(hidden_sizes=(4,)), bad)


@pytest.mark.parametrize("empty", [nn.Sequential(), nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3))])
@pytest.mark.parametrize(
    "prune", [prune_unstructured, prune_global, prune_structured], ids=lambda f: f.__name__
)
def test_pruning_rejects_a_model_without_layers(prune, empty):
    with pytest.raises(ValueError, match="no Linear or Conv"):
        prune(empty, 0.5)


def test_bad_models_and_layers_are_rejected():
    model = tiny_mlp(hidden_sizes=(4,))
    with pytest.raises(ValueError, match="no parameters"):
        sparsity_report(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="nn.Module"):
        prune_unstructured("model", 0.5)
    with pytest.raises(ValueError, match="no layer named"):
        prune_unstructured(model, 0.5, layers=["net.9"])
    with pytest.raises(ValueError, match="ReLU"):
        prune_unstructured(model, 0.5, layers=["net.2"])
    with pytest.raises(ValueError, match="not part of the model"):
        prune_unstructured(model, 0.5, layers=[nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="empty"):
        prune_unstructured(model, 0.5, layers=[])
    with pytest.raises(ValueError, match="output layer"):
        prune_structured(nn.Sequential(nn.Linear(3, 2)), 0.5)


# ------------------------------------------------------------------ gradual, iterative


def test_gradual_schedule_is_zhu_and_gupta_cubic():
    schedule = gradual_schedule(0.9, steps=4, initial_sparsity=0.1)
    expected = [0.9 + (0.1 - 0.9) * (1 - t / 4) ** 3 for t in (1, 2, 3, 4)]
    assert schedule == pytest.approx(expected)
    assert schedule[-1] == 0.9 and all(a < b for a, b in pairwise(schedule))
    for kwargs in ({"steps": 0}, {"steps": 2.0}, {"steps": 3, "initial_sparsity": 0.95}):
        with pytest.raises(ValueError):
            gradual_schedule(0.9, **kwargs)
    with pytest.raises(ValueError, match="final_sparsity"):
        gradual_schedule(1.5, 3)


def test_iterative_pruning_with_distillation_from_the_unpruned_model():
    torch.manual_seed(0)
    model = MLP((16, 16), in_features=12, num_classes=3)
    teacher = copy.deepcopy(model)
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    x, y = torch.randn(32, 12), torch.randint(0, 3, (32,))
    batches = list(zip(x.split(16), y.split(16), strict=True))
    zero_counts = []

    def finetune(pruned):
        history = Distiller(pruned, teacher, device="cpu", lr=1e-2).fit(
            batches, epochs=1, progress=False
        )
        zero_counts.append(sum(int((weight(m) == 0).sum()) for m in linears(pruned)))
        return {"loss": history.last["loss"]}

    table = iterative_pruning(model, [0.5, 0.75, 0.9], finetune)
    assert list(table["step"]) == [1, 2, 3]
    assert list(table["target"]) == [0.5, 0.75, 0.9]
    sizes = [m.weight.numel() for m in linears(model)]
    for target, measured, zeros in zip(
        table["target"], table["sparsity"], zero_counts, strict=True
    ):
        assert zeros == sum(expected_k(target, n) for n in sizes), "masks survive fine-tuning"
        assert measured == pytest.approx(zeros / sum(sizes))
    assert "loss" in table and np.isfinite(table["loss"]).all()
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, teacher_state[key]), "the teacher must not change"


def test_iterative_structured_pruning_then_shrink():
    model = tiny_mlp(hidden_sizes=(8, 8))
    table = iterative_pruning(model, [0.25, 0.5], lambda m: None, method="structured")
    assert list(table["sparsity"]) == pytest.approx([0.25, 0.5])
    small = shrink(model)
    assert [m.out_features for m in linears(small)] == [4, 4, 5]
    assert_same_function(model, small, torch.randn(3, 12))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": []}, "empty"),
        ({"schedule": [0.5, 0.3]}, "non-decreasing"),
        ({"schedule": [0.5, 1.5]}, "schedule entry"),
        ({"schedule": "0.5"}, "schedule"),
        ({"method": "random"}, "method"),
        ({"finetune": "train"}, "finetune"),
    ],
)
def test_iterative_pruning_rejects_bad_arguments(kwargs, message):
    arguments = {"schedule": [0.5], "finetune": lambda m: None} | kwargs
    with pytest.raises(ValueError, match=message):
        iterative_pruning(tiny_mlp(hidden_sizes=(4,)), **arguments)
