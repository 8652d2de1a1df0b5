"""a6_online_consistent: deep mutual learning (each peer's loss, one step of both peers),
consistent views for teacher and student, and mixup of a batch; a written answer graded by
hand (its points are not autograded)."""

import json
import textwrap
from pathlib import Path

from assignment_specs import Assignment, Bug, Diagnosis

NAME = "a6_online_consistent"
SOURCE = Path(__file__).resolve().parents[2] / "assignments" / "source" / NAME / f"{NAME}.ipynb"

_CONSISTENT = "return view, view.clone()"
_SECOND_DRAW = """top = torch.randint(0, h - crop + 1, (n,), generator=generator)
    left = torch.randint(0, w - crop + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    other = [x[i, :, top[i] : top[i] + crop, left[i] : left[i] + crop] for i in range(n)]
    return view, torch.stack([v.flip(-1) if f else v for v, f in zip(other, flip)])"""
_ONE_DRAW = """top = torch.randint(0, h - crop + 1, (n,), generator=generator)
    left = torch.randint(0, w - crop + 1, (n,), generator=generator)"""
_BATCH_DRAW = """top = torch.randint(0, h - crop + 1, (1,), generator=generator).expand(n)
    left = torch.randint(0, w - crop + 1, (1,), generator=generator).expand(n)"""
_MIXED_TARGETS = "lam * targets + (1 - lam) * targets[perm]"
_BETA = "float(torch.distributions.Beta(alpha, alpha).sample())"


def _d(function: str, bug: str, old: str, new: str, says: str, values: bool = True) -> Diagnosis:
    """A bug of ``function``, whose solution cell and test cell are named after it."""
    return Diagnosis(function, function, bug, old, new, f"test_{function}", says, values)


A6_DIAGNOSES = (
    _d(
        "dml_losses",
        "the other peer's prediction not detached",
        "other.detach() / T",
        "other / T",
        "not detached",
        values=False,
    ),
    _d(
        "dml_losses",
        "KL direction swapped",
        "F.kl_div(log_q, log_p,",
        "F.kl_div(log_p, log_q,",
        "KL direction swapped",
    ),
    _d("dml_losses", "missing T^2", "log_target=True) * T**2", "log_target=True)", "missing T^2"),
    _d(
        "dml_losses",
        "'mean' instead of 'batchmean'",
        'reduction="batchmean"',
        'reduction="mean"',
        "'mean' instead of 'batchmean'",
    ),
    _d(
        "dml_losses",
        "a peer compared with itself",
        "mimic(logits_a, logits_b)",
        "mimic(logits_a, logits_a)",
        "compared with itself",
    ),
    _d(
        "dml_step",
        "only one peer's loss backpropagated",
        "(loss_a + loss_b).backward()",
        "loss_a.backward()",
        "peer b not updated",
        values=False,
    ),
    _d(
        "dml_step",
        "peers left in eval mode",
        "    peer_a.train()\n    peer_b.train()\n",
        "",
        "left in eval mode",
        values=False,
    ),
    _d(
        "dml_step",
        "no zero_grad between steps",
        "    optimizer.zero_grad()\n",
        "",
        "gradients accumulate across steps",
        values=False,
    ),
    _d(
        "consistent_views",
        "views drawn independently",
        _CONSISTENT,
        _SECOND_DRAW,
        "views drawn independently",
        values=False,
    ),
    _d(
        "consistent_views",
        "the teacher sees the clean image",
        _CONSISTENT,
        "return view, x",
        "the teacher is given the clean image",
        values=False,
    ),
    _d(
        "consistent_views",
        "one crop for the whole batch",
        _ONE_DRAW,
        _BATCH_DRAW,
        "one crop for the whole batch",
        values=False,
    ),
    _d(
        "consistent_views",
        "vertical flip",
        "view.flip(-1)",
        "view.flip(-2)",
        "flipped along the wrong axis",
        values=False,
    ),
    _d(
        "consistent_views",
        "the last position never drawn",
        "crop + 1, (n,)",
        "crop, (n,)",
        "the last position is never drawn",
    ),
    _d(
        "mixup_batch",
        "labels not mixed",
        _MIXED_TARGETS,
        "targets.clone()",
        "applied to the images but not to the labels",
        values=False,
    ),
    _d(
        "mixup_batch",
        "another permutation for the targets",
        "targets[perm]",
        "targets[torch.randperm(len(x))]",
        "the same permutation missing on one side",
        values=False,
    ),
    _d(
        "mixup_batch",
        "lam and 1 - lam swapped on the targets",
        _MIXED_TARGETS,
        "(1 - lam) * targets + lam * targets[perm]",
        "lam and 1 - lam swapped on the labels",
        values=False,
    ),
    _d(
        "mixup_batch",
        "lam drawn from U(0, 1)",
        _BETA,
        "float(torch.rand(()))",
        "lam not drawn from Beta(alpha, alpha)",
    ),
    _d(
        "mixup_batch",
        "no permutation",
        "torch.randperm(len(x))",
        "torch.arange(len(x))",
        "no permutation",
        values=False,
    ),
)


def _solution_cell(cell: str) -> str:
    nb = json.loads(SOURCE.read_text(encoding="utf-8"))
    [source] = [
        "".join(c["source"])
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade_id") == cell
    ]
    return source


def _as_bug(student: str, d: Diagnosis) -> Bug:
    """``d`` as a whole solution for the nbgrader round trip: the patched solution region of
    the source notebook's cell, markers left out, dedented."""
    source = _solution_cell(d.cell).replace(d.old, d.new)
    region = source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0]
    return Bug(student, d.cell, textwrap.dedent(region), d.loses, d.says)


# Graded by nbgrader in test_assignments.py: the four bugs the issue names.
ROUND_TRIP = {
    "the other peer's prediction not detached": "bug-dml-target-not-detached",
    "views drawn independently": "bug-views-independent",
    "labels not mixed": "bug-mixup-labels-not-mixed",
    "another permutation for the targets": "bug-mixup-permutation-one-side",
}
A6_BUGS = tuple(_as_bug(ROUND_TRIP[d.bug], d) for d in A6_DIAGNOSES if d.bug in ROUND_TRIP)

ASSIGNMENT = Assignment(
    NAME,
    (
        ("test_dml_losses", 3),
        ("test_dml_step", 2),
        ("test_consistent_views", 3),
        ("test_mixup_batch", 3),
    ),
    A6_BUGS,
    A6_DIAGNOSES,
    manual=(("written_answer", 2),),
)
