"""The beyond-logits track (notebook 07 and ``benchmarks/methods.py``): the table of methods,
defined once, and one way to train and score any of them, so that a comparison differs only
in the method and the notebook and the benchmark train every method the same way.

- :data:`METHODS`: name -> :class:`Method`, in the order of the comparison: how to build
  each method's distiller (its weights, temperatures and layers);
- :data:`TRAINING`: what every method shares (Adam at a constant lr 1e-3, batch 128); only
  the epochs, the training subset and the seeds differ between the notebook and the
  benchmark;
- :func:`teacher_outputs` computes the teacher's logits and feature maps once;
- :func:`run_method` trains and scores one distiller, :func:`compare` every method over seeds.

The losses themselves are written inline in notebook 07 and checked there against
:mod:`kdlab.losses`; this module only says which loss, with which weight, on which layer.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from kdlab import runtime
from kdlab.data import ImageSet, batches
from kdlab.distill import (
    DecoupledDistiller,
    Distiller,
    FeatureDistiller,
    MutualDistiller,
    NativeEnsembleDistiller,
)
from kdlab.hooks import activations_of
from kdlab.losses import (
    HintLoss,
    OnTheFlyNativeEnsemble,
    attention_transfer_loss,
    rkd_loss,
    similarity_preserving_loss,
)
from kdlab.metrics import evaluate
from kdlab.models import StudentCNN, logits_of
from kdlab.recipes.mnist_family import STUDENT_RECIPE

__all__ = [
    "LAYER",
    "Training",
    "TRAINING",
    "Method",
    "METHODS",
    "one_model",
    "pooled_rkd",
    "teacher_outputs",
    "run_method",
    "compare",
]

LAYER = "features.1"  # the 7x7 stage of both networks: 16 student vs 64 teacher channels
FAMILIES = ("none", "logits", "features", "online")


@dataclass(frozen=True)
class Training:
    """What every method of the comparison shares: Adam with ``lr``, ``batch_size`` and
    ``lr_schedule`` (``"cosine"``: decayed to 0 over the whole run, as
    :class:`kdlab.distill.Distiller` does it; ``"constant"``)."""

    lr: float = 1e-3
    batch_size: int = 128
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ValueError(f"batch_size must be an int, got {self.batch_size!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'cosine', got {self.lr_schedule!r}"
            )

    def describe(self) -> str:
        if self.lr_schedule == "cosine":
            return f"Adam, lr {self.lr:g} decayed to 0 on a cosine, batch {self.batch_size}"
        return f"Adam at a constant lr {self.lr:g}, batch {self.batch_size}"


# A constant rate, chosen on the validation set of Fashion-MNIST (3 seeds; 2 at the larger
# size): a cosine decay to 0 cost every method accuracy at the notebook's full size (6,000
# images, 3 epochs: 80.7 against 83.1 % on average, 1.9 to 4.4 points per method, far beyond
# the seed spread, and it reordered the methods) and was no better at the benchmark's (12,000
# images, 10 epochs: 87.45 against 87.84 %; no method gained beyond its spread). A likely
# reason: the decay halves the mean learning rate of runs still far from converged.
TRAINING = Training()


@dataclass(frozen=True)
class Method:
    """One row of the comparison: a student trained with ``build(teacher, seed=..., lr=...,
    lr_schedule=..., **options)``.

    ``family`` says what the batches carry besides ``(x, y)``: the teacher's logits
    (``"logits"``), its activation at ``options["layer"]`` (``"features"``), or nothing
    (``"none"``: labels alone; ``"online"``: students teaching each other). ``term`` says in
    words what is added to the cross-entropy. ``options`` (read-only) hold the weights,
    temperatures and layers; :meth:`with_options` makes a variant, e.g.
    ``METHODS["SP"].with_options(weight=300.0)``.
    """

    name: str
    family: str
    term: str
    build: Callable[..., Distiller] = field(repr=False, compare=False)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        if self.family == "features" and "layer" not in self.options:
            raise ValueError(f"{self.name}: a feature method needs a 'layer' option")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def with_options(self, **changes: Any) -> Method:
        """A copy with some options changed (only options this method has)."""
        unknown = sorted(set(changes) - set(self.options))
        if unknown:
            raise ValueError(f"{self.name} has no options {unknown}; it has {list(self.options)}")
        return dataclasses.replace(self, options={**self.options, **changes})

    def distiller(
        self, teacher: nn.Module | None, seed: int, training: Training = TRAINING
    ) -> Distiller:
        """The distiller of one run. Seeds everything first, so every method starts from
        the same student initialisation for a given seed."""
        runtime.seed_everything(seed)
        return self.build(
            teacher, seed=seed, lr=training.lr, lr_schedule=training.lr_schedule, **self.options
        )

    def settings(self) -> str:
        """The options in words, for a table (a term's factory is named, not shown)."""
        shown = {k: v for k, v in self.options.items() if k != "make_term"}
        return ", ".join(
            f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
        )

    def describe(self) -> dict[str, str]:
        """This method as a row of a table: name, family, extra term and settings."""
        return {
            "method": self.name,
            "family": self.family,
            "extra term": self.term,
            "settings": self.settings(),
        }


def one_model(branches: int = 3) -> OnTheFlyNativeEnsemble:
    """ONE with the student's first stage as the trunk and ``branches`` copies of its second
    stage and head as branches: branch 0 with the trunk is exactly a ``StudentCNN``."""
    base = StudentCNN()
    heads = [copy.deepcopy(nn.Sequential(base.features[1], base.head)) for _ in range(branches)]
    return OnTheFlyNativeEnsemble(base.features[0], heads, gate_features=base.width)


def pooled_rkd(s: Tensor, t: Tensor) -> Tensor:
    """RKD (25 distance + 50 angle) on the globally pooled feature maps."""
    return rkd_loss(s.mean(dim=(2, 3)), t.mean(dim=(2, 3)))


def _no_kd(teacher: nn.Module | None, **kwargs: Any) -> Distiller:
    return Distiller(StudentCNN(), None, **kwargs)


def _kd(teacher: nn.Module, *, temperature: float, alpha: float, **kwargs: Any) -> Distiller:
    return Distiller(StudentCNN(), teacher, temperature=temperature, alpha=alpha, **kwargs)


def _dkd(teacher: nn.Module, **kwargs: Any) -> Distiller:
    return DecoupledDistiller(StudentCNN(), teacher, **kwargs)


def _feature(
    teacher: nn.Module,
    *,
    make_term: Callable[[], Callable[[Tensor, Tensor], Tensor]],
    layer: str,
    weight: float,
    **kwargs: Any,
) -> Distiller:
    # a fresh term per run: HintLoss holds a regressor that must not carry over between runs
    return FeatureDistiller(
        StudentCNN(),
        teacher,
        make_term(),
        student_layer=layer,
        teacher_layer=layer,
        weight=weight,
        **kwargs,
    )


def _dml(teacher: nn.Module | None, *, peers: int, **kwargs: Any) -> Distiller:
    return MutualDistiller([StudentCNN() for _ in range(peers)], **kwargs)


def _one(teacher: nn.Module | None, *, branches: int, **kwargs: Any) -> Distiller:
    return NativeEnsembleDistiller(one_model(branches), **kwargs)


def _hint_16_to_64() -> HintLoss:
    return HintLoss(16, 64)  # regressor: 1x1 conv from the student's 16 to the teacher's 64


def _attention_transfer() -> Callable[[Tensor, Tensor], Tensor]:
    return attention_transfer_loss


def _pooled_rkd() -> Callable[[Tensor, Tensor], Tensor]:
    return pooled_rkd


def _similarity_preserving() -> Callable[[Tensor, Tensor], Tensor]:
    return similarity_preserving_loss


# The weights follow the papers where their scale carries over (SP, RKD) and were set by
# rough order of magnitude otherwise; none was tuned on the test set. DKD's paper uses
# beta = 8 on CIFAR-100 with a 20-epoch warm-up, which runs this short cannot copy.
METHODS: Mapping[str, Method] = MappingProxyType(
    {
        m.name: m
        for m in (
            Method("no KD", "none", "none", _no_kd),
            Method(
                "KD",
                "logits",
                "soft targets, mixed with CE by alpha (notebook 02)",
                _kd,
                {"temperature": STUDENT_RECIPE.temperature, "alpha": STUDENT_RECIPE.alpha},
            ),
            Method(
                "DKD",
                "logits",
                "TCKD + NCKD (decoupled KD)",
                _dkd,
                {"tc_weight": 1.0, "nc_weight": 2.0, "temperature": 4.0},
            ),
            Method(
                "FitNets",
                "features",
                "hint through a 1x1 regressor (16 -> 64 channels)",
                _feature,
                {"layer": LAYER, "weight": 1.0, "make_term": _hint_16_to_64},
            ),
            Method(
                "AT",
                "features",
                "attention transfer",
                _feature,
                {"layer": LAYER, "weight": 3.0, "make_term": _attention_transfer},
            ),
            Method(
                "RKD",
                "features",
                "25 distance + 50 angle on the pooled maps",
                _feature,
                {"layer": LAYER, "weight": 1.0, "make_term": _pooled_rkd},
            ),
            Method(
                "SP",
                "features",
                "similarity graph of the batch (weight as in the paper)",
                _feature,
                {"layer": LAYER, "weight": 3000.0, "make_term": _similarity_preserving},
            ),
            Method("DML", "online", "peers, no teacher; peer 0 is tested", _dml, {"peers": 2}),
            Method(
                "ONE", "online", "branches, no teacher; branch 0 is tested", _one, {"branches": 3}
            ),
        )
    }
)


def _carried(method: Method) -> tuple[str, str | None] | None:
    # what a method's batches carry: the teacher's logits, its activation at a layer, nothing
    if method.family == "logits":
        return ("logits", None)
    if method.family == "features":
        return ("features", method.options["layer"])
    return None


def teacher_outputs(
    methods: Iterable[Method], teacher: nn.Module, x: Tensor
) -> dict[str, Tensor | None]:
    """Per method name, what its batches carry: the teacher's logits or its activation at
    the method's layer on ``x`` (once, on the teacher's device, kept on ``x``'s), or None.
    Exact: no augmentation and the teacher in eval mode, so every epoch computes the same."""
    device = runtime.device_of(teacher)
    computed: dict[tuple[str, str | None], Tensor] = {}
    out: dict[str, Tensor | None] = {}
    with torch.no_grad():
        for method in methods:
            key = _carried(method)
            if key is not None and key not in computed:
                layer = key[1]
                computed[key] = (
                    logits_of(teacher, x)
                    if layer is None
                    else activations_of(teacher, layer, x.to(device)).to(x.device)
                )
            out[method.name] = None if key is None else computed[key]
    return out


def run_method(
    make: Callable[[int], Distiller],
    train: ImageSet,
    test: ImageSet,
    *,
    epochs: int,
    seed: int,
    teacher_outputs: Tensor | None = None,
    batch_size: int = TRAINING.batch_size,
    progress: bool | None = None,
) -> dict[str, float]:
    """Build a distiller with ``make(seed)``, train it ``epochs`` times over ``train``
    (shuffled with ``seed``; ``teacher_outputs``, one row per training example, ride along
    as each batch's third item), and return the student's test accuracy and the mean
    training seconds per epoch; ``progress`` as :meth:`kdlab.distill.Distiller.fit` takes
    it (None: :func:`kdlab.runtime.progress_default`)."""
    distiller = make(seed)
    tensors = [train.x, train.y] + ([] if teacher_outputs is None else [teacher_outputs])
    loader = batches(*tensors, batch_size=batch_size, shuffle=True, seed=seed)
    start = time.perf_counter()
    distiller.fit(loader, epochs, progress=progress)
    seconds = (time.perf_counter() - start) / epochs
    scores = evaluate(distiller.student, test.loader(1000), distiller.device)
    return {"accuracy": scores["accuracy"], "seconds_per_epoch": seconds}


def compare(
    methods: Iterable[Method],
    teacher: nn.Module,
    train: ImageSet,
    test: ImageSet,
    *,
    seeds: Sequence[int],
    epochs: int,
    training: Training = TRAINING,
    on_run: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train every method once per seed (every seed runs all methods in turn, so timings
    are measured side by side) and score it on ``test``.

    One dict per run: ``seed``, ``method``, ``accuracy`` (a fraction), ``seconds_per_epoch``
    (training wall clock) and ``cpu_seconds_per_epoch`` (process CPU time, including
    building the distiller and the test pass); ``on_run`` is called with each as it ends.
    Each run trains on its distiller's device; the teacher ends where it was.
    """
    methods = list(methods)
    if not methods:
        raise ValueError("pass at least one method, e.g. METHODS.values()")
    if not seeds:
        raise ValueError("pass at least one seed, e.g. seeds=[0, 1, 2]")
    outputs = teacher_outputs(methods, teacher, train.x)
    runs = []
    with runtime.devices_restored(teacher):
        for seed in seeds:
            for method in methods:
                cpu = time.process_time()
                result = run_method(
                    lambda s, method=method: method.distiller(teacher, s, training),
                    train,
                    test,
                    epochs=epochs,
                    seed=seed,
                    teacher_outputs=outputs[method.name],
                    batch_size=training.batch_size,
                )
                run = {
                    "seed": seed,
                    "method": method.name,
                    **result,
                    "cpu_seconds_per_epoch": (time.process_time() - cpu) / epochs,
                }
                runs.append(run)
                if on_run is not None:
                    on_run(run)
    return runs
