"""Autograde in parallel: every submission of the chosen assignments, ``workers`` at a
time, each in its own slot and sandbox (:mod:`kdlab.grading.slot`). nbgrader's gradebook
(``gradebook.db`` in the course root) stays the record."""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kdlab.grading import sandbox
from kdlab.grading.grades import GradeResult
from kdlab.grading.nbgrader import check_course, pick
from kdlab.grading.sandbox import Capabilities, Limits
from kdlab.grading.slot import grade_in_slot

__all__ = ["autograde"]


def _grade_one(
    course: Path,
    assignment: str,
    student: str,
    limits: Limits,
    caps: Capabilities,
    batch: Path,
    cache: Path | None,
    slots: queue.Queue,
) -> GradeResult:
    slot = slots.get()
    try:
        return grade_in_slot(course, assignment, student, limits, caps, batch, cache, slot)
    finally:
        slots.put(slot)


def _cache_dir() -> Path:
    value = os.environ.get("KDLAB_CACHE", "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "kdlab"


def autograde(
    course: Path,
    names: list[str] | None = None,
    *,
    students: list[str] | None = None,
    workers: int = 1,
    limits: Limits | None = None,
    caps: Capabilities | None = None,
    scratch: Path | None = None,
) -> list[GradeResult]:
    """Grade every submission of ``names`` (default: all assignments), or those of
    ``students``, with ``workers`` nbgrader processes at a time, each in its own sandbox.
    The assignments must have been released (``release``) so the gradebook knows them."""
    course = check_course(course)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    limits = limits or Limits()
    caps = caps or sandbox.probe()
    scratch = Path(scratch or tempfile.gettempdir()).resolve()
    if scratch.is_relative_to(course):
        raise ValueError(f"the scratch folder {scratch} must lie outside the course root {course}")
    if not (course / "gradebook.db").is_file():
        raise ValueError(f"{course} has no gradebook.db: run `kdlab release` first")
    if caps.uid is not None:
        os.chmod(course / "gradebook.db", 0o600)
    jobs = []
    for name in pick(course, names):
        folder = course / "submitted"
        found = sorted(p.parent.name for p in folder.glob(f"*/{name}") if p.is_dir())
        jobs += [(name, s) for s in found if students is None or s in students]
    batch = Path(tempfile.mkdtemp(prefix="kdlab-grading-", dir=scratch))
    os.chmod(batch, 0o711)  # the kernel may pass through, not list
    cache = _cache_dir()
    slots: queue.Queue = queue.Queue()
    for slot in range(workers):
        slots.put(slot)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_grade_one, course, a, s, limits, caps, batch, cache, slots)
                for a, s in jobs
            ]
            return [f.result() for f in futures]
    finally:
        shutil.rmtree(batch, ignore_errors=True)
