"""Device-agnostic code: one device choice (``KDLAB_DEVICE``, then the best available), helpers
that follow the model's device, recipes that hand models back where they were, loss checks
that never wait on an accelerator, and no hard-coded ``"cpu"`` or ``.cuda()`` outside
``kdlab/runtime.py``.

There is no GPU on the test machines, so a model reports a device it is not on (a fake
``parameters()``), batches record where they are sent, and the ``meta`` device stands in
for an accelerator: it has shapes and dtypes but no values, so any read of a value raises.
"""

import ast
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlab import runtime
from kdlab.cache import cached_model
from kdlab.data import batches
from kdlab.distill import Distiller
from kdlab.distill.views import TeachingBatches
from kdlab.losses import _checks, distillation_loss, soft_target_loss
from kdlab.metrics import evaluate, evaluate_segmentation
from kdlab.models import logits_of

ROOT = Path(__file__).resolve().parent.parent
META = torch.device("meta")
HOST_STRING = re.compile(r"cpu(:\d+)?")  # what torch.device reads as the host


# -- no hard-coded host, no .cuda() ------------------------------------------------------------


def device_problems(source: str, where: str) -> list[str]:
    """``where:line: ...`` for each string constant naming the host (``"cpu"``, ``"cpu:0"``,
    also inside ``torch.device(...)``) and each ``.cuda()`` call in ``source``."""
    problems = []  # (line, message)
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and HOST_STRING.fullmatch(node.value)
        ):
            problems.append((node.lineno, f"{node.value!r} (use kdlab.runtime.HOST)"))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "cuda"
        ):
            problems.append((node.lineno, ".cuda() (use .to(kdlab.pick_device()))"))
    return [f"{where}:{line}: {message}" for line, message in sorted(problems)]


def notebook_code(path: Path) -> list[tuple[str, str]]:
    """``(where, source)`` of each code cell, IPython magics and shell lines blanked."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in lines]
        out.append((f"{path.name} cell {i}", "\n".join(lines)))
    return out


def project_sources() -> list[tuple[str, str]]:
    files = [p for p in sorted((ROOT / "kdlab").rglob("*.py")) if p.name != "runtime.py"]
    files += sorted((ROOT / "benchmarks").glob("*.py"))
    sources = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in files]
    notebooks = sorted((ROOT / "course").glob("*.ipynb"))
    notebooks += sorted((ROOT / "assignments" / "source").glob("*/*.ipynb"))
    for notebook in notebooks:
        sources += notebook_code(notebook)
    return sources


def test_no_hard_coded_host_or_cuda_outside_runtime():
    sources = project_sources()
    assert len(sources) > 20, "the scan found too few files; did the layout change?"
    problems = [p for where, source in sources for p in device_problems(source, where)]
    assert not problems, (
        "hard-coded devices: name the host with kdlab.runtime.HOST (and say why it must be the "
        "host), move to an accelerator with kdlab.pick_device(): " + "; ".join(problems)
    )


def test_the_scan_finds_what_it_forbids(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\n"
        "x = torch.zeros(2).to('cpu')\n"
        "host = torch.device('cpu:0')\n"
        "model = torch.nn.Linear(2, 2).cuda()\n"
    )
    problems = device_problems(bad.read_text(), "bad.py")
    assert [p.split(":")[1] for p in problems] == ["2", "3", "4"], problems

    good = "import torch\nfrom kdlab import runtime\nx = torch.zeros(2).to(runtime.HOST).cpu()\n"
    good += "keys = ['CPU', 'QuantizedCPU']\nok = torch.cuda.is_available()\n"
    assert device_problems(good, "good.py") == []

    notebook = tmp_path / "nb.ipynb"
    cells = [
        {"cell_type": "markdown", "source": ["model.cuda() in prose is fine"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", 'device = "cpu"\n']},
    ]
    notebook.write_text(json.dumps({"cells": cells}))
    [(where, source)] = notebook_code(notebook)
    assert where == "nb.ipynb cell 1"
    assert device_problems(source, where) == ["nb.ipynb cell 1:2: 'cpu' (use kdlab.runtime.HOST)"]


# -- one device choice -------------------------------------------------------------------------


def test_kdlab_device_chooses_the_device(monkeypatch):
    monkeypatch.setenv("KDLAB_DEVICE", " CPU ")
    assert runtime.pick_device() == runtime.HOST
    assert runtime.pick_device(META) == META  # an explicit device still wins
    monkeypatch.delenv("KDLAB_DEVICE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.pick_device() == runtime.HOST


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("gpu", "is not a device name"),
        ("cuda", "this machine has no cuda"),
        ("mps", "this machine has no mps"),
    ],
)
def test_kdlab_device_that_is_not_here_fails_with_the_fix(monkeypatch, value, said):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("KDLAB_DEVICE", value)
    with pytest.raises(ValueError, match=said) as error:
        runtime.pick_device()
    assert f"KDLAB_DEVICE={value!r}" in str(error.value)
    assert "set KDLAB_DEVICE to one of cpu, or unset it" in str(error.value)


def test_kdlab_device_with_a_gpu_number_beyond_the_count(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("KDLAB_DEVICE", "cuda:1")
    assert runtime.pick_device() == torch.device("cuda:1")
    monkeypatch.setenv("KDLAB_DEVICE", "cuda:2")
    with pytest.raises(ValueError, match=r"has 2 cuda device\(s\), numbered from 0.*cuda:0"):
        runtime.pick_device()


class Elsewhere(nn.Module):
    """A linear model that reports ``device`` as its place (a GPU on a machine without
    one) and records every ``.to``; it computes on the host all the same."""

    def __init__(self, device: str, classes: int = 3):
        super().__init__()
        self.linear = nn.Linear(4, classes)
        self.device, self.moves = torch.device(device), []

    def parameters(self, recurse: bool = True):
        yield SimpleNamespace(device=self.device)

    def to(self, device):
        self.moves.append(torch.device(device))
        self.device = torch.device(device)
        return self

    def forward(self, x):
        return self.linear(x)


class Sent:
    """A batch item that records the device it is sent to, and stays a host tensor."""

    def __init__(self, tensor, log):
        self.tensor, self.log = tensor, log

    def to(self, device):
        self.log.append(torch.device(device))
        return self.tensor


def test_device_of_reads_parameters_then_buffers_then_says_host():
    assert runtime.device_of(nn.Linear(2, 2)) == runtime.HOST
    assert runtime.device_of(nn.ReLU()) == runtime.HOST
    buffers_only = nn.BatchNorm1d(3, affine=False).to(META)
    assert runtime.device_of(buffers_only) == META
    assert runtime.device_of(Elsewhere("cuda:1")) == torch.device("cuda:1")


def test_devices_restored_moves_models_back_even_after_an_error():
    model, other = Elsewhere("cpu"), Elsewhere("cuda:0")
    with pytest.raises(RuntimeError, match="stop"):
        with runtime.devices_restored(model, None, other):
            model.to("cuda:1")  # as a Distiller moves its student
            raise RuntimeError("stop")
    assert model.moves == [torch.device("cuda:1"), runtime.HOST]
    assert other.moves == []  # never moved: left alone


# -- helpers follow the model ------------------------------------------------------------------


def test_evaluate_sends_each_batch_to_the_models_device():
    model, log = Elsewhere("cuda:1"), []
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    data = [(Sent(x[:3], log), Sent(y[:3], log)), (Sent(x[3:], log), Sent(y[3:], log))]
    scores = evaluate(model, data)
    assert log == [torch.device("cuda:1")] * 4
    assert scores["n"] == 6
    assert scores["loss"] == pytest.approx(float(F.cross_entropy(model(x), y).detach()), rel=1e-5)
    log.clear()
    evaluate(model, data, device=META)  # an explicit device wins
    assert log == [META] * 4


def test_evaluate_segmentation_sends_each_batch_to_the_models_device():
    model, log = Elsewhere("cuda:0"), []
    model.forward = lambda x: x  # the input is the logits map
    logits, labels = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    scores = evaluate_segmentation(model, [(Sent(logits, log), Sent(labels, log))], 3)
    assert log == [torch.device("cuda:0")] * 2
    assert scores["confusion"].device == runtime.HOST and scores["pixels"] == 32


class OnMeta(nn.Module):
    """A teacher whose weights are on the meta device: it checks that its input was moved
    there, and answers with host logits (meta tensors hold no values to return)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.register_buffer("where", torch.empty(0, device=META))
        self.classes, self.inputs = classes, 0

    def forward(self, x):
        assert x.device == META, f"the input is on {x.device}, the model on meta"
        self.inputs += len(x)
        return torch.zeros(len(x), self.classes)


def test_logits_of_computes_on_the_models_device_and_returns_on_the_inputs():
    model = OnMeta().eval()
    out = logits_of(model, torch.randn(10, 1, 8, 8), batch_size=4)
    assert out.shape == (10, 10) and out.device == runtime.HOST and model.inputs == 10


@pytest.mark.parametrize("mode", ["fixed", "independent", "consistent", "function_matching"])
def test_teaching_batches_run_the_teacher_where_it_is(mode):
    teacher = OnMeta().eval()  # as after a Distiller moved it to a GPU
    data = TeachingBatches(teacher, torch.rand(6, 1, 8, 8), torch.arange(6), mode, batch_size=4)
    for view, y, targets in data:
        assert view.device == y.device == targets.device == runtime.HOST
        assert targets.shape == (len(view), 10)


def test_distiller_then_evaluate_on_the_device_kdlab_device_names(monkeypatch):
    monkeypatch.setenv("KDLAB_DEVICE", "cpu")
    generator = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 8, generator=generator), torch.randint(0, 3, (64,), generator=generator)
    teacher = nn.Linear(8, 3).eval()
    student = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
    assert distiller.device == runtime.HOST
    history = distiller.fit(batches(x, y, logits_of(teacher, x), batch_size=16), 1)
    assert len(history) == 1
    scores = evaluate(distiller.student, batches(x, y, batch_size=32))
    assert scores["n"] == 64 and runtime.device_of(distiller.student) == distiller.device


def test_a_trained_cached_model_comes_back_on_the_host():
    moves = []

    class Recorded(nn.Linear):
        def to(self, *args, **kwargs):
            moves.append(args[0] if args else kwargs.get("device"))
            return super().to(*args, **kwargs)

    model, info = cached_model("devices-test", {"n": 1}, lambda: Recorded(2, 2), lambda m: {})
    assert info["status"] == "trained" and moves == [runtime.HOST]
    assert runtime.device_of(model) == runtime.HOST


# -- loss checks do not wait on an accelerator ------------------------------------------------


def meta_batch():
    student, teacher = torch.randn(8, 10, device=META), torch.randn(8, 10, device=META)
    return student, teacher, torch.zeros(8, dtype=torch.long, device=META)


def test_meta_tensors_hold_no_values_to_read():
    with pytest.raises((RuntimeError, NotImplementedError)):
        bool(torch.isfinite(torch.randn(3, device=META)).all())


def test_value_checks_become_device_assertions_off_the_host(monkeypatch):
    asserted = []
    monkeypatch.setattr(torch, "_assert_async", lambda ok, message: asserted.append(message))
    student, teacher, targets = meta_batch()
    assert soft_target_loss(student, teacher, 2.0).device == META
    assert distillation_loss(student, teacher, targets, 2.0, 0.5).device == META
    assert asserted[:2] == [
        "student_logits contains NaN or infinite values; check the model's output",
        "teacher_logits contains NaN or infinite values; check the model's output",
    ]
    assert "targets must lie in [0, 9] for 10 classes" in asserted


def test_value_checks_are_skipped_where_the_device_has_no_assertion(monkeypatch):
    monkeypatch.setattr(_checks, "_device_asserts", lambda device_type: False)
    monkeypatch.setattr(torch, "_assert_async", lambda *args: pytest.fail("asserted"))
    student, teacher, targets = meta_batch()
    distillation_loss(student, teacher, targets, 2.0, 0.5)


def test_kdlab_check_values_reads_values_on_any_device(monkeypatch):
    monkeypatch.setenv("KDLAB_CHECK_VALUES", "1")
    student, teacher, _ = meta_batch()
    with pytest.raises((RuntimeError, NotImplementedError)):  # it read a meta value
        soft_target_loss(student, teacher, 2.0)


def test_shape_checks_stay_on_every_device():
    student, teacher, targets = meta_batch()
    with pytest.raises(ValueError, match="same shape"):
        soft_target_loss(student, teacher[:, :5], 2.0)
    with pytest.raises(ValueError, match="targets must have shape"):
        distillation_loss(student, teacher, targets[:4], 2.0, 0.5)


def test_value_checks_on_the_host_still_name_the_problem():
    logits = torch.randn(4, 3)
    with pytest.raises(ValueError, match="student_logits contains NaN"):
        soft_target_loss(logits.clone().fill_(float("nan")), logits, 2.0)
    with pytest.raises(ValueError, match=r"got values in \[0, 7\]"):
        distillation_loss(logits, logits, torch.tensor([0, 1, 2, 7]), 2.0, 0.5)
