"""nbgrader round trips for every assignment under ``assignments/source``.

For each assignment, in a temporary copy of the course root: ``nbgrader
generate_assignment``; the release must hold no solution and no hidden test; then one
``nbgrader autograde`` call grades, side by side, the reference solution (full marks), the
untouched release (zero) and one submission per classic bug (exactly the test cell that
guards against that bug loses its points, every other cell keeps them).

A new assignment is one more module in ``assignment_specs/`` (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from assignment_specs import Assignment, all_assignments  # noqa: E402
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


ASSIGNMENTS = all_assignments()


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
