"""The student's check before submitting: ``kdlab validate NOTEBOOK``.

The notebook runs top to bottom in the kernel the grader uses (:mod:`kdlab.grading.sandbox`:
the same limits, no network, the course root hidden), and each visible test cell passes or
fails with its message, scored as nbgrader scores it (``nbgrader.utils.determine_grade``: an
error or output on stderr is zero). Before that, the notebook's graded cells are compared
with the assignment's source notebook, as ``nbgrader validate`` does with its checksums
(``nbgrader.utils.compute_checksum``), and more: a graded cell missing, duplicated, edited or
of another type, or the notebook of another assignment. Each problem is said in words a
student understands, with what to do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.grading import sandbox
from kdlab.grading.nbgrader import assignments, check_course, grade_id, notebook_names
from kdlab.grading.sandbox import Capabilities, Limits
from kdlab.grading.warm_worker import kill_user

__all__ = ["TestOutcome", "Validation", "validate"]

VALIDATE_UID_OFFSET = 1000


@dataclass
class TestOutcome:
    """One graded cell after the run: ``passed`` is None for a written answer (``manual``,
    graded by hand) and for a test that did not run."""

    grade_id: str
    points: float
    passed: bool | None
    message: str = ""
    manual: bool = False


@dataclass
class Validation:
    """What ``kdlab validate`` found: the assignment, each visible test, the problems."""

    notebook: Path
    assignment: str | None
    tests: list[TestOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(t.passed is not False for t in self.tests)

    def lines(self) -> list[str]:
        """The report a student reads."""
        out = [f"{self.notebook.name}: assignment {self.assignment or '(unknown)'}"]
        for t in self.tests:
            mark = {True: "PASS", False: "FAIL", None: "----"}[t.passed]
            out.append(f"  {mark}  {t.grade_id:32s} {t.points:g} points  {t.message}".rstrip())
        if self.problems:
            out.append("Fix these before you submit:")
            out += [f"  - {p}" for p in self.problems]
        runs = [t for t in self.tests if not t.manual]
        passed = sum(t.passed is True for t in runs)
        out.append(
            f"{passed} of {len(runs)} visible tests pass. Hidden tests run only when your "
            "notebook is graded." + ("" if self.ok else " Not ready to submit.")
        )
        return out


def _read(path: Path):
    import nbformat

    with warnings.catch_warnings():  # nbformat's notes on cell ids are not the student's
        warnings.simplefilter("ignore")
        return nbformat.read(path, as_version=4)


def _source_cells(course: Path, assignment: str) -> dict[str, dict]:
    """The graded cells of the assignment's source notebooks: grade id -> cell."""
    out = {}
    for name in notebook_names(course, assignment):
        nb = json.loads((course / "source" / assignment / f"{name}.ipynb").read_text("utf-8"))
        out.update({grade_id(c): c for c in nb["cells"] if grade_id(c)})
    return out


def _which_assignment(course: Path, path: Path, ids: set[str], named: str | None):
    """The assignment the notebook is checked against (None: there is none to run it
    against), and a problem if it looks like another one or like none."""
    known = assignments(course)
    if named is not None and named not in known:
        return None, f"the course has no assignment {named!r}; it has {', '.join(known)}"
    overlap = {a: len(ids & set(_source_cells(course, a))) for a in known}
    best = max(known, key=lambda a: overlap[a], default=None)
    by_name = named or next((a for a in known if path.stem.endswith(a)), None) or best
    if best is None or overlap[best] == 0:
        return None, (
            "this notebook holds none of the graded cells of any assignment of the course: "
            "start again from the released notebook (were the cells' metadata removed?)"
        )
    if overlap[by_name] < overlap[best]:
        return by_name, (
            f"this notebook looks like assignment {best}, not {by_name}: submit the notebook "
            f"of {by_name} (or name the right assignment with --assignment)"
        )
    return by_name, ""


def _structure(nb, expected: dict[str, dict]) -> list[str]:
    """Graded cells missing, duplicated, of another type, or test cells edited."""
    from nbgrader import utils

    problems = []
    counts = Counter(grade_id(c) for c in nb.cells if grade_id(c))
    for gid in expected:
        if gid not in counts:
            problems.append(
                f"the graded cell {gid!r} is missing (deleted?): copy it back from the "
                "released notebook, or its points may be lost"
            )
    for gid, n in sorted(counts.items()):
        if n > 1:
            problems.append(
                f"the graded cell {gid!r} appears {n} times (copied?): only the last copy is "
                "graded; delete the others, keeping your answer in the last one"
            )
    for cell in nb.cells:
        gid, meta = grade_id(cell), cell.get("metadata", {}).get("nbgrader", {})
        if gid not in expected:
            continue
        kind = expected[gid]["cell_type"]
        if cell.cell_type != kind:
            problems.append(
                f"the cell {gid!r} was a {kind} cell and is now a {cell.cell_type} cell: "
                f"change it back to {kind}"
            )
        elif utils.is_locked(cell) and "checksum" in meta:
            if meta["checksum"] != utils.compute_checksum(cell):
                problems.append(
                    f"you changed the test cell {gid!r}: grading puts the original back, so "
                    "your change does not count; undo it (copy the cell from the released "
                    "notebook)"
                )
    return problems


def _message(cell) -> str:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            if output["ename"] == "NotImplementedError" and not output["evalue"]:
                return "NotImplementedError: an answer this test uses is not written yet"
            return f"{output['ename']}: {output['evalue']}".strip().rstrip(":")
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            first = "".join(output.get("text", "")).strip().split("\n")[0][:200]
            return f"writes to stderr, which grading counts as a failure: {first}"
    return ""


def _outcomes(nb, died_at: int | None) -> list[TestOutcome]:
    """Each graded cell of the executed notebook, scored as nbgrader scores it."""
    from nbgrader import utils

    out = []
    for index, cell in enumerate(nb.cells):
        if not utils.is_grade(cell):
            continue
        points = float(cell.metadata.nbgrader.get("points", 0))
        if utils.is_solution(cell):
            unanswered = utils.determine_grade(cell)[0] == 0  # still the released text
            note = "not answered yet" if unanswered else "written answer, graded by hand"
            out.append(TestOutcome(grade_id(cell), points, None, note, manual=True))
        elif died_at is not None and index > died_at:
            out.append(TestOutcome(grade_id(cell), points, None, "did not run: the kernel died"))
        elif index == died_at:
            out.append(TestOutcome(grade_id(cell), points, False, "the kernel died in this cell"))
        else:
            score, _ = utils.determine_grade(cell)
            passed = score is not None and score >= points
            message = "" if passed else _message(cell)
            out.append(TestOutcome(grade_id(cell), points, passed, message))
    return out


def _run(nb, course: Path, limits: Limits, caps: Capabilities, scratch: Path) -> int | None:
    """Execute ``nb`` in place in the sandbox kernel; the index of the cell in which the
    kernel died, or None."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    from kdlab.runtime import cache_dir

    if caps.uid is not None:
        # A user id of its own, not one of the grading slots' (61000 + slot), whose
        # processes a grading run on this machine may kill.
        caps = dataclasses.replace(caps, uid=caps.uid + VALIDATE_UID_OFFSET + os.getpid() % 1000)
    uid = caps.uid
    folders = {}
    for name, owner in (("private", None), ("home", uid), ("ipc", uid), ("work", None)):
        folders[name] = scratch / name
        folders[name].mkdir(mode=0o700 if name != "work" else 0o755)
        if owner is not None:
            os.chown(folders[name], owner, -1)
    home = folders["home"]
    (home / "tmp").mkdir()
    # The student's own cache on their machine; a fresh one when the kernel runs as
    # another user (validating as root), who may not read it.
    cache = cache_dir() if uid is None else home / "cache"
    if uid is not None:
        os.chown(home / "tmp", uid, -1)
    env = {"KDLAB_CACHE": str(cache), "TMPDIR": str(home / "tmp"), "KDLAB_PROGRESS": "0"}
    spec = sandbox.kernel_spec(
        limits, caps, home=home, pidfile=folders["private"] / "kernel.pid", hide=[course], env=env
    )
    spec_dir = scratch / "kernels" / sandbox.KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    km = AsyncKernelManager(
        kernel_name=sandbox.KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(scratch / "kernels")]),
        transport="ipc",
        ip=str(folders["ipc"] / "kernel"),
        connection_file=str(folders["private"] / "connection.json"),
    )
    client = NotebookClient(
        nb,
        km=km,
        timeout=limits.cell_seconds,
        iopub_timeout=limits.cell_seconds,
        interrupt_on_timeout=True,
        allow_errors=True,
        resources={"metadata": {"path": str(folders["work"])}},
    )
    started = [None]

    def on_start(cell, cell_index):
        started[0] = cell_index

    client.on_cell_start = on_start
    try:
        client.execute()
    except DeadKernelError:
        return started[0]
    finally:  # nbclient leaves a kernel it did not start running
        with contextlib.suppress(Exception):
            run_sync(km.shutdown_kernel)(now=True)
        if uid is not None:  # and whatever the student's code started
            kill_user(uid)
    return None


def validate(
    notebook: Path,
    course: Path,
    *,
    assignment: str | None = None,
    limits: Limits | None = None,
    caps: Capabilities | None = None,
) -> Validation:
    """Check ``notebook`` against ``assignment`` of ``course`` (default: the assignment its
    file name ends with, else the one whose graded cells it holds), then run it in the
    grading sandbox and score each visible test."""
    course, notebook = check_course(course), Path(notebook)
    if not notebook.is_file():
        return Validation(notebook, assignment, problems=[f"there is no file {notebook}"])
    try:
        nb = _read(notebook)
    except Exception as err:  # nbformat raises several kinds for broken files
        problem = (
            f"this is not a notebook Jupyter can open ({err.__class__.__name__}): download "
            "it again from Jupyter (File > Download) or start from the released notebook"
        )
        return Validation(notebook, assignment, problems=[problem])
    ids = {grade_id(c) for c in nb.cells if grade_id(c)}
    name, problem = _which_assignment(course, notebook, ids, assignment)
    result = Validation(notebook, name, problems=[problem] if problem else [])
    if name is None:
        return result
    result.problems += _structure(nb, _source_cells(course, name))
    limits, caps = limits or Limits(), caps or sandbox.probe()
    scratch = Path(tempfile.mkdtemp(prefix="kdlab-validate-"))
    os.chmod(scratch, 0o711)
    try:
        died_at = _run(nb, course, limits, caps, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result.tests = _outcomes(nb, died_at)
    if died_at is not None:
        where = grade_id(nb.cells[died_at]) or f"number {died_at + 1}"
        result.problems.append(
            f"the kernel died while running cell {where!r} (os._exit, a crash, or too much "
            f"memory: the limit is {limits.memory_mb} MB); at grading that cell fails, and so"
            " do the tests that need it"
        )
    return result
