"""nbgrader round trips for every assignment under ``assignments/source``.

For each assignment, in a temporary copy of the course root: ``nbgrader
generate_assignment``; the release must hold no solution and no hidden test; then one
``nbgrader autograde`` call grades, side by side, the reference solution (full marks), the
untouched release (zero) and one submission per classic bug (exactly the test cell that
guards against that bug loses its points, every other cell keeps them).

A new assignment is one more entry in ``ASSIGNMENTS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from nbgrader_helpers import (  # noqa: E402
    cells_by_id,
    copy_course,
    failures,
    hidden_lines,
    lines_outside_hidden_tests,
    make_submission,
    max_scores,
    read_notebook,
    run_nbgrader,
    scores,
    solution_lines,
    source_of,
    submit,
)

pytestmark = pytest.mark.nbgrader


@dataclass(frozen=True)
class Bug:
    """A classic mistake: ``code`` replaces the solution region of solution cell ``cell``;
    test cell ``loses`` must then score zero with an error that ``says`` what went wrong."""

    student: str
    cell: str
    code: str
    loses: str
    says: str


@dataclass(frozen=True)
class Assignment:
    name: str
    points: tuple[tuple[str, float], ...]  # (test cell grade id, points), in notebook order
    bugs: tuple[Bug, ...]

    @property
    def notebook(self) -> str:
        return self.name


A1_BUGS = (
    Bug(
        "bug-missing-t2",
        "soft_target_loss",
        """
log_q = F.log_softmax(student_logits / T, dim=1)
log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
""",
        "test_soft_target_loss",
        "missing T^2",
    ),
    Bug(
        "bug-mean-not-batchmean",
        "soft_target_loss",
        """
log_q = F.log_softmax(student_logits / T, dim=1)
log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
return F.kl_div(log_q, log_p, reduction="mean", log_target=True) * T**2
""",
        "test_soft_target_loss",
        "'mean' instead of 'batchmean'",
    ),
    Bug(
        "bug-kl-swapped",
        "soft_target_loss",
        """
log_q = F.log_softmax(student_logits / T, dim=1)
log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * T**2
""",
        "test_soft_target_loss",
        "KL arguments swapped",
    ),
    Bug(
        "bug-alpha-on-soft",
        "distillation_loss",
        """
hard = F.cross_entropy(student_logits, targets)
soft = soft_target_loss(student_logits, teacher_logits, T)
return (1 - alpha) * hard + alpha * soft
""",
        "test_distillation_loss",
        "alpha applied to the wrong term",
    ),
    Bug(
        "bug-teacher-train-mode",
        "distillation_step",
        """
student.train()
with torch.no_grad():
    teacher_logits = teacher(x)
loss = distillation_loss(student(x), teacher_logits, y, T, alpha)
optimizer.zero_grad()
loss.backward()
optimizer.step()
return loss.item()
""",
        "test_distillation_step",
        "teacher left in train mode",
    ),
)


A2_MASK = """
k = {k}
keep = torch.ones(weight.numel(), dtype=torch.bool)
keep[torch.argsort(weight.abs().flatten(), descending={descending})[:k]] = False
return keep.view_as(weight)
"""

A2_BUGS = (
    Bug(
        "bug-zero-point-not-rounded",
        "scale_zero_point",
        """
lo, hi = min(float(x_min), 0.0), max(float(x_max), 0.0)
scale = max((hi - lo) / (qmax - qmin), torch.finfo(torch.float32).eps)
zero_point = qmin - lo / scale
return scale, min(max(zero_point, qmin), qmax)
""",
        "test_scale_zero_point",
        "zero point not rounded",
    ),
    Bug(
        "bug-symmetric-full-range",
        "symmetric_scale",
        """
return max(float(x.abs().max()) / 2 ** (bits - 1), torch.finfo(torch.float32).eps)
""",
        "test_symmetric_scale",
        "wrong symmetric range",
    ),
    Bug(
        "bug-no-clamping",
        "quantize",
        """
return (torch.round(x / scale) + zero_point).to(torch.int64)
""",
        "test_quantize_dequantize",
        "no clamping",
    ),
    Bug(
        "bug-per-channel-wrong-axis",
        "quantize_per_channel",
        """
return quantize(w, scales.reshape(-1, 1), zero_points.reshape(-1, 1), qmin, qmax)
""",
        "test_quantize_per_channel",
        "per-channel along the wrong axis",
    ),
    Bug(
        "bug-ste-blocks",
        "fake_quantize",
        """
@staticmethod
def forward(ctx, x, scale, zero_point, qmin, qmax):
    return dequantize(quantize(x, scale, zero_point, qmin, qmax), scale, zero_point)

@staticmethod
def backward(ctx, grad_output):
    return torch.zeros_like(grad_output), None, None, None, None
""",
        "test_fake_quantize",
        "STE blocks the gradient",
    ),
    Bug(
        "bug-mask-keeps-smallest",
        "magnitude_mask",
        A2_MASK.format(k="round(sparsity * weight.numel())", descending=True),
        "test_magnitude_mask",
        "mask keeps the smallest",
    ),
    Bug(
        "bug-k-truncated",
        "magnitude_mask",
        A2_MASK.format(k="int(sparsity * weight.numel())", descending=False),
        "test_magnitude_mask",
        "sparsity off by the rounding of k",
    ),
)

ASSIGNMENTS = [
    Assignment(
        "a1_soft_targets",
        (
            ("test_softmax_with_temperature", 2),
            ("test_soft_target_loss", 4),
            ("test_distillation_loss", 2),
            ("test_distillation_step", 4),
            ("test_distilled_student", 3),
        ),
        A1_BUGS,
    ),
    Assignment(
        "a2_quantization_pruning",
        (
            ("test_scale_zero_point", 3),
            ("test_symmetric_scale", 2),
            ("test_quantize_dequantize", 3),
            ("test_quantize_per_channel", 2),
            ("test_fake_quantize", 3),
            ("test_magnitude_mask", 2),
        ),
        A2_BUGS,
    ),
]


@dataclass
class Graded:
    course: Path
    source: dict
    release: dict
    scores: dict[str, dict[str, float]]  # student -> grade id -> score
    points: dict[str, float]  # grade id -> points, from the gradebook

    def why(self, assignment: Assignment, student: str) -> dict[str, str]:
        return failures(self.course, assignment.name, assignment.notebook, student)


@pytest.fixture(scope="session")
def grade(tmp_path_factory):
    """``grade(assignment)``: the generated release and the autograded scores of all the
    assignment's submissions, computed once per session."""
    done: dict[str, Graded | Exception] = {}

    def _grade(assignment: Assignment) -> Graded:
        name = assignment.name
        if name not in done:
            try:
                done[name] = _generate_and_autograde(tmp_path_factory.mktemp(name), assignment)
            except Exception as err:  # report it in every test, but run nbgrader once
                done[name] = err
        if isinstance(done[name], Exception):
            raise done[name]
        return done[name]

    return _grade


def _generate_and_autograde(tmp: Path, assignment: Assignment) -> Graded:
    name, notebook = assignment.name, assignment.notebook
    course = copy_course(tmp, [name])
    run_nbgrader(course, "generate_assignment", name)
    source = read_notebook(course / "source" / name / f"{notebook}.ipynb")
    release = read_notebook(course / "release" / name / f"{notebook}.ipynb")
    submit(course, name, notebook, "reference", make_submission(release, source))
    submit(course, name, notebook, "empty", release)
    for bug in assignment.bugs:
        submit(
            course,
            name,
            notebook,
            bug.student,
            make_submission(release, source, replace={bug.cell: bug.code}),
        )
    run_nbgrader(course, "autograde", name)  # all students in one call
    return Graded(
        course,
        source,
        release,
        scores(course, name, notebook),
        max_scores(course, name, notebook),
    )


def _id(value) -> str:
    return value.name if isinstance(value, Assignment) else value.student


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_release_holds_no_solutions_or_hidden_tests(grade, assignment):
    graded = grade(assignment)
    release_cells = [source_of(c) for c in graded.release["cells"]]
    text = "\n".join(release_cells)
    release_lines = {line.strip() for line in text.split("\n")}
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"the release still contains {marker!r}"
    source_cells = [source_of(c) for c in graded.source["cells"]]
    solutions = {line.strip() for s in source_cells for line in solution_lines(s)}
    leaked = sorted(line for line in solutions & release_lines if len(line) > 3)
    assert not leaked, f"solution lines in the release: {leaked}"
    hidden = {line.strip() for s in source_cells for line in hidden_lines(s)}
    # A line that the source also shows outside its hidden tests (an assert message that
    # a visible test shares, say) is no leak.
    shown = {line.strip() for s in source_cells for line in lines_outside_hidden_tests(s)}
    leaked = sorted(line for line in (hidden - shown) & release_lines if len(line) > 12)
    assert not leaked, f"hidden-test lines in the release: {leaked}"
    for gid, cell in cells_by_id(graded.release).items():
        if cell["metadata"]["nbgrader"].get("solution"):
            assert "raise NotImplementedError()" in source_of(cell), f"{gid} has no code stub"


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_points_per_test_cell(grade, assignment):
    assert grade(assignment).points == dict(assignment.points)


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_reference_solution_gets_full_marks(grade, assignment):
    graded = grade(assignment)
    got = graded.scores["reference"]
    assert got == dict(assignment.points), graded.why(assignment, "reference")


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_empty_release_gets_zero(grade, assignment):
    got = grade(assignment).scores["empty"]
    assert got == {gid: 0.0 for gid, _ in assignment.points}


@pytest.mark.parametrize("assignment, bug", [(a, b) for a in ASSIGNMENTS for b in a.bugs], ids=_id)
def test_each_classic_bug_loses_exactly_its_test_cell(grade, assignment, bug):
    graded = grade(assignment)
    expected = {gid: 0.0 if gid == bug.loses else points for gid, points in assignment.points}
    why = graded.why(assignment, bug.student)
    assert graded.scores[bug.student] == expected, why
    assert bug.says in why.get(bug.loses, ""), f"the feedback does not name the bug: {why}"
