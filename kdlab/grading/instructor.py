"""The instructor's workflow around nbgrader: release, self-check, collect, autograde in
parallel and in a sandbox, feedback, grades.

nbgrader does the work and its gradebook (``gradebook.db`` in the course root) is the
record; this module chooses what to run, where, and with which limits. Autograding runs
one ``nbgrader autograde --student=ID`` process per submission, in a scratch folder that
holds only that submission, with the kernel of :mod:`kdlab.sandbox`; the processes write
their grades into the course's gradebook. A submission that fails (an unreadable file,
a kernel that died, the wall limit) gets a per-student error and no grade, and never
touches another student's grade.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kdlab.grading import sandbox
from kdlab.grading.sandbox import Capabilities, Limits

__all__ = [
    "CollectReport",
    "GradeResult",
    "assignments",
    "autograde",
    "check_gradebook",
    "collect",
    "export_grades",
    "feedback",
    "reference_submission",
    "release",
    "release_leaks",
    "run_nbgrader",
    "selfcheck",
]

COURSE_ID = "kdlab"
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")


# ---------------------------------------------------------------- nbgrader plumbing


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with this Python's ``bin`` and Jupyter data folder first (nbgrader
    runs ``alembic`` and finds kernels by name), then ``extra``; a ``JUPYTER_PATH`` in
    ``extra`` goes in front of the others."""
    extra, env = dict(extra or {}), dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    jupyter = str(Path(sys.prefix) / "share" / "jupyter")
    paths = (extra.pop("JUPYTER_PATH", ""), jupyter, env.get("JUPYTER_PATH", ""))
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in paths if p)
    env.update(extra)
    return env


# nbgrader's command, run by this Python. jsonschema, imported through nbformat, loads
# rfc3987_syntax where it is installed, which builds a grammar at import: 1.8 of the 3 CPU
# seconds that starting nbgrader costs, paid once per graded submission. Without it,
# jsonschema only skips checking the "iri" string format, which notebooks do not use.
NBGRADER_MAIN = (
    "import sys; sys.modules['rfc3987_syntax'] = None; "
    "from nbgrader.apps.nbgraderapp import main; sys.exit(main())"
)


def _nbgrader(*args: str) -> list[str]:
    return [sys.executable, "-c", NBGRADER_MAIN, *args]


def _check_course(course: Path) -> Path:
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ValueError(
            f"{course} is not an nbgrader course root (no nbgrader_config.py): pass the "
            "assignments/ folder of the repository"
        )
    return course


def run_nbgrader(
    course: Path, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` run in ``course``; raise ``RuntimeError`` with its log if it fails."""
    result = subprocess.run(
        _nbgrader(*args),
        cwd=course,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0 or "| ERROR]" in log:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed:\n{log[-3000:]}")
    return result


def assignments(course: Path) -> list[str]:
    """The assignments of the course: the folders of ``source/`` that hold a notebook."""
    source = _check_course(course) / "source"
    if not source.is_dir():
        return []
    return [p.name for p in sorted(source.iterdir()) if p.is_dir() and any(p.glob("*.ipynb"))]


def _notebook_names(course: Path, assignment: str) -> list[str]:
    return sorted(p.stem for p in (course / "source" / assignment).glob("*.ipynb"))


def _pick(course: Path, names: list[str] | None) -> list[str]:
    known = assignments(course)
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ValueError(f"unknown assignments {unknown}: the course has {known}")
    return list(names) if names else known


# ---------------------------------------------------------------- release


def _source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _regions(source: str, begin: str, end: str, inside: bool) -> list[str]:
    """The lines between ``begin`` and ``end`` markers (``inside``) or outside them."""
    out, current = [], False
    for line in source.split("\n"):
        if begin in line:
            current = True
        elif end in line:
            current = False
        elif current == inside:
            out.append(line.strip())
    return out


def release_leaks(source_notebooks: list[Path], released_files: list[Path]) -> list[str]:
    """What the released files give away: nbgrader markers, solution lines (longer than 3
    characters) and hidden-test lines (longer than 12 characters, unless the source also
    shows them outside its hidden tests, as an assert message shared with a visible test)."""
    cells = [_source_of(c) for nb in source_notebooks for c in json.loads(nb.read_text())["cells"]]
    solution = {s for c in cells for s in _regions(c, BEGIN_SOLUTION, END_SOLUTION, True)}
    shown = {s for c in cells for s in _regions(c, BEGIN_HIDDEN, END_HIDDEN, False)}
    hidden = {s for c in cells for s in _regions(c, BEGIN_HIDDEN, END_HIDDEN, True)} - shown
    leaks = []
    for path in released_files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join(_source_of(c) for c in json.loads(text)["cells"])
        lines = {line.strip() for line in text.split("\n")}
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
            if marker in text:
                leaks.append(f"{path.name}: marker {marker!r}")
        leaks += [
            f"{path.name}: solution line {s!r}" for s in sorted(solution & lines) if len(s) > 3
        ]
        leaks += [
            f"{path.name}: hidden-test line {s!r}" for s in sorted(hidden & lines) if len(s) > 12
        ]
    return leaks


def release(course: Path, names: list[str] | None = None) -> dict[str, list[str]]:
    """``nbgrader generate_assignment`` for each assignment, then the leaks of each release
    (an empty list when the release is clean)."""
    course = _check_course(course)
    out = {}
    for name in _pick(course, names):
        run_nbgrader(course, "generate_assignment", name, "--force")
        sources = sorted((course / "source" / name).glob("*.ipynb"))
        released = [p for p in sorted((course / "release" / name).rglob("*")) if p.is_file()]
        out[name] = release_leaks(sources, released)
    return out


# ---------------------------------------------------------------- collect


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
    course, source = _check_course(course), Path(source)
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
        notebooks = _notebook_names(course, assignment)
        if len(notebooks) != 1:
            report.rejected.append((name, f"{assignment} has {len(notebooks)} notebooks, not 1"))
            continue
        dest = course / "submitted" / student / assignment / f"{notebooks[0]}.ipynb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(read())
        report.collected.append((student, assignment))
    return report


# ---------------------------------------------------------------- autograde


@dataclass
class GradeResult:
    """The outcome for one submission: a grade, or an error that says why there is none."""

    student: str
    assignment: str
    score: float | None
    max_score: float | None
    error: str = ""
    seconds: float = 0.0


def _gradebook(course: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID)


def _grade_ids(course: Path, assignment: str, notebook: str) -> set[str]:
    with _gradebook(course) as gb:
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
    ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
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
        return _grade_in_slot(course, assignment, student, limits, caps, batch, cache, slot)
    finally:
        slots.put(slot)


def _grade_in_slot(
    course: Path,
    assignment: str,
    student: str,
    limits: Limits,
    caps: Capabilities,
    batch: Path,
    cache: Path | None,
    slot: int,
) -> GradeResult:
    start = time.perf_counter()
    notebook = _notebook_names(course, assignment)[0]
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
    env = {"KDLAB_CACHE": str(home / "cache"), "TMPDIR": str(home / "tmp")}
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
        _nbgrader(*args),
        cwd=root,
        env=_env({"JUPYTER_PATH": str(scratch / "jupyter"), "JUPYTER_RUNTIME_DIR": str(private)}),
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
    with _gradebook(course) as gb:
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
    course = _check_course(course)
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
    for name in _pick(course, names):
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
    course = _check_course(course)
    problems = []
    with sqlite3.connect(course / "gradebook.db") as db:
        status = db.execute("PRAGMA integrity_check").fetchone()[0]
    if status != "ok":
        return [f"SQLite integrity check: {status}"]
    with _gradebook(course) as gb:
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


# ---------------------------------------------------------------- feedback and grades


def feedback(course: Path, names: list[str] | None = None) -> None:
    """``nbgrader generate_feedback`` for each assignment: one HTML page per student."""
    course = _check_course(course)
    for name in _pick(course, names):
        if any((course / "autograded").glob(f"*/{name}")):
            run_nbgrader(course, "generate_feedback", name, "--force")


def export_grades(course: Path, path: Path) -> None:
    """``nbgrader export``: the gradebook as a CSV file at ``path``."""
    run_nbgrader(_check_course(course), "export", f"--to={Path(path).resolve()}")


# ---------------------------------------------------------------- self-check


def reference_submission(release_nb: dict, source_nb: dict) -> dict:
    """The release with each solution cell filled in from the source, markers removed:
    what a student who wrote the reference solution hands in."""
    solutions = {}
    for cell in source_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            lines = _source_of(cell).split("\n")
            marker = (BEGIN_SOLUTION, END_SOLUTION)
            solutions[meta["grade_id"]] = "\n".join(
                line for line in lines if line.strip() not in marker
            )
    nb = json.loads(json.dumps(release_nb))
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
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
    course = _check_course(course)
    chosen = _pick(course, names)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kdlab-selfcheck-") as tmp:
        copy = Path(tmp) / "course"
        copy.mkdir()
        shutil.copy2(course / "nbgrader_config.py", copy / "nbgrader_config.py")
        for name in chosen:
            shutil.copytree(
                course / "source" / name,
                copy / "source" / name,
                ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
            )
        leaks = release(copy, chosen)
        for name in chosen:
            nb = _notebook_names(copy, name)[0]
            rel = json.loads((copy / "release" / name / f"{nb}.ipynb").read_text())
            src = json.loads((copy / "source" / name / f"{nb}.ipynb").read_text())
            for student, content in (
                ("reference", reference_submission(rel, src)),
                ("release", rel),
            ):
                dest = copy / "submitted" / student / name / f"{nb}.ipynb"
                dest.parent.mkdir(parents=True)
                dest.write_text(json.dumps(content, indent=1))
        results = autograde(copy, chosen, workers=workers, limits=limits, caps=caps)
        for r in results:
            want = r.max_score if r.student == "reference" else 0.0
            verdict = "ok" if not r.error and r.score == want else (r.error or f"expected {want}")
            if leaks[r.assignment]:
                verdict = f"release leaks: {leaks[r.assignment][:3]}"
            rows.append((r.assignment, r.student, r.score, r.max_score, verdict))
    return rows
