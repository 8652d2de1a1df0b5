"""nbgrader round trips for every assignment under ``assignments/source``.

For each assignment, in a temporary copy of the course root: ``kdlab.grading.release``
(``nbgrader generate_assignment``, then its leak check): the release must hold no solution
and no hidden test; then one ``nbgrader autograde`` call grades, side by side, the
reference solution (full marks on every autograded cell; its written answer is left for the
instructor), the untouched release (zero) and one submission per classic bug (exactly the
test cell that guards against that bug loses its points, every other cell keeps them).

A new assignment is one more module in ``assignment_specs/`` (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from assignment_specs import Assignment, all_assignments  # noqa: E402
from nbgrader_helpers import (  # noqa: E402
    COURSE_ROOT,
    cells_by_id,
    failures,
    make_submission,
    max_scores,
    read_notebook,
    scores,
    submit,
)

from kdlab.grading import release, run_nbgrader  # noqa: E402
from kdlab.grading.nbgrader import copy_course, open_gradebook, source_of  # noqa: E402

pytestmark = pytest.mark.nbgrader


ASSIGNMENTS = all_assignments()


@dataclass
class Graded:
    course: Path
    source: dict
    release: dict
    leaks: list[str]  # what the release gives away, from kdlab.grading.release
    scores: dict[str, dict[str, float]]  # student -> grade id -> score
    points: dict[str, float]  # grade id -> points, from the gradebook
    pending: dict[str, set[str]]  # student -> grade ids that wait for an instructor

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
    course = copy_course(COURSE_ROOT, tmp, [name])
    leaks = release(course, [name])[name]
    source = read_notebook(course / "source" / name / f"{notebook}.ipynb")
    released = read_notebook(course / "release" / name / f"{notebook}.ipynb")
    submit(course, name, notebook, "reference", make_submission(released, source))
    submit(course, name, notebook, "empty", released)
    for bug in assignment.bugs:
        submit(
            course,
            name,
            notebook,
            bug.student,
            make_submission(released, source, replace={bug.cell: bug.code}),
        )
    run_nbgrader(course, "autograde", name, timeout=600)  # all students in one call
    return Graded(
        course,
        source,
        released,
        leaks,
        scores(course, name, notebook),
        max_scores(course, name, notebook),
        _pending(course, name, notebook),
    )


def _pending(course: Path, assignment: str, notebook: str) -> dict[str, set[str]]:
    """The grade cells of each submission that nbgrader left for manual grading."""
    out = {}
    with open_gradebook(course) as gb:
        for submission in gb.assignment_submissions(assignment):
            nb = gb.find_submission_notebook(notebook, assignment, submission.student.id)
            out[submission.student.id] = {g.name for g in nb.grades if g.needs_manual_grade}
    return out


def _autograded_full_marks(assignment: Assignment) -> dict[str, float]:
    """Full marks on every autograded cell, 0 (not yet graded) on every manual one."""
    return dict(assignment.points) | {gid: 0.0 for gid, _ in assignment.manual}


def _id(value) -> str:
    return value.name if isinstance(value, Assignment) else value.student


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_release_holds_no_solutions_or_hidden_tests(grade, assignment):
    graded = grade(assignment)
    # Markers, solution lines and hidden-test lines; a line that the source also shows
    # outside its hidden tests (an assert message that a visible test shares) is no leak.
    assert graded.leaks == [], f"the release gives away: {graded.leaks}"
    for gid, cell in cells_by_id(graded.release).items():
        if cell["metadata"]["nbgrader"].get("solution"):
            stub = "raise NotImplementedError()" if cell["cell_type"] == "code" else "YOUR ANSWER"
            assert stub in source_of(cell), f"{gid} has no stub"


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_points_per_test_cell(grade, assignment):
    assert grade(assignment).points == dict(assignment.points) | dict(assignment.manual)


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_reference_solution_gets_full_marks(grade, assignment):
    graded = grade(assignment)
    got = graded.scores["reference"]
    assert got == _autograded_full_marks(assignment), graded.why(assignment, "reference")
    # A written answer waits for the instructor; an unanswered one scores 0 without them.
    assert graded.pending["reference"] == {gid for gid, _ in assignment.manual}
    assert graded.pending["empty"] == set()


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_empty_release_gets_zero(grade, assignment):
    got = grade(assignment).scores["empty"]
    assert got == {gid: 0.0 for gid, _ in assignment.points + assignment.manual}


@pytest.mark.parametrize("assignment, bug", [(a, b) for a in ASSIGNMENTS for b in a.bugs], ids=_id)
def test_each_classic_bug_loses_exactly_its_test_cell(grade, assignment, bug):
    graded = grade(assignment)
    expected = _autograded_full_marks(assignment) | {bug.loses: 0.0}
    why = graded.why(assignment, bug.student)
    assert graded.scores[bug.student] == expected, why
    assert bug.says in why.get(bug.loses, ""), f"the feedback does not name the bug: {why}"
