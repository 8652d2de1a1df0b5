"""One submission graded in one worker slot: a scratch folder that holds only that
submission, nbgrader's autograde run by the slot's grading process
(:mod:`kdlab.grading.warm_worker`) with a fresh sandbox kernel, its grade written into
the course's gradebook, or a per-student error and no grade.

A submission that fails (an unreadable file, a kernel that died, the wall limit) never
touches another student's grade.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

from kdlab.grading.grades import GradeResult
from kdlab.grading.nbgrader import grade_id, notebook_names, open_gradebook
from kdlab.grading.sandbox import Capabilities, Limits
from kdlab.grading.warm_worker import Job, worker

__all__ = ["grade_in_slot"]


def _grade_ids(course: Path, assignment: str, notebook: str) -> set[str]:
    with open_gradebook(course) as gb:
        return {cell.name for cell in gb.find_notebook(notebook, assignment).grade_cells}


def _precheck(path: Path, grade_ids: set[str]) -> str:
    """Why the submitted file cannot be graded at all, or ''."""
    import nbformat

    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        with warnings.catch_warnings():  # nbformat's notes on cell ids: nbgrader's concern
            warnings.simplefilter("ignore")
            nb = nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several kinds for broken files
        return f"not a readable notebook ({err.__class__.__name__}: {str(err)[:200]})"
    ids = {grade_id(c) for c in nb.cells}
    if not ids & grade_ids:
        return "holds none of the assignment's graded cells: the notebook of another assignment?"
    return ""


def _drop_duplicate_ids(path: Path) -> None:
    """Where cells share a grade id (a copied cell), only the last keeps its nbgrader
    metadata, as nbgrader's DeduplicateIds decides; nbgrader metadata without a grade id
    goes too. nbgrader 0.9 empties such metadata instead of removing it, and its
    ``add_missing_cells`` step then fails the submission (KeyError: 'grade_id')."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    seen, changed = set(), False
    for cell in reversed(nb.get("cells", [])):
        meta = cell.get("metadata", {})
        if "nbgrader" not in meta:
            continue
        nbgrader = meta["nbgrader"]
        gid = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
        if gid is None or gid in seen:
            del meta["nbgrader"]
            changed = True
        seen.add(gid)
    if changed:
        path.write_text(json.dumps(nb, indent=1), encoding="utf-8")


def _link_or_copy(src: Path, dest: Path) -> None:
    """``dest``: a hard link to ``src`` (read-only to the sandbox user: it stays root's), or
    a copy readable by all where ``src`` is its owner's alone or no link is possible."""
    if os.stat(src).st_mode & 0o004:
        try:
            os.link(src, dest)
            return
        except OSError:  # another file system
            pass
    shutil.copyfile(src, dest)
    os.chmod(dest, 0o644)


def _link_tree(src: Path, dest: Path, uid: int | None) -> None:
    """A private view of ``src``: folders of its own (owned by ``uid``), files linked or
    copied (:func:`_link_or_copy`)."""
    for folder, _, files in os.walk(src):
        target = dest / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o755)
        if uid is not None:
            os.chown(target, uid, -1)
        for name in files:
            _link_or_copy(Path(folder) / name, target / name)


_VIEW_LOCK = threading.Lock()


def _cache_view(cache: Path, batch: Path) -> Path:
    """The cache as every sandbox user may read it, made once per batch: files that only
    their owner may read (``kdlab.cache`` writes mode 0600) are copied, readable by all,
    the others hard-linked; nothing in it is writable but by root."""
    view = batch / "cache"
    with _VIEW_LOCK:
        if view.is_dir():
            return view
        building = Path(tempfile.mkdtemp(dir=batch))
        _link_tree(cache, building, None)
        try:
            building.rename(view)
        except OSError:  # another process of this batch was first
            shutil.rmtree(building, ignore_errors=True)
    return view


def _private_dir(path: Path, uid: int | None) -> Path:
    path.mkdir(mode=0o700, parents=True)
    if uid is not None:
        os.chown(path, uid, -1)
    return path


def _error_from_log(log: str) -> str:
    """A per-student error from the log of an nbgrader run that failed."""
    if "DeadKernelError" in log or "kernel died" in log.lower():
        return "the kernel died while running the notebook (os._exit, a signal, a crash)"
    if "CellTimeoutError" in log:  # nbgrader's own cell timeouts do not fail the run
        return (
            "a cell ran past the cell time limit and did not stop when interrupted "
            "(code that ignores KeyboardInterrupt?)"
        )
    errors = [line for line in log.splitlines() if "| ERROR]" in line or "Error" in line]
    return "nbgrader failed: " + (" / ".join(errors[-3:]) or log.strip()[-300:])[:500]


def grade_in_slot(
    course: Path,
    assignment: str,
    student: str,
    limits: Limits,
    caps: Capabilities,
    batch: Path,
    cache: Path | None,
    slot: int,
    *,
    warm: bool = True,
) -> GradeResult:
    """Grade ``student``'s submission of ``assignment`` in a scratch folder under ``batch``,
    in the grading process of ``slot``, its kernel run as the sandbox user of ``slot``, with
    a private view of ``cache``; ``warm``: the kernel is forked from the slot's kernel
    server (torch and kdlab imported), else started cold."""
    start = time.perf_counter()
    notebook = notebook_names(course, assignment)[0]
    submitted = course / "submitted" / student / assignment
    problem = _precheck(submitted / f"{notebook}.ipynb", _grade_ids(course, assignment, notebook))
    if problem:
        return GradeResult(student, assignment, None, None, problem, time.perf_counter() - start)
    if caps.uid is not None:
        caps = dataclasses.replace(caps, uid=caps.uid + slot)
    uid = caps.uid
    scratch = Path(tempfile.mkdtemp(dir=batch))  # a random name the kernel cannot guess
    os.chmod(scratch, 0o711)
    root = scratch / "course"
    shutil.copytree(submitted, root / "submitted" / student / assignment)
    _drop_duplicate_ids(root / "submitted" / student / assignment / f"{notebook}.ipynb")
    os.chmod(root / "submitted", 0o700)  # for nbgrader (root), not for the kernel
    shutil.copy2(course / "nbgrader_config.py", root / "nbgrader_config.py")
    private = _private_dir(scratch / "private", None)
    home = _private_dir(scratch / "home", uid)
    _private_dir(home / "tmp", uid)
    if cache is not None and cache.is_dir():  # the cached teachers, read-only
        _link_tree(_cache_view(cache, batch), home / "cache", uid)
    ipc = _private_dir(scratch / "ipc", uid)
    # No progress bars in the kernel: nbgrader gives zero to a test cell that writes to
    # stderr, where a bar goes outside a notebook front end (kdlab.runtime.progress_default).
    env = {
        "KDLAB_CACHE": str(home / "cache"),
        "TMPDIR": str(home / "tmp"),
        "KDLAB_PROGRESS": "0",
    }
    hide = [course] + ([cache] if cache is not None and cache.is_dir() else [])
    spec = {"home": home, "pidfile": private / "kernel.pid", "hide": hide, "env": env}
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    job = Job(
        root,
        assignment,
        student,
        db_url,
        limits,
        caps,
        spec,
        scratch / "jupyter",
        private,
        ipc,
        warm,
    )
    ok, log, stopped = worker(slot).grade(job)
    if stopped:
        error = f"stopped at the wall limit of {limits.notebook_seconds} s per submission"
    else:
        # Not "| ERROR]" in the log: nbgrader logs a cell's timeout at that level, and such a
        # cell only loses its points.
        error = "" if ok else _error_from_log(log)
    graded = root / "autograded" / student / assignment
    if not error and not (graded / f"{notebook}.ipynb").is_file():
        error = "nbgrader wrote no autograded notebook: " + log.strip()[-300:]
    score = max_score = None
    with open_gradebook(course) as gb:
        if error:
            # No grade rather than a half-written one; the report holds the reason.
            try:
                gb.remove_submission(assignment, student)
            except Exception:  # nothing was recorded
                pass
        else:
            sub = gb.find_submission(assignment, student)
            score, max_score = float(sub.score), float(sub.max_score)
    target = course / "autograded" / student / assignment
    shutil.rmtree(target, ignore_errors=True)
    if not error:
        shutil.copytree(graded, target)
    if error:  # nbgrader's whole log, for the instructor
        logs = course / "logs" / assignment
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{student}.log").write_text(log, encoding="utf-8")
    shutil.rmtree(scratch, ignore_errors=True)
    return GradeResult(student, assignment, score, max_score, error, time.perf_counter() - start)
