"""One submission graded in one worker slot: a scratch folder that holds only that
submission, one ``nbgrader autograde --student=ID`` process with the sandbox kernel, its
grade written into the course's gradebook, or a per-student error and no grade.

A submission that fails (an unreadable file, a kernel that died, the wall limit) never
touches another student's grade.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

from kdlab.grading import sandbox
from kdlab.grading.grades import GradeResult
from kdlab.grading.nbgrader import (
    grade_id,
    nbgrader_command,
    nbgrader_env,
    notebook_names,
    open_gradebook,
)
from kdlab.grading.sandbox import Capabilities, Limits

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


def _kill_kernel(pidfile: Path, scratch: Path) -> None:
    """Kill the kernel's process group if it still runs (nbgrader started it in its own
    session, so killing nbgrader leaves it behind)."""
    try:
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except (OSError, ValueError):
        return
    if str(scratch) in cmdline:  # still our kernel, not a recycled pid
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _link_tree(src: Path, dest: Path, uid: int | None) -> None:
    """A private view of ``src``: folders of its own (owned by ``uid``), files hard-linked
    (read-only to ``uid``: they stay root's), copied where no link is possible."""
    for folder, _, files in os.walk(src):
        target = dest / Path(folder).relative_to(src)
        target.mkdir(parents=True, exist_ok=True)
        if uid is not None:
            os.chown(target, uid, -1)
        for name in files:
            try:
                os.link(Path(folder) / name, target / name)
            except OSError:
                shutil.copy2(Path(folder) / name, target / name)


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
) -> GradeResult:
    """Grade ``student``'s submission of ``assignment`` in a scratch folder under ``batch``,
    its kernel run as the sandbox user of ``slot``, with a private view of ``cache``."""
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
    if cache is not None and cache.is_dir():
        _link_tree(cache, home / "cache", uid)
    ipc = _private_dir(scratch / "ipc", uid)
    spec_dir = scratch / "jupyter" / "kernels" / sandbox.KERNEL_NAME
    spec_dir.mkdir(parents=True)
    # No progress bars in the kernel: nbgrader gives zero to a test cell that writes to
    # stderr, where a bar goes outside a notebook front end (kdlab.runtime.progress_default).
    env = {
        "KDLAB_CACHE": str(home / "cache"),
        "TMPDIR": str(home / "tmp"),
        "KDLAB_PROGRESS": "0",
    }
    hide = [course] + ([cache] if cache is not None and cache.is_dir() else [])
    spec = sandbox.kernel_spec(
        limits, caps, home=home, pidfile=private / "kernel.pid", hide=hide, env=env
    )
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    args = [
        "autograde",
        assignment,
        f"--student={student}",
        "--force",
        f"--CourseDirectory.db_url=sqlite:///{course / 'gradebook.db'}",
        f"--Execute.timeout={limits.cell_seconds}",
        # Output may trail a cell's reply on a busy machine; nbgrader's 4 s made the whole
        # submission fail (CellTimeoutError "Timeout waiting for IOPub output").
        f"--Execute.iopub_timeout={limits.cell_seconds}",
        f"--Execute.kernel_name={sandbox.KERNEL_NAME}",
        "--KernelManager.transport=ipc",
        f"--KernelManager.ip={ipc / 'kernel'}",
    ]
    proc = subprocess.Popen(
        nbgrader_command(*args),
        cwd=root,
        env=nbgrader_env(
            {"JUPYTER_PATH": str(scratch / "jupyter"), "JUPYTER_RUNTIME_DIR": str(private)}
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        log, _ = proc.communicate(timeout=limits.notebook_seconds)
        # Not "| ERROR]" in the log: nbgrader logs a cell's timeout at that level, and such a
        # cell only loses its points. A submission that nbgrader could not grade exits 1.
        error = "" if proc.returncode == 0 else _error_from_log(log)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        error = f"stopped at the wall limit of {limits.notebook_seconds} s per submission"
    finally:
        _kill_kernel(private / "kernel.pid", scratch)
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
