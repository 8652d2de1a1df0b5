"""capture_activations: the right tensors, hooks removed afterwards, clear errors."""

import pytest
import torch
from torch import nn

from kdlab.hooks import activations_of, capture_activations, layer_names


def model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Linear(4, 6), nn.ReLU()),
        nn.Sequential(nn.Linear(6, 5), nn.ReLU()),
        nn.Linear(5, 3),
    )


def hook_count(m: nn.Module) -> int:
    return sum(len(sub._forward_hooks) for sub in m.modules())


def test_captures_the_named_outputs_of_the_last_forward():
    m, x = model(), torch.randn(7, 4)
    with capture_activations(m, "0", "1.0") as acts:
        m(torch.randn(2, 4))
        out = m(x)
    torch.testing.assert_close(acts["0"], m[0](x))
    torch.testing.assert_close(acts["1.0"], m[1][0](m[0](x)))
    torch.testing.assert_close(out, m(x))


def test_captured_activation_keeps_its_gradient_path():
    m = model()
    with capture_activations(m, "1") as acts:
        m(torch.randn(3, 4))
    acts["1"].sum().backward()
    assert m[0][0].weight.grad is not None and m[2].weight.grad is None


def test_hooks_are_removed_on_exit_and_on_error():
    m = model()
    with capture_activations(m, "0", "2"):
        assert hook_count(m) == 2
    assert hook_count(m) == 0
    with pytest.raises(RuntimeError, match="boom"), capture_activations(m, "0"):
        raise RuntimeError("boom")
    assert hook_count(m) == 0


def test_unknown_name_lists_the_valid_ones():
    m = model()
    with pytest.raises(ValueError, match=r"no layer named \['3'\].*valid names: \['0', '0.0'"):
        with capture_activations(m, "3"):
            pass
    with pytest.raises(ValueError, match="at least one layer"):
        with capture_activations(m):
            pass
    assert layer_names(m) == ["0", "0.0", "0.1", "1", "1.0", "1.1", "2"]
    assert hook_count(m) == 0


def test_activations_of_matches_a_manual_forward_in_eval_mode():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.Linear(6, 2))
    m.train()
    x = torch.randn(10, 4)
    got = activations_of(m, "1", x, batch_size=3)
    torch.testing.assert_close(got, m[0](x).detach())  # dropout off: eval mode
    assert not got.requires_grad and m.training and hook_count(m) == 0
