"""Helpers for the nbgrader round trips: submissions made from the release and the source
(the reference solution, or one with a deliberate bug), and what grading left behind: the
scores in the gradebook and why a cell lost its points.

Everything runs in a temporary copy of the course root (``kdlab.grading.nbgrader``'s
``copy_course``; nbgrader runs through ``kdlab.grading.run_nbgrader``); the repository's
``assignments/`` is only read.
"""

from __future__ import annotations

import json
from pathlib import Path

from kdlab.grading import reference_submission
from kdlab.grading.nbgrader import grade_id, open_gradebook, source_of
from kdlab.grading.releasing import BEGIN_SOLUTION, END_SOLUTION

REPO = Path(__file__).resolve().parents[1]
COURSE_ROOT = REPO / "assignments"


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_notebook(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def cells_by_id(nb: dict) -> dict[str, dict]:
    """Cells with nbgrader metadata, by grade id."""
    return {grade_id(c): c for c in nb["cells"] if grade_id(c)}


def replace_solution(source: str, code: str) -> str:
    """``source`` with its solution region (markers included) replaced by ``code``,
    indented like the begin marker."""
    out, inside = [], False
    for line in source.split("\n"):
        if BEGIN_SOLUTION in line:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + row if row else row for row in code.strip("\n").split("\n")]
            inside = True
        elif END_SOLUTION in line:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("solution region without an end marker")
    return "\n".join(out)


def make_submission(release: dict, source: dict, replace: dict[str, str] | None = None) -> dict:
    """A student's notebook: the reference submission (the release with its solution cells
    filled in from the source), except that the solution region of each cell named in
    ``replace`` becomes the given code (a deliberate bug)."""
    source = json.loads(json.dumps(source))
    replace = dict(replace or {})
    for cell in source["cells"]:
        gid = grade_id(cell)
        if gid in replace and cell["metadata"]["nbgrader"].get("solution"):
            cell["source"] = replace_solution(source_of(cell), replace.pop(gid))
    if replace:
        raise KeyError(f"no solution cells named {sorted(replace)}")
    return reference_submission(release, source)


def submit(course: Path, assignment: str, notebook: str, student: str, nb: dict) -> None:
    write_notebook(nb, course / "submitted" / student / assignment / f"{notebook}.ipynb")


def scores(course: Path, assignment: str, notebook: str) -> dict[str, dict[str, float]]:
    """Autograded score of every grade cell, per student: ``{student: {grade_id: score}}``."""
    out: dict[str, dict[str, float]] = {}
    with open_gradebook(course) as gb:
        for submission in gb.assignment_submissions(assignment):
            nb = gb.find_submission_notebook(notebook, assignment, submission.student.id)
            out[submission.student.id] = {g.name: float(g.score) for g in nb.grades}
    return out


def max_scores(course: Path, assignment: str, notebook: str) -> dict[str, float]:
    """The points of every grade cell, as the gradebook recorded them: ``{grade_id: points}``."""
    with open_gradebook(course) as gb:
        nb = gb.find_notebook(notebook, assignment)
        return {cell.name: float(cell.max_score) for cell in nb.grade_cells}


def failures(course: Path, assignment: str, notebook: str, student: str) -> dict[str, str]:
    """For each grade cell of an autograded notebook that shows an error or stderr, the
    end of that output: why a cell lost its points."""
    path = course / "autograded" / student / assignment / f"{notebook}.ipynb"
    out = {}
    for cell in read_notebook(path)["cells"]:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                out[grade_id(cell)] = f"{output['ename']}: {output['evalue']}"[:500]
            elif output["output_type"] == "stream" and output["name"] == "stderr":
                out[grade_id(cell)] = "stderr: " + "".join(output["text"])[:500]
    return out
