"""Feedback pages that keep the hidden tests hidden: ``nbgrader generate_feedback`` with one
more preprocessor, :class:`HideHiddenTests`.

nbgrader's pages show the test cells as they ran, hidden tests and tracebacks included, so
an assignment could not be given again. In each test cell (a grade cell that is no answer
cell) the preprocessor replaces the region between ``### BEGIN HIDDEN TESTS`` and ``### END
HIDDEN TESTS`` with one comment line, and an error's traceback (which quotes the failing
line) with its last line, ``AssertionError: <the test's message>``: a student reads what
failed, not how it is checked. ``show_hidden_tests=True`` gives nbgrader's own pages.
"""

from __future__ import annotations

from pathlib import Path

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from kdlab.grading.nbgrader import check_course, pick, run_nbgrader
from kdlab.grading.releasing import BEGIN_HIDDEN, END_HIDDEN

__all__ = ["HIDDEN_NOTE", "HideHiddenTests", "feedback", "hide_hidden_tests"]

HIDDEN_NOTE = "# (hidden tests: not shown; the message of a failing one is below)"


def _is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and meta.get("grade") and not meta.get("solution")


def _without_hidden(source: str) -> str:
    out, inside = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + HIDDEN_NOTE)
        elif END_HIDDEN in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def hide_hidden_tests(cell) -> None:
    """In place: a test cell's hidden region becomes :data:`HIDDEN_NOTE` and each error's
    traceback its last line (``ename: evalue``); other cells stay as they are."""
    if not _is_test_cell(cell):
        return
    cell["source"] = _without_hidden(cell["source"])
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            message = output.get("evalue", "")
            output["traceback"] = [f"{output.get('ename', 'Error')}: {message}".rstrip(": ")]


class HideHiddenTests(Preprocessor):
    """nbconvert preprocessor that applies :func:`hide_hidden_tests` to every cell (enabled
    by default: nbgrader registers the converter's preprocessors as they are)."""

    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        hide_hidden_tests(cell)
        return cell, resources


# nbgrader's own list (GenerateFeedback.preprocessors) with ours at its end.
_PREPROCESSORS = (
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    f"{__name__}.HideHiddenTests",
)


def feedback(
    course: Path, names: list[str] | None = None, *, show_hidden_tests: bool = False
) -> None:
    """``nbgrader generate_feedback`` for each assignment: one HTML page per student, in
    ``feedback/<student>/<assignment>/``; the hidden tests' code is shown only with
    ``show_hidden_tests``."""
    course = check_course(course)
    options = [f"--GenerateFeedback.preprocessors={p}" for p in _PREPROCESSORS]
    if show_hidden_tests:
        options = []
    for name in pick(course, names):
        if any((course / "autograded").glob(f"*/{name}")):
            run_nbgrader(course, "generate_feedback", name, "--force", *options)
