"""What grading leaves: one result per submission and its CSV report, and the gradebook's
integrity check."""

from __future__ import annotations

import csv
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from kdlab.grading.nbgrader import check_course, open_gradebook

__all__ = ["GradeResult", "check_gradebook", "write_report"]


@dataclass
class GradeResult:
    """The outcome for one submission: a grade, or an error that says why there is none."""

    student: str
    assignment: str
    score: float | None
    max_score: float | None
    error: str = ""
    seconds: float = 0.0


def write_report(results: list[GradeResult], path: Path) -> None:
    """One CSV row per submission: student, assignment, score, max score, seconds, error."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "assignment", "score", "max_score", "seconds", "error"])
        for r in results:
            writer.writerow(
                [r.student, r.assignment, r.score, r.max_score, f"{r.seconds:.1f}", r.error]
            )


def check_gradebook(course: Path) -> list[str]:
    """Integrity problems of the gradebook: SQLite's own check, then every submission must
    hold one grade per graded cell of its notebook, each between 0 and the cell's points."""
    course = check_course(course)
    problems = []
    with sqlite3.connect(course / "gradebook.db") as db:
        status = db.execute("PRAGMA integrity_check").fetchone()[0]
    if status != "ok":
        return [f"SQLite integrity check: {status}"]
    with open_gradebook(course) as gb:
        for assignment in gb.assignments:
            for sub in gb.assignment_submissions(assignment.name):
                for nb in sub.notebooks:
                    expected = {c.name for c in nb.notebook.grade_cells}
                    got = {g.name: g for g in nb.grades}
                    if set(got) != expected:
                        problems.append(f"{sub.student.id}/{assignment.name}: grades {sorted(got)}")
                    for g in got.values():
                        if g.score is None or not 0 <= g.score <= g.max_score:
                            problems.append(f"{sub.student.id}/{g.name}: score {g.score}")
    return problems
