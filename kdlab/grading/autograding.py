"""Autograde in parallel: every submission of the chosen assignments, ``workers`` at a
time, each in its own slot and sandbox (:mod:`kdlab.grading.slot`), graded by the slot's
long-lived grading process (:mod:`kdlab.grading.warm_worker`). nbgrader's gradebook
(``gradebook.db`` in the course root) stays the record.

Each submission is reported as it finishes, one line on the instructor's terminal (stderr):
``graded 12/300 a1_soft_targets alice: 8/8 points (41 s), about 3 min left``. The lines are
written by this process; the students' kernels run in other processes with
``KDLAB_PROGRESS=0`` (:mod:`kdlab.grading.slot`), so no bar reaches a grade cell."""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TextIO

from kdlab.grading import sandbox
from kdlab.grading.grades import GradeResult
from kdlab.grading.nbgrader import check_course, pick
from kdlab.grading.sandbox import Capabilities, Limits
from kdlab.grading.slot import grade_in_slot
from kdlab.grading.warm_worker import worker

__all__ = ["autograde", "progress_line"]


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


def _duration(seconds: float) -> str:
    """``seconds`` in words a person reads at a glance: 40 s, 7 min, 2 h 05 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def progress_line(result: GradeResult, done: int, total: int, elapsed: float) -> str:
    """The line that reports one finished submission: its grade or error, and the time
    left, estimated from the submissions finished so far (``elapsed`` seconds since the
    batch started; with several workers, that is their combined pace)."""
    if result.error:
        outcome = f"ERROR: {result.error[:120]}"
    else:
        outcome = f"{result.score:g}/{result.max_score:g} points"
    if done < total:
        left = f"about {_duration(elapsed / done * (total - done))} left"
    else:
        left = f"all done in {_duration(elapsed)}"
    return (
        f"graded {done}/{total} {result.assignment} {result.student}: {outcome} "
        f"({result.seconds:.0f} s), {left}"
    )


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
    progress: bool = True,
    stream: TextIO | None = None,
) -> list[GradeResult]:
    """Grade every submission of ``names`` (default: all assignments), or those of
    ``students``, ``workers`` at a time, each in its own sandbox: one long-lived grading
    process per worker runs nbgrader, with a fresh kernel per submission forked from that
    process's warm kernel server (:mod:`kdlab.grading.warm_worker`).
    The assignments must have been released (``release``) so the gradebook knows them.

    With ``progress``, say how many submissions there are, then one line per submission
    as it finishes (:func:`progress_line`), on ``stream`` (default: stderr). Returns the
    results in the order of the submissions (by assignment, then student)."""
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
        if jobs:
            worker(slot).start()  # the grading processes load side by side
    out = (sys.stderr if stream is None else stream) if progress else None
    if out is not None:
        print(f"grading {len(jobs)} submission(s), {workers} at a time", file=out, flush=True)
    start = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(_grade_one, course, a, s, limits, caps, batch, cache, slots)
                for a, s in jobs
            ]
            for done, future in enumerate(as_completed(futures), start=1):
                if out is not None:
                    line = progress_line(
                        future.result(), done, len(jobs), time.perf_counter() - start
                    )
                    print(line, file=out, flush=True)
            return [f.result() for f in futures]
    finally:
        shutil.rmtree(batch, ignore_errors=True)
