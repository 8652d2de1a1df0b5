"""kdlab.bench: counts and FLOPs against hand formulas; timings only for their shape."""

import math

import pytest
import torch
from torch import nn

from kdlab import bench

FAST = 0.05  # seconds of timing per measurement: enough to check the plumbing


def linear_stack(*widths: int) -> nn.Sequential:
    layers = []
    for a, b in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def test_count_parameters_matches_hand_count():
    model = linear_stack(5, 7, 3)
    assert bench.count_parameters(model) == (5 * 7 + 7) + (7 * 3 + 3)
    model[0].requires_grad_(False)
    assert bench.count_parameters(model, trainable_only=True) == 7 * 3 + 3
    assert bench.count_parameters(model) == (5 * 7 + 7) + (7 * 3 + 3)
    assert bench.count_parameters(nn.ReLU()) == 0


def test_serialized_size_grows_four_bytes_per_float32_parameter():
    small, large = nn.Linear(100, 100), nn.Linear(200, 200)
    extra = bench.count_parameters(large) - bench.count_parameters(small)
    grown = bench.serialized_size(large) - bench.serialized_size(small)
    assert grown == pytest.approx(4 * extra, rel=0.01)
    single = bench.serialized_size(small)
    double = bench.serialized_size(small.double())  # float64: 4 more bytes per parameter
    assert double - single == pytest.approx(4 * bench.count_parameters(small), rel=0.02)


@pytest.mark.parametrize(("batch", "fan_in", "fan_out"), [(1, 5, 7), (3, 16, 4), (8, 64, 10)])
def test_flops_of_linear(batch, fan_in, fan_out):
    got = bench.flops(nn.Linear(fan_in, fan_out), (fan_in,), batch_size=batch)
    assert got == 2 * batch * fan_in * fan_out


def test_flops_of_linear_stack_add_up():
    assert bench.flops(linear_stack(20, 30, 10), (20,), 4) == 2 * 4 * (20 * 30 + 30 * 10)


@pytest.mark.parametrize(("cin", "cout", "k", "size"), [(1, 4, 3, 8), (3, 8, 5, 12), (2, 2, 1, 7)])
def test_flops_of_conv2d(cin, cout, k, size):
    model = nn.Conv2d(cin, cout, k, padding=k // 2)
    got = bench.flops(model, (cin, size, size))
    assert got == 2 * cout * size * size * cin * k * k


def test_flops_restores_training_mode():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    bench.flops(model, (4,))
    assert model.training


@pytest.mark.parametrize(("batch", "threads"), [(1, 1), (4, 2)])
def test_latency_reports_median_threads_and_batch(batch, threads):
    model = linear_stack(16, 32, 4)
    result = bench.latency(model, (16,), batch, min_run_time=FAST, threads=threads)
    assert result.median_s > 0 and result.runs >= result.blocks >= 1
    if result.blocks >= bench.MIN_BLOCKS_FOR_SPREAD:
        assert result.iqr_s >= 0
    else:  # too few blocks for a spread: NaN, never a fake zero
        assert math.isnan(result.iqr_s)
    assert (result.batch_size, result.threads, result.device) == (batch, threads, "cpu")
    assert result.median_ms == pytest.approx(result.median_s * 1e3)
    assert result.throughput == pytest.approx(batch / result.median_s)
    assert model.training


def test_latency_threads_default_to_torch_setting():
    result = bench.latency(nn.Linear(4, 2), (4,), min_run_time=FAST)
    assert result.threads == torch.get_num_threads()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -3}, "batch_size"),
        ({"min_run_time": 0}, "min_run_time"),
    ],
)
def test_latency_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bench.latency(nn.Linear(4, 2), (4,), **kwargs)


def test_compare_models_table():
    models = {"big": linear_stack(32, 64, 10), "small": linear_stack(32, 8, 10)}
    table = bench.compare_models(models, (32,), batch_sizes=(1, 8), min_run_time=FAST, threads=1)
    expected = {"parameters", "size_MB", "MFLOPs", "size_ratio"}
    expected |= {f"{c}@{b}" for c in ("ms", "iqr_ms", "speedup") for b in (1, 8)}
    assert set(table.columns) == expected
    assert list(table.index) == ["big", "small"]
    assert table.loc["big", "size_ratio"] == 1.0
    assert table.loc["big", "speedup@1"] == 1.0 and table.loc["big", "speedup@8"] == 1.0
    for name, model in models.items():
        assert table.loc[name, "parameters"] == bench.count_parameters(model)
        assert table.loc[name, "MFLOPs"] == pytest.approx(bench.flops(model, (32,)) / 1e6)
    ratio = bench.serialized_size(models["big"]) / bench.serialized_size(models["small"])
    assert table.loc["small", "size_ratio"] == pytest.approx(ratio)
    speedup = table.loc["big", "ms@8"] / table.loc["small", "ms@8"]
    assert table.loc["small", "speedup@8"] == pytest.approx(speedup)
    assert table.attrs["threads"] == 1


def test_compare_models_rounds_take_the_median_of_each_models_timings(monkeypatch):
    calls = []
    fake_ms = iter([5.0, 1.0, 4.0, 2.0, 3.0, 9.0])  # a, b, a, b, a, b

    def fake_latency(model, input_shape, batch_size, **kwargs):
        calls.append((model, batch_size))
        return bench.Latency(next(fake_ms) / 1e3, 0.0, batch_size, 1, "cpu", runs=1, blocks=1)

    monkeypatch.setattr(bench, "latency", fake_latency)
    a, b = nn.Linear(4, 2), nn.Linear(4, 2)
    table = bench.compare_models({"a": a, "b": b}, (4,), (1,), rounds=3)
    assert calls == [(a, 1), (b, 1)] * 3  # every model in turn, each round
    assert table.loc["a", "ms@1"] == pytest.approx(4.0)  # median of 5, 4, 3
    assert table.loc["b", "ms@1"] == pytest.approx(2.0)  # median of 1, 2, 9
    assert table.loc["b", "speedup@1"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="rounds"):
        bench.compare_models({"a": a}, (4,), (1,), rounds=0)


def test_compare_models_named_reference_and_errors():
    models = {"a": nn.Linear(8, 2), "b": nn.Linear(8, 4)}
    table = bench.compare_models(models, (8,), (1,), reference="b", min_run_time=FAST)
    assert table.loc["b", "size_ratio"] == 1.0 and table.loc["a", "size_ratio"] > 1
    with pytest.raises(ValueError, match="empty"):
        bench.compare_models({}, (8,))
    with pytest.raises(ValueError, match="reference"):
        bench.compare_models(models, (8,), reference="c")
    with pytest.raises(ValueError, match="batch_size"):
        bench.compare_models(models, (8,), batch_sizes=(0,), min_run_time=FAST)


# ------------------------------------------------------------------ wrong input shape


@pytest.mark.parametrize(
    ("measure", "kwargs"),
    [
        (bench.latency, {"min_run_time": FAST}),
        (bench.throughput, {"batch_size": 4, "min_run_time": FAST}),
        (bench.flops, {}),
    ],
)
def test_wrong_input_shape_names_the_shape_and_the_fix(measure, kwargs):
    model = nn.Linear(10, 2)
    batch = kwargs.get("batch_size", 1)
    with pytest.raises(ValueError) as error:
        measure(model, (3,), **kwargs)
    message = str(error.value)
    assert f"({batch}, 3) = (batch_size, *input_shape)" in message
    assert "in_features=10" in message and "pass input_shape=(10,)" in message
    assert isinstance(error.value.__cause__, RuntimeError)  # PyTorch's own error is kept
    assert model.training  # the mode is restored on failure too


def test_wrong_channels_name_the_first_convolution():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ValueError, match=r"\(1, 1, 28, 28\)") as error:
        bench.flops(model, (1, 28, 28))
    assert "Conv2d '0', takes in_channels=3: pass input_shape=(3, H, W)" in str(error.value)


def test_first_layer_after_a_reshape_gives_no_made_up_shape():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ValueError, match="in_features=784") as error:
        bench.latency(model, (1, 28), min_run_time=FAST)
    assert "input_shape=(784,)" not in str(error.value)  # a flattened (1, 28, 28) also fits
    assert "without the batch dimension" in str(error.value)


def test_compare_models_names_the_shape():
    models = {"big": linear_stack(32, 64, 10), "small": linear_stack(32, 8, 10)}
    with pytest.raises(ValueError, match=r"\(1, 16\).*in_features=32"):
        bench.compare_models(models, (16,), batch_sizes=(1,), min_run_time=FAST)


def test_input_shape_must_be_a_tuple():
    with pytest.raises(ValueError, match=r"tuple of ints, e.g. \(10,\)"):
        bench.flops(nn.Linear(10, 2), 10)
