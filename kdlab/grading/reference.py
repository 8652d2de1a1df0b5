"""The reference submission (the source's solutions in the release) and the self-check:
in a copy of the course, the reference must get full marks and the untouched release zero."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from kdlab.grading.autograding import autograde
from kdlab.grading.nbgrader import (
    check_course,
    copy_course,
    grade_id,
    notebook_names,
    pick,
    source_of,
)
from kdlab.grading.releasing import BEGIN_SOLUTION, END_SOLUTION, release
from kdlab.grading.sandbox import Capabilities, Limits

__all__ = ["reference_submission", "selfcheck"]


def reference_submission(release_nb: dict, source_nb: dict) -> dict:
    """The release with each solution cell filled in from the source, markers removed:
    what a student who wrote the reference solution hands in."""
    solutions = {}
    for cell in source_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            lines = source_of(cell).split("\n")
            marker = (BEGIN_SOLUTION, END_SOLUTION)
            solutions[meta["grade_id"]] = "\n".join(
                line for line in lines if line.strip() not in marker
            )
    nb = json.loads(json.dumps(release_nb))
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid in solutions:
            cell["source"] = solutions[gid]
    return nb


def selfcheck(
    course: Path,
    names: list[str] | None = None,
    *,
    workers: int = 1,
    limits: Limits | None = None,
    caps: Capabilities | None = None,
) -> list[tuple[str, str, float | None, float | None, str]]:
    """In a temporary copy of the course: release, then autograde (sandboxed) the reference
    solution and the untouched release of each assignment. Rows of (assignment, student,
    score, max score, verdict); the verdict is "ok" when the reference has full marks and
    the release zero."""
    course = check_course(course)
    chosen = pick(course, names)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kdlab-selfcheck-") as tmp:
        copy = copy_course(course, Path(tmp) / "course", chosen)
        leaks = release(copy, chosen)
        for name in chosen:
            nb = notebook_names(copy, name)[0]
            rel = json.loads((copy / "release" / name / f"{nb}.ipynb").read_text())
            src = json.loads((copy / "source" / name / f"{nb}.ipynb").read_text())
            for student, content in (
                ("reference", reference_submission(rel, src)),
                ("release", rel),
            ):
                dest = copy / "submitted" / student / name / f"{nb}.ipynb"
                dest.parent.mkdir(parents=True)
                dest.write_text(json.dumps(content, indent=1))
        manual = {name: _manual_points(copy, name) for name in chosen}
        results = autograde(copy, chosen, workers=workers, limits=limits, caps=caps)
        for r in results:
            want = r.max_score - manual[r.assignment] if r.student == "reference" else 0.0
            verdict = "ok" if not r.error and r.score == want else (r.error or f"expected {want}")
            if leaks[r.assignment]:
                verdict = f"release leaks: {leaks[r.assignment][:3]}"
            rows.append((r.assignment, r.student, r.score, r.max_score, verdict))
    return rows


def _manual_points(course: Path, name: str) -> float:
    """The points of an assignment's cells graded by hand (written answers, markdown grade
    cells): autograding leaves them to the instructor, so the reference's score lacks them."""
    notebook = notebook_names(course, name)[0]
    nb = json.loads((course / "source" / name / f"{notebook}.ipynb").read_text())
    return sum(
        float(c["metadata"]["nbgrader"].get("points", 0))
        for c in nb["cells"]
        if c["cell_type"] == "markdown" and c.get("metadata", {}).get("nbgrader", {}).get("grade")
    )
