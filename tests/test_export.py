"""What the instructor gets out of a graded batch: the per-question CSV for Canvas and Moodle
(a written answer that waits for manual grading is pending, not 0) and feedback pages that
show a failing hidden test's message but not its code, on the tiny assignment of the
grading corpus with a written-answer cell added."""

from __future__ import annotations

import csv
import html
import re

import pytest

pytest.importorskip("nbgrader")

from fixtures.grading_corpus import ASSIGNMENT, notebook, with_code  # noqa: E402
from fixtures.small_course import released_course, submit_all  # noqa: E402

from kdlab import cli, grading  # noqa: E402
from kdlab.grading.exporting import IDENTITY  # noqa: E402
from kdlab.grading.feedback import HIDDEN_NOTE  # noqa: E402
from kdlab.grading.nbgrader import open_gradebook  # noqa: E402

pytestmark = pytest.mark.nbgrader

LIMITS = grading.Limits(cell_seconds=20, notebook_seconds=120, memory_mb=512)
WRITTEN = "explain_mean"
# Passes the visible test (mean([1, 2]) == 1.5), fails the hidden one.
MEAN_OF_ENDS = "def mean(values):\n    return (values[0] + values[-1]) / 2"
HIDDEN_CODE = "math.isclose(mean([1, 2, 9]), 4.0)"
HIDDEN_MESSAGE = "AssertionError: mean([1, 2, 9]) must be 4"


def _with_written_answer() -> dict:
    nb = notebook()
    meta = {"grade": True, "solution": True, "locked": False, "points": 2}
    meta.update(grade_id=WRITTEN, schema_version=3, task=False)
    text = "Why does `mean` divide by `len(values)`?"
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": text})
    answer = "Because the mean is the sum over the count."
    nb["cells"].append({"cell_type": "markdown", "metadata": {"nbgrader": meta}, "source": answer})
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root, _, good = released_course(
        tmp_path_factory.mktemp("export") / "course", _with_written_answer()
    )
    ends = with_code(good, "mean", MEAN_OF_ENDS, "after")
    submit_all(root, {"good": good, "ends": ends, "broken": "{not json"})
    results = grading.autograde(root, [ASSIGNMENT], workers=2, limits=LIMITS, progress=False)
    assert {r.student: bool(r.error) for r in results} == {
        "broken": True,
        "ends": False,
        "good": False,
    }, [r.error for r in results]
    with open_gradebook(root) as gb:  # the broken submission's student, as collect leaves it
        gb.update_or_create_student("broken")
    return root


def _rows(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_per_question_csv_has_a_column_per_cell_and_pending_written_answers(course, tmp_path):
    report = grading.export_per_question(course, tmp_path / "lms.csv")
    header, *rows = _rows(tmp_path / "lms.csv")
    a = ASSIGNMENT
    assert header == IDENTITY + [
        f"{a}: test_add [2 pts]",
        f"{a}: test_mean [3 pts]",
        f"{a}: {WRITTEN} [2 pts]",
        f"{a}: total [7 pts]",
    ]
    by_student = {row[3]: row[len(IDENTITY) :] for row in rows}
    assert by_student == {
        "broken": ["", "", "", ""],
        "ends": ["2", "0", "", ""],
        "good": ["2", "3", "", ""],
    }
    assert sorted(report.pending) == [f"ends/{a}/{WRITTEN}", f"good/{a}/{WRITTEN}"]
    assert report.ungraded == [f"broken/{a}"]


def test_a_manual_grade_fills_its_cell_and_the_total(course, tmp_path):
    with open_gradebook(course) as gb:
        grade = gb.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, "good")
        grade.manual_score, grade.needs_manual_grade = 1.5, False
        gb.db.commit()
    try:
        path = tmp_path / "lms.csv"
        assert cli.main(["export", "--course", str(course), "--per-question", str(path)]) == 0
        good = next(row for row in _rows(path) if row[3] == "good")
        assert good[len(IDENTITY) :] == ["2", "3", "1.5", "6.5"]
    finally:
        with open_gradebook(course) as gb:
            grade = gb.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, "good")
            grade.manual_score, grade.needs_manual_grade = None, True
            gb.db.commit()


def test_export_needs_a_target(course):
    assert cli.main(["export", "--course", str(course)]) == 2


def _page_text(course, student: str) -> str:
    page = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_feedback_shows_the_failing_message_not_the_hidden_code(course):
    assert cli.main(["feedback", "--course", str(course)]) == 0
    text = _page_text(course, "ends")
    assert HIDDEN_MESSAGE in text and HIDDEN_NOTE in text
    assert HIDDEN_CODE not in text and "BEGIN HIDDEN" not in text
    assert 'assert add(1, 2) == 3, "add(1, 2) must be 3"' in text  # visible tests stay
    grading.feedback(course, [ASSIGNMENT], show_hidden_tests=True)
    assert HIDDEN_CODE in _page_text(course, "ends")
