"""Collect: students' ``<student>_<assignment>.ipynb`` files, from a folder or a zip
archive, into nbgrader's ``submitted/`` folder; every other file is rejected with a reason."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.grading.nbgrader import assignments, check_course, notebook_names

__all__ = ["CollectReport", "collect"]

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


@dataclass
class CollectReport:
    """Submissions copied to ``submitted/`` and files rejected, with the reason."""

    collected: list[tuple[str, str]] = field(default_factory=list)  # (student, assignment)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)


def _parse_name(name: str, known: list[str]) -> tuple[str, str] | str:
    """``(student, assignment)`` from ``<student>_<assignment>.ipynb``, or why not."""
    if not name.endswith(".ipynb"):
        return "not a notebook (.ipynb)"
    stem = name[: -len(".ipynb")]
    for assignment in sorted(known, key=len, reverse=True):
        if stem.endswith("_" + assignment):
            student = stem[: -len(assignment) - 1]
            if STUDENT_ID.match(student):
                return student, assignment
            return f"bad student id {student!r} (letters, digits, '.' and '-' only)"
    return f"name is not <student>_<assignment>.ipynb for an assignment in {known}"


def collect(course: Path, source: Path) -> CollectReport:
    """Copy each ``<student>_<assignment>.ipynb`` of a folder or zip archive ``source`` to
    ``submitted/<student>/<assignment>/<notebook>.ipynb``; every other file is reported."""
    course, source = check_course(course), Path(source)
    known = assignments(course)
    report = CollectReport()
    if source.is_dir():
        files = {p.name: p.read_bytes for p in sorted(source.iterdir()) if p.is_file()}
        report.rejected += [(p.name, "a folder") for p in sorted(source.iterdir()) if p.is_dir()]
    elif zipfile.is_zipfile(source):
        archive = zipfile.ZipFile(source)
        entries = [i for i in archive.infolist() if not i.is_dir()]
        files = {Path(i.filename).name: (lambda i=i: archive.read(i)) for i in entries}
    else:
        raise ValueError(f"{source} is neither a folder nor a zip archive of submissions")
    for name, read in files.items():
        parsed = _parse_name(name, known)
        if isinstance(parsed, str):
            report.rejected.append((name, parsed))
            continue
        student, assignment = parsed
        notebooks = notebook_names(course, assignment)
        if len(notebooks) != 1:
            report.rejected.append((name, f"{assignment} has {len(notebooks)} notebooks, not 1"))
            continue
        dest = course / "submitted" / student / assignment / f"{notebooks[0]}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(read())
        report.collected.append((student, assignment))
    return report
