"""kdlab.quantize.flows: each flow against the float model it started from.

Small random models and random data; the float model's outputs are the reference. A flow
must stay close to it (max error under 5 % of the output range on inputs from the
calibration distribution), leave it unchanged, shrink the saved model about 4x, and print
nothing: no warnings in this process, and no stderr output in a fresh one (C++ warnings
fire once per process, so only a fresh interpreter sees them all).
"""

import functools
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

import kdlab.quantize.flows as qf
import kdlab.quantize.torchao_flows as ao
from kdlab.bench import serialized_size
from kdlab.distill import Distiller
from kdlab.models import MLP, TeacherCNN

TOLERANCE = 0.05  # of the float output's range
SLOW = os.environ.get("KDLAB_SLOW_TESTS") == "1"


@functools.cache
def torchao_error() -> str:
    """Why torchao cannot be used here ("" if it can); imported only when a test needs it."""
    try:
        ao._import_torchao()
    except ImportError as error:
        return str(error)
    return ""


@pytest.fixture
def torchao():
    if torchao_error():
        pytest.skip(torchao_error())


needs_torchao = pytest.mark.usefixtures("torchao")


def make_model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "mlp":
        return MLP((256, 256)).eval()
    return TeacherCNN(width=8).eval()


def images(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


CALIBRATION = [images(32, seed) for seed in range(4)]
TEST_INPUT = images(64, 100)


def quietly(flow, *args, **kwargs):
    """Call a flow and fail if it emitted any warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = flow(*args, **kwargs)
    assert not caught, f"{flow.__name__} warned: {[str(w.message)[:120] for w in caught]}"
    return result


def snapshot(model: nn.Module) -> tuple[bool, dict[str, torch.Tensor], list[type]]:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return model.training, state, [type(m) for m in model.modules()]


def assert_unchanged(model: nn.Module, before) -> None:
    training, state, types = snapshot(model)
    assert training == before[0], "the flow changed the input model's train/eval mode"
    assert types == before[2], "the flow replaced modules of the input model"
    assert state.keys() == before[1].keys(), "the flow changed the input model's state keys"
    for key, value in state.items():
        assert torch.equal(value, before[1][key]), f"the flow changed the input's {key}"


def assert_close(quantized: nn.Module, reference: nn.Module, x=TEST_INPUT, tol=TOLERANCE):
    with torch.no_grad():
        expected = reference(x)
        got = quantized(x)
    assert got.shape == expected.shape
    assert got.dtype == torch.float32, "a quantized model should return float outputs"
    span = float(expected.max() - expected.min())
    error = float((got - expected).abs().max())
    assert error < tol * span, f"max error {error:.4g} >= {tol:.0%} of output range {span:.4g}"


def assert_smaller(quantized: nn.Module, reference: nn.Module, ratio: float = 3.0) -> None:
    got = serialized_size(reference) / serialized_size(quantized)
    assert got > ratio, f"saved size only {got:.2f}x smaller, expected > {ratio}x"


def check_flow(kind: str, flow, *args, **kwargs) -> nn.Module:
    model = make_model(kind)
    before = snapshot(model)
    quantized = quietly(flow, model, *args, **kwargs)
    assert quantized is not model
    assert_unchanged(model, before)
    assert_close(quantized, model)
    assert_smaller(quantized, model)
    return quantized


def calibrate_only(prepared: nn.Module) -> None:
    """A QAT 'training' loop that only observes ranges, so the weights stay the float ones.

    One big batch: QAT's moving-average observers keep the first batch's range almost
    unchanged (averaging constant 0.01), so the first batch must cover the distribution.
    """
    prepared.eval()
    with torch.no_grad():
        prepared(torch.cat(CALIBRATION))


# ----------------------------------------------------------------------------- torch.ao


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_dynamic_ptq(kind):
    quantized = check_flow(kind, qf.dynamic_ptq)
    linears = [m for m in quantized.modules() if type(m).__name__ == "Linear"]
    assert linears and all("dynamic" in type(m).__module__ for m in linears)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_static_ptq(kind):
    quantized = check_flow(kind, qf.static_ptq, CALIBRATION, TEST_INPUT[:1])
    names = {m._get_name() for m in quantized.modules()}  # as printed: QuantizedLinearReLU
    assert "QuantizedLinearReLU" in names, f"Linear-ReLU was not fused: {names}"
    if kind == "cnn":
        assert "QuantizedConvReLU2d" in names, f"Conv-BN-ReLU was not fused: {names}"
        assert not any(isinstance(m, nn.BatchNorm2d) for m in quantized.modules())


def test_static_ptq_takes_a_loader_of_pairs_and_a_generator():
    model = make_model("mlp")
    pairs = [(x, torch.zeros(len(x), dtype=torch.long)) for x in CALIBRATION]
    assert_close(quietly(qf.static_ptq, model, pairs), model)
    assert_close(quietly(qf.static_ptq, model, (x for x in CALIBRATION)), model)


@pytest.mark.parametrize(
    ("batches", "example", "match"),
    [
        ([], None, "calibration_batches is empty"),
        (iter([]), None, "calibration_batches is empty"),
        (CALIBRATION[0], None, "iterable of input batches"),
        ([CALIBRATION[0], "x"], None, "calibration batch 1 must be a torch.Tensor"),
        ([torch.zeros(0, 1, 28, 28)], None, "non-empty batch"),
        ([torch.zeros(2, 784, dtype=torch.long)], None, "floating point"),
        (CALIBRATION, [1.0], "example_input must be a torch.Tensor"),
    ],
)
def test_static_ptq_rejects_bad_inputs(batches, example, match):
    with pytest.raises(ValueError, match=match):
        qf.static_ptq(make_model("mlp"), batches, example)


def test_flows_reject_what_they_cannot_quantize():
    with pytest.raises(ValueError, match="must be a torch.nn.Module"):
        qf.dynamic_ptq("model")
    with pytest.raises(ValueError, match="has none"):
        qf.dynamic_ptq(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    pruned = make_model("mlp")
    torch_prune.l1_unstructured(pruned.net[1], "weight", amount=0.5)
    with pytest.raises(ValueError, match="make_permanent"):
        qf.static_ptq(pruned, CALIBRATION)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_qat_without_weight_updates_matches_float(kind):
    check_flow(kind, qf.qat, calibrate_only, TEST_INPUT[:2])


def test_qat_fine_tunes_with_the_distiller():
    teacher, student = make_model("cnn"), make_model("mlp")
    before = snapshot(student)
    seen = {}

    def train(prepared):
        seen["training"] = prepared.training
        seen["fake_quant"] = sum("FakeQuantize" in type(m).__name__ for m in prepared.modules())
        distiller = Distiller(prepared, teacher, lr=1e-4, device="cpu")
        for x in CALIBRATION:
            with torch.no_grad():
                labels = teacher(x).argmax(1)
            distiller.train_step(x, labels)
        seen["weights"] = prepared.state_dict()["net.1.weight"].clone()

    quantized = quietly(qf.qat, student, train, TEST_INPUT[:2])
    assert seen["training"], "the prepared model should be handed over in train mode"
    assert seen["fake_quant"] > 0, "prepare_qat inserted no fake quantizers"
    assert not torch.equal(seen["weights"], before[1]["net.1.weight"]), "no weight was trained"
    assert_unchanged(student, before)
    assert_smaller(quantized, student)
    with torch.no_grad():
        out = quantized(TEST_INPUT)
    assert out.shape == (64, 10) and torch.isfinite(out).all()


def test_prepare_and_convert_qat_leave_their_inputs_alone():
    model = make_model("cnn")
    prepared = quietly(qf.prepare_qat, model, TEST_INPUT[:2])
    assert prepared.training and not model.training
    calibrate_only(prepared)
    before = snapshot(prepared)
    quantized = quietly(qf.convert_qat, prepared)
    assert_unchanged(prepared, before)
    assert_close(quantized, model)
    with pytest.raises(ValueError, match="returned by prepare_qat"):
        qf.convert_qat(model)
    with pytest.raises(ValueError, match="train_fn must be a function"):
        qf.qat(model, None, TEST_INPUT[:2])


def test_prepare_qat_trains_a_frozen_teacher():
    teacher = make_model("cnn").requires_grad_(False)  # as Distiller leaves its teacher
    prepared = quietly(qf.prepare_qat, teacher, TEST_INPUT[:2])
    assert all(p.requires_grad for p in prepared.parameters()), "the copy stayed frozen"
    assert not any(p.requires_grad for p in teacher.parameters()), "the input was unfrozen"
    before = {k: v.clone() for k, v in prepared.state_dict().items()}
    distiller = Distiller(prepared, lr=1e-3, device="cpu")
    distiller.train_step(CALIBRATION[0], torch.zeros(len(CALIBRATION[0]), dtype=torch.long))
    changed = [k for k, v in prepared.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.endswith("weight") for k in changed), "no weight was trained"


@pytest.mark.skipif(
    "qnnpack" not in torch.backends.quantized.supported_engines, reason="needs two engines"
)
def test_flows_restore_the_quantized_engine():
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = "qnnpack"
    try:
        qf.dynamic_ptq(make_model("mlp"))
        qf.static_ptq(make_model("mlp"), CALIBRATION[:1])
        assert torch.backends.quantized.engine == "qnnpack"
    finally:
        torch.backends.quantized.engine = previous


def test_callers_warnings_are_not_silenced():
    def train(prepared):
        warnings.warn("the caller's own warning", UserWarning, stacklevel=1)

    with pytest.warns(UserWarning, match="the caller's own warning"):
        qf.qat(make_model("mlp"), train, TEST_INPUT[:2])


# ----------------------------------------------------------------------------- torchao


@needs_torchao
@pytest.mark.parametrize("config", ao.TORCHAO_CONFIGS)
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_torchao_quantize(kind, config):
    check_flow(kind, ao.torchao_quantize, config)


@needs_torchao
def test_torchao_quantize_rejects_unknown_configs():
    with pytest.raises(ValueError, match="config must be one of"):
        ao.torchao_quantize(make_model("mlp"), "int3")
    with pytest.raises(ValueError, match="config must be one of"):
        ao.torchao_quantize(make_model("mlp"), 8)


@needs_torchao
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_pt2e_without_compile(kind):
    quantized = check_flow(kind, ao.pt2e_x86, TEST_INPUT[:1], CALIBRATION, compile=False)
    assert not any(p.is_floating_point() and p.dim() > 1 for p in quantized.parameters()), (
        "float weights were left in the converted graph"
    )
    assert_close(quantized, make_model(kind), x=TEST_INPUT[:1])  # dynamic batch, even 1
    quantized.eval()  # kdlab.bench and logits_of call eval() on an exported graph


def test_torchao_flows_say_how_to_install_torchao(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchao", None)  # as if it were not installed
    with pytest.raises(ImportError, match="pip install 'torchao"):
        ao.torchao_quantize(make_model("mlp"))
    with pytest.raises(ImportError, match="pip install 'torchao"):
        ao.pt2e_x86(make_model("mlp"), TEST_INPUT[:1], CALIBRATION)


@needs_torchao
def test_pt2e_rejects_empty_calibration():
    with pytest.raises(ValueError, match="calibration_batches is empty"):
        ao.pt2e_x86(make_model("mlp"), TEST_INPUT[:1], [])


@needs_torchao
@pytest.mark.skipif(not SLOW, reason="torch.compile takes 10-60 s here; KDLAB_SLOW_TESTS=1")
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_pt2e_compiled_smoke(kind, capfd):
    model = make_model(kind)
    quantized = quietly(ao.pt2e_x86, model, TEST_INPUT[:2], CALIBRATION)
    assert isinstance(quantized, ao.CompiledInt8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_close(quantized, model)  # compiles here, on the first call
        assert_close(quantized, model, x=TEST_INPUT[:1])  # and again for a new batch size
    assert not caught, [str(w.message)[:120] for w in caught]
    assert capfd.readouterr().err == "", "compiling wrote to stderr"
    assert_smaller(quantized, model)


# ----------------------------------------------------------------------------- stderr

FRESH_PROCESS = """
import torch
import kdlab.quantize.flows as qf
import kdlab.quantize.torchao_flows as ao
from kdlab.models import MLP

torch.manual_seed(0)
model = MLP((32,)).eval()
batches = [torch.randn(8, 1, 28, 28) for _ in range(2)]
for quantized in (
    qf.dynamic_ptq(model),
    qf.static_ptq(model, batches),
    qf.qat(model, lambda m: m(batches[0]), batches[0]),
):
    quantized(batches[1])
if {torchao}:
    ao.torchao_quantize(model)(batches[1])
    ao.pt2e_x86(model, batches[0], batches, compile=False)(batches[1])
print("done")
"""


def test_flows_write_nothing_to_stderr_in_a_fresh_process():
    code = textwrap.dedent(FRESH_PROCESS).format(torchao=not torchao_error())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "done"
    assert result.stderr == "", f"a flow wrote to stderr:\n{result.stderr[-2000:]}"
