"""``kdlab validate``: a student's notebook run in the grading sandbox, each visible test
reported, and the graded cells checked against the assignment (missing, duplicated, edited,
of another type, another assignment's notebook), on the tiny assignment of the grading
corpus."""

from __future__ import annotations

import copy
import json

import pytest

pytest.importorskip("nbgrader")

from fixtures.grading_corpus import cell_of, notebook, with_code  # noqa: E402
from fixtures.small_course import NOTEBOOK, released_course  # noqa: E402

from kdlab import cli, grading  # noqa: E402
from kdlab.grading.validating import validate  # noqa: E402

pytestmark = pytest.mark.nbgrader

LIMITS = grading.Limits(cell_seconds=20, notebook_seconds=60, memory_mb=512)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return released_course(tmp_path_factory.mktemp("validate") / "course")


@pytest.fixture(scope="module")
def caps():
    return grading.probe()


def _check(course, caps, tmp_path, nb, name=NOTEBOOK, **kwargs):
    path = tmp_path / name
    path.write_text(json.dumps(nb))
    return validate(path, course[0], limits=LIMITS, caps=caps, **kwargs)


def _by_id(result):
    return {t.grade_id: t for t in result.tests}


def test_reference_passes_and_the_command_exits_zero(course, tmp_path):
    path = tmp_path / f"ada_{NOTEBOOK}"
    path.write_text(json.dumps(course[2]))
    assert cli.main(["validate", str(path), "--course", str(course[0])]) == 0


def test_release_fails_each_test_with_its_message(course, caps, tmp_path):
    result = _check(course, caps, tmp_path, course[1])
    assert not result.ok and result.problems == []
    assert {t.grade_id: t.passed for t in result.tests} == {"test_add": False, "test_mean": False}
    assert all("NotImplementedError" in t.message for t in result.tests)
    path = tmp_path / NOTEBOOK
    assert cli.main(["validate", str(path), "--course", str(course[0])]) == 1


def test_a_failing_visible_test_shows_its_assert_message(course, caps, tmp_path):
    wrong = with_code(course[2], "add", "def add(a, b):\n    return a - b", "after")
    tests = _by_id(_check(course, caps, tmp_path, wrong))
    assert tests["test_add"].passed is False and tests["test_mean"].passed is True
    assert tests["test_add"].message == "AssertionError: add(1, 2) must be 3"


def _duplicated(nb):
    nb = copy.deepcopy(nb)
    nb["cells"].insert(3, copy.deepcopy(cell_of(nb, "test_add")))
    return nb


def _deleted(nb):
    nb = copy.deepcopy(nb)
    nb["cells"] = [c for c in nb["cells"] if c is not cell_of(nb, "test_mean")]
    return nb


def _retyped(nb):
    nb = copy.deepcopy(nb)
    cell = cell_of(nb, "test_add")
    cell["cell_type"] = "markdown"
    del cell["outputs"], cell["execution_count"]
    return nb


@pytest.mark.parametrize(
    "change, says",
    [
        (lambda nb: with_code(nb, "test_add", "pass", "instead"), "you changed the test cell"),
        (_duplicated, "'test_add' appears 2 times"),
        (_deleted, "'test_mean' is missing"),
        (_retyped, "was a code cell and is now a markdown cell"),
    ],
)
def test_broken_graded_cells_are_named(course, caps, tmp_path, change, says):
    result = _check(course, caps, tmp_path, change(course[2]))
    assert not result.ok
    assert any(says in p for p in result.problems), result.problems


def test_another_assignments_notebook_is_refused_before_running(course, caps, tmp_path):
    result = _check(course, caps, tmp_path, notebook(prefix="other_"))
    assert result.tests == [] and "none of the graded cells" in result.problems[0]
    result = _check(course, caps, tmp_path, course[2], assignment="a9_unknown")
    assert "no assignment 'a9_unknown'" in result.problems[0]


def test_a_dead_kernel_is_reported_with_the_tests_it_stopped(course, caps, tmp_path):
    died = with_code(course[2], "mean", "import os\nos._exit(1)", "before")
    result = _check(course, caps, tmp_path, died)
    tests = _by_id(result)
    assert tests["test_add"].passed is True and tests["test_mean"].passed is None
    assert any("the kernel died while running cell 'mean'" in p for p in result.problems)


def test_the_notebook_runs_in_the_grading_sandbox(course, caps, tmp_path):
    if not caps.mount_namespace:
        pytest.skip("no mount namespace here: the course root cannot be hidden")
    gradebook = course[0] / "gradebook.db"
    assert gradebook.is_file()
    probe = f"import os\nassert not os.path.exists({str(gradebook)!r}), 'the gradebook is visible'"
    result = _check(course, caps, tmp_path, with_code(course[2], "add", probe, "before"))
    assert result.ok, result.lines()
