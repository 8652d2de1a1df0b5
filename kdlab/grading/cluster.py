"""Autograde on a Dask distributed cluster: ``kdlab autograde --scheduler ADDRESS``.

Each submission is one Dask task. The instructor's process sends it what grading needs (the
nbgrader config, the assignment's source folder, the student's submitted folder) and, once
per batch, a copy of the gradebook that holds the assignments and students but no other
student's work. A worker writes these into a private course folder of its own and grades
there with :func:`kdlab.grading.slot.grade_in_slot`, in the sandbox, as one of its
machine's slots (a lock file per slot, so two worker processes on one machine never run
kernels as the same user). It sends back the grade as its copy recorded it, the autograded
notebook and nbgrader's log; it never opens the course's ``gradebook.db``. Only the
instructor's process writes that, one submission at a time as the results come in.

Dask reruns the tasks of a worker that dies (``distributed.scheduler.allowed-failures``
times); a task's result arrives once, and writing it replaces any earlier entry of that
submission, so a submission is recorded once. A worker needs kdlab installed as here and
the teacher cache (``KDLAB_CACHE``) warm, not the course folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from kdlab.grading import sandbox
from kdlab.grading.autograding import progress_line
from kdlab.grading.grades import GradeResult
from kdlab.grading.nbgrader import check_course, open_gradebook, pick
from kdlab.grading.sandbox import Limits
from kdlab.grading.slot import grade_in_slot

__all__ = ["RemoteGrade", "autograde_on_cluster", "grade_remote", "record_grade"]

# Slots of cluster workers: user ids 61100 and up, apart from those of a local
# `kdlab autograde` (61000 + slot) on the same machine, whose processes it may kill.
FIRST_SLOT, MAX_SLOTS = 100, 64


@dataclass
class RemoteGrade:
    """What a worker sends back for one submission."""

    result: GradeResult
    record: dict | None  # the submission as the worker's gradebook holds it; None: no grade
    files: dict[str, bytes] = field(default_factory=dict)  # the autograded folder
    log: str = ""  # nbgrader's log when there is no grade


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def _job_files(course: Path, assignment: str, student: str) -> dict[str, bytes]:
    """The course files that grading one submission reads, by path in the course."""
    out = {"nbgrader_config.py": (course / "nbgrader_config.py").read_bytes()}
    for folder in (Path("source") / assignment, Path("submitted") / student / assignment):
        out.update({str(folder / k): v for k, v in _files(course / folder).items()})
    return out


def _gradebook_without_submissions(course: Path) -> bytes:
    """A copy of the gradebook with every submission removed (the assignments, their cells
    and the students stay): what a worker needs, and nothing of anyone's work."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "gradebook.db"
        with sqlite3.connect(course / "gradebook.db") as src, sqlite3.connect(copy) as dst:
            src.backup(dst)
        with open_gradebook(Path(tmp)) as gb:
            for assignment in gb.assignments:
                for sub in gb.assignment_submissions(assignment.name):
                    gb.remove_submission(assignment.name, sub.student.id)
        with sqlite3.connect(copy) as db:
            db.execute("VACUUM")
        return copy.read_bytes()


def _read_record(course: Path, assignment: str, student: str) -> dict:
    """One submission's entry of the gradebook as plain data (:func:`record_grade`)."""
    with open_gradebook(course) as gb:
        sub = gb.find_submission(assignment, student)
        return {
            "timestamp": sub.timestamp.isoformat() if sub.timestamp else None,
            "notebooks": {
                nb.name: {
                    "flagged": nb.flagged,
                    "late_submission_penalty": nb.late_submission_penalty,
                    "grades": {
                        g.name: [g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade]
                        for g in nb.grades
                    },
                    "comments": {c.name: [c.auto_comment, c.manual_comment] for c in nb.comments},
                }
                for nb in sub.notebooks
            },
        }


def record_grade(course: Path, assignment: str, student: str, record: dict | None) -> None:
    """Write one submission's entry into the course's gradebook, replacing any earlier one;
    ``None`` removes it (no grade rather than a half-written one)."""
    with open_gradebook(course) as gb, contextlib.suppress(Exception):  # none recorded
        gb.remove_submission(assignment, student)
    if record is None:
        return
    from sqlalchemy.exc import SAWarning

    with open_gradebook(course) as gb, warnings.catch_warnings():
        # nbgrader's add_submission makes SQLAlchemy 2 warn ("not in session, add operation
        # ... will not proceed") about the objects it links; they are saved all the same.
        warnings.simplefilter("ignore", SAWarning)
        gb.update_or_create_student(student)
        kwargs = {"timestamp": record["timestamp"]} if record["timestamp"] else {}
        sub = gb.add_submission(assignment, student, **kwargs)
        for nb in sub.notebooks:
            saved = record["notebooks"][nb.name]
            nb.flagged = saved["flagged"]
            nb.late_submission_penalty = saved["late_submission_penalty"]
            for g in nb.grades:
                g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade = saved[
                    "grades"
                ][g.name]
            for c in nb.comments:
                c.auto_comment, c.manual_comment = saved["comments"][c.name]
        gb.db.commit()


@contextlib.contextmanager
def _machine_slot() -> Iterator[int]:
    """A slot number no other grading process of this machine holds (a lock file each; the
    lock goes with the process, even when it is killed)."""
    folder = Path(tempfile.gettempdir())
    for slot in range(FIRST_SLOT, FIRST_SLOT + MAX_SLOTS):
        handle = open(folder / f"kdlab-grading-slot-{slot}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield slot
        finally:
            handle.close()
        return
    raise RuntimeError(f"all {MAX_SLOTS} grading slots of this machine are busy")


@functools.cache
def _capabilities() -> sandbox.Capabilities:
    return sandbox.probe()  # once per worker process: what its machine permits


def grade_remote(
    assignment: str, student: str, files: dict[str, bytes], gradebook: bytes, limits: Limits
) -> RemoteGrade:
    """Grade one submission on a worker (a Dask task): in a private course folder made of
    ``files`` and ``gradebook``, with this machine's sandbox."""
    from kdlab.runtime import cache_dir

    root = Path(tempfile.mkdtemp(prefix="kdlab-worker-"))  # mode 0700: root's alone
    batch = Path(tempfile.mkdtemp(prefix="kdlab-grading-"))
    os.chmod(batch, 0o711)  # the kernel may pass through, not list
    try:
        course = root / "course"
        _write_files(course, files)
        (course / "gradebook.db").write_bytes(gradebook)
        os.chmod(course / "gradebook.db", 0o600)
        with _machine_slot() as slot:
            caps = _capabilities()
            result = grade_in_slot(
                course, assignment, student, limits, caps, batch, cache_dir(), slot
            )
        if result.error:
            log = course / "logs" / assignment / f"{student}.log"
            return RemoteGrade(result, None, log=log.read_text() if log.is_file() else "")
        record = _read_record(course, assignment, student)
        return RemoteGrade(result, record, _files(course / "autograded" / student / assignment))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(batch, ignore_errors=True)


def _keep(course: Path, remote: RemoteGrade) -> GradeResult:
    """Record what a worker sent in the course (in this, the instructor's, process)."""
    result = remote.result
    record_grade(course, result.assignment, result.student, remote.record)
    target = course / "autograded" / result.student / result.assignment
    shutil.rmtree(target, ignore_errors=True)
    _write_files(target, remote.files)
    if remote.record is None and remote.log:
        logs = course / "logs" / result.assignment
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{result.student}.log").write_text(remote.log, encoding="utf-8")
    return result


def autograde_on_cluster(
    course: Path,
    scheduler,
    names: list[str] | None = None,
    *,
    students: list[str] | None = None,
    limits: Limits | None = None,
    progress: bool = True,
    stream: TextIO | None = None,
) -> list[GradeResult]:
    """Grade every submission of ``names`` (default: all assignments), or those of
    ``students``, on the Dask cluster of ``scheduler`` (an address such as
    ``tcp://10.0.0.5:8786``, or a ``distributed.Client``). Progress and results as
    :func:`kdlab.grading.autograde`; a task that fails on every try (a worker killed each
    time) gives that submission an error, never a made-up grade."""
    from distributed import Client, as_completed

    course = check_course(course)
    limits = limits or Limits()
    if not (course / "gradebook.db").is_file():
        raise ValueError(f"{course} has no gradebook.db: run `kdlab release` first")
    jobs = []
    for name in pick(course, names):
        found = sorted(p.parent.name for p in (course / "submitted").glob(f"*/{name}"))
        jobs += [(name, s) for s in found if students is None or s in students]
    try:
        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    except OSError as err:
        raise ValueError(
            f"no Dask scheduler answers at {scheduler} ({err}): start one with `dask "
            "scheduler` and workers with `dask worker ADDRESS` (assignments/README.md)"
        ) from err
    out = (sys.stderr if stream is None else stream) if progress else None
    if out is not None:
        workers = len(client.scheduler_info()["workers"])
        print(f"grading {len(jobs)} submission(s) on {workers} Dask worker(s)", file=out)
    start = time.perf_counter()
    try:
        gradebook = client.scatter(_gradebook_without_submissions(course), broadcast=True)
        futures = {
            client.submit(
                grade_remote, a, s, _job_files(course, a, s), gradebook, limits, pure=False
            ): (a, s)
            for a, s in jobs
        }
        results = {}
        for done, future in enumerate(as_completed(futures), start=1):
            a, s = futures[future]
            try:
                result = _keep(course, future.result())
            except Exception as err:  # the task failed on every try: say so, no grade
                record_grade(course, a, s, None)
                result = GradeResult(s, a, None, None, f"the grading worker failed: {err!r}"[:300])
            results[a, s] = result
            if out is not None:
                print(
                    progress_line(result, done, len(jobs), time.perf_counter() - start),
                    file=out,
                    flush=True,
                )
        return [results[job] for job in jobs]
    finally:
        if client is not scheduler:
            client.close()
