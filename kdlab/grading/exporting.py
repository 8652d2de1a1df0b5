"""Grades out of the gradebook: nbgrader's own CSV export, and a per-question CSV that a
learning-management system imports (Canvas's gradebook CSV form; Moodle's CSV import).

The per-question file has one row per student of the gradebook and these columns:
``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` (Canvas's columns that
identify a student), then for each assignment one column per graded cell,
``<assignment>: <grade id> [<points> pts]``, and ``<assignment>: total [<points> pts]``.
A cell is left empty where there is no grade to import: a written answer that waits for
manual grading (pending, not 0; the total waits too), or an assignment without a grade.
Both systems leave a grade unchanged where its cell is empty.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.grading.nbgrader import (
    check_course,
    grade_id,
    notebook_names,
    open_gradebook,
    pick,
    run_nbgrader,
)

__all__ = ["IDENTITY", "Export", "export_grades", "export_per_question"]

IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


@dataclass
class Export:
    """What :func:`export_per_question` wrote: students, columns and what is missing."""

    students: int = 0
    columns: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # student/assignment/grade id
    ungraded: list[str] = field(default_factory=list)  # student/assignment: submitted, no grade


def export_grades(course: Path, path: Path) -> None:
    """``nbgrader export``: the gradebook as a CSV file at ``path``."""
    run_nbgrader(check_course(course), "export", f"--to={Path(path).resolve()}")


def _cells_in_order(course: Path, assignment: str, cells: dict[str, float]) -> list[str]:
    """The grade ids of ``cells`` in the order of the source notebooks, then the rest."""
    order = []
    for name in notebook_names(course, assignment):
        nb = json.loads((course / "source" / assignment / f"{name}.ipynb").read_text("utf-8"))
        order += [grade_id(c) for c in nb["cells"] if grade_id(c) in cells]
    return order + sorted(set(cells) - set(order))


def _points(value: float) -> str:
    return f"{value:g}"


def export_per_question(course: Path, path: Path, names: list[str] | None = None) -> Export:
    """Write the per-question CSV (module docstring) of the assignments ``names`` (default:
    all of the course) to ``path``; return what it holds and what it could not."""
    course = check_course(course)
    names = pick(course, names)
    report = Export()
    with open_gradebook(course) as gb:
        known = {a.name for a in gb.assignments}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"the gradebook has no assignment {missing}: run `kdlab release`")
        layout = {}  # assignment -> [(grade id, points)]
        for name in names:
            points = {
                cell.name: float(cell.max_score)
                for nb in gb.find_assignment(name).notebooks
                for cell in nb.grade_cells
            }
            layout[name] = [(g, points[g]) for g in _cells_in_order(course, name, points)]
        header = list(IDENTITY)
        for name, cells in layout.items():
            header += [f"{name}: {g} [{_points(p)} pts]" for g, p in cells]
            header.append(f"{name}: total [{_points(sum(p for _, p in cells))} pts]")
        rows = []
        for student in sorted(gb.students, key=lambda s: s.id):
            full_name = ", ".join(n for n in (student.last_name, student.first_name) if n)
            row = [full_name or student.id, student.lms_user_id or "", "", student.id, ""]
            for name, cells in layout.items():
                row += _student_cells(gb, course, name, student.id, cells, report)
            rows.append(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    report.students, report.columns = len(rows), header
    return report


def _student_cells(gb, course: Path, assignment: str, student: str, cells, report: Export):
    """One student's cells of one assignment: a score per graded cell, then the total."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment, student)
    except MissingEntry:
        if (course / "submitted" / student / assignment).is_dir():
            report.ungraded.append(f"{student}/{assignment}")
        return [""] * (len(cells) + 1)
    grades = {g.name: g for nb in submission.notebooks for g in nb.grades}
    out, total, waiting = [], 0.0, False
    for gid, _ in cells:
        grade = grades.get(gid)
        pending = grade is None or grade.needs_manual_grade
        pending = pending or (grade.manual_score is None and grade.auto_score is None)
        if pending:
            report.pending.append(f"{student}/{assignment}/{gid}")
            waiting = True
            out.append("")
        else:
            total += float(grade.score)
            out.append(_points(float(grade.score)))
    out.append("" if waiting else _points(total))
    return out
