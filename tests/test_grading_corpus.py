"""The robustness corpus (tests/fixtures/grading_corpus.py), graded in one sandboxed batch.

A tiny plain-Python assignment is released in a temporary course; every bad submission of
the corpus is collected beside two good ones and graded with 2 workers and short limits.
Each must end with its expected score per test cell or its per-student error, the batch
must finish, the good submissions keep full marks, and the gradebook passes its checks. A
kernel that dies in a cell (exit, segfault, kill, a process flood) costs only the tests
that depend on that cell. Then one more submission, graded alone, runs past the wall limit
per submission.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("nbgrader")

from fixtures.grading_corpus import (  # noqa: E402
    ASSIGNMENT,
    FULL,
    LOOP,
    POINTS,
    Case,
    cases,
    with_code,
    write_assignment,
)
from nbgrader_helpers import COURSE_ROOT, read_notebook, scores  # noqa: E402

from kdlab import grading  # noqa: E402

pytestmark = pytest.mark.nbgrader

# Memory for a kernel forked from the warm kernel server (torch imported: about 800 MB of
# private mappings) and a little more; 64 processes and threads for the sandbox user.
LIMITS = grading.Limits(cell_seconds=10, notebook_seconds=90, memory_mb=2048, processes=64)
# Two answers that loop for a cell limit each: past the wall limit whatever the start-up.
# Too little memory for a warm kernel: this one starts cold, through the launcher.
WALL = grading.Limits(cell_seconds=5, notebook_seconds=6, memory_mb=256)
NOTEBOOK = f"{ASSIGNMENT}.ipynb"


@dataclass
class Graded:
    course: Path
    corpus: dict[str, Case]
    report: grading.CollectReport
    results: dict[str, grading.GradeResult]
    caps: grading.Capabilities
    before: dict[Path, bytes]  # files the kernels must not change, with their content
    reached: list  # connections that reached the listener on 127.0.0.1
    wall: grading.GradeResult  # the submission stopped at the wall limit
    scores_before_wall: dict[str, dict[str, float]]


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    # A connection that reaches the listener waits in its backlog: accept() finds it later.
    listener = socket.create_server(("127.0.0.1", 0))
    course = tmp_path_factory.mktemp("corpus") / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_bytes((COURSE_ROOT / "nbgrader_config.py").read_bytes())
    source_path = write_assignment(course)
    assert grading.release(course, [ASSIGNMENT]) == {ASSIGNMENT: []}
    release = read_notebook(course / "release" / ASSIGNMENT / NOTEBOOK)
    reference = grading.reference_submission(release, read_notebook(source_path))
    other = course / "submitted" / "good-1" / ASSIGNMENT / NOTEBOOK
    paths = [str(course / "gradebook.db"), str(source_path), str(other), "../../../gradebook.db"]
    addresses = [listener.getsockname()[:2], ("1.1.1.1", 53)]
    corpus = {c.student: c for c in cases(reference, release, paths, addresses)}
    drop = tmp_path_factory.mktemp("dropbox")
    for case in corpus.values():
        (drop / f"{case.student}_{ASSIGNMENT}.ipynb").write_bytes(case.content)
    (drop / "no-assignment-name.ipynb").write_text("{}")
    report = grading.collect(course, drop)
    before = {p: p.read_bytes() for p in (source_path, other)}
    caps = grading.probe()
    results = grading.autograde(course, [ASSIGNMENT], workers=2, limits=LIMITS, caps=caps)
    listener.setblocking(False)
    try:
        reached = [listener.accept()[1]]
    except BlockingIOError:
        reached = []
    listener.close()

    scores_before_wall = scores(course, ASSIGNMENT, ASSIGNMENT)
    slow = with_code(with_code(reference, "add", LOOP, "before"), "mean", LOOP, "before")
    path = course / "submitted" / "wall-limit" / ASSIGNMENT / NOTEBOOK
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(slow))
    (wall,) = grading.autograde(
        course, [ASSIGNMENT], students=["wall-limit"], limits=WALL, caps=caps
    )
    return Graded(
        course,
        corpus,
        report,
        {r.student: r for r in results},
        caps,
        before,
        reached,
        wall,
        scores_before_wall,
    )


def test_collect_takes_every_submission_and_reports_a_bad_name(graded):
    assert sorted(s for s, _ in graded.report.collected) == sorted(graded.corpus)
    assert [name for name, _ in graded.report.rejected] == ["no-assignment-name.ipynb"]


def test_every_submission_ends_with_its_grade_or_its_error(graded):
    assert sorted(graded.results) == sorted(graded.corpus), "a submission was lost"
    recorded = scores(graded.course, ASSIGNMENT, ASSIGNMENT)
    wrong = {}
    for student, case in graded.corpus.items():
        result, want = graded.results[student], case.expected()
        if want is None:
            if case.error not in result.error or student in recorded:
                wrong[student] = (case.error, result.error, recorded.get(student))
        elif result.error or recorded.get(student) != want or result.score != sum(want.values()):
            wrong[student] = (want, result.error, recorded.get(student))
    assert not wrong, wrong


def test_good_submissions_keep_full_marks(graded):
    good = [s for s in graded.corpus if s.startswith("good-")]
    assert len(good) == 2
    recorded = scores(graded.course, ASSIGNMENT, ASSIGNMENT)
    for student in good:
        result = graded.results[student]
        assert (result.score, result.max_score) == (FULL, FULL)
        assert recorded[student] == {g: float(p) for g, p in POINTS.items()}


def test_wall_limit_stops_a_submission_and_leaves_the_others(graded):
    assert "wall limit of 6 s" in graded.wall.error
    assert graded.wall.seconds < 60, "the kernel outlived the wall limit"
    assert scores(graded.course, ASSIGNMENT, ASSIGNMENT) == graded.scores_before_wall


def test_gradebook_is_intact_and_holds_only_graded_submissions(graded):
    assert grading.check_gradebook(graded.course) == []
    with sqlite3.connect(graded.course / "gradebook.db") as db:
        students = {row[0] for row in db.execute("SELECT student_id FROM submitted_assignment")}
    assert students == {s for s, r in graded.results.items() if not r.error}
    for path, content in graded.before.items():
        assert path.read_bytes() == content, f"{path} changed"


def test_each_autograded_notebook_is_its_own_students(graded):
    autograded = graded.course / "autograded"
    for student, result in [*graded.results.items(), ("wall-limit", graded.wall)]:
        assert (autograded / student / ASSIGNMENT / NOTEBOOK).is_file() == (not result.error)
    assert "sys.exit(3)" in (autograded / "sys-exit" / ASSIGNMENT / NOTEBOOK).read_text()
    assert "sys.exit" not in (autograded / "good-2" / ASSIGNMENT / NOTEBOOK).read_text()


def test_sandbox_blocks_files_and_network(graded):
    if graded.caps.warnings():
        pytest.skip("sandbox incomplete here: " + "; ".join(graded.caps.warnings()))
    path = graded.course / "autograded" / "probe-files-network" / ASSIGNMENT / NOTEBOOK
    outputs = [o for c in read_notebook(path)["cells"] for o in c.get("outputs", [])]
    text = "".join("".join(o.get("text", "")) for o in outputs)
    assert "LEAK" not in text, text
    assert text.count("blocked rb") == text.count("blocked ab") == 4, text
    assert text.count("blocked network") == 2, text
    assert graded.reached == [], "a kernel reached the listener on 127.0.0.1"
    uid = int(re.search(r"^uid (\d+)$", text, re.M).group(1))
    assert uid in (graded.caps.uid, graded.caps.uid + 1), uid  # one per slot, 2 slots
    assert "blocked working folder" in text and "wrote to the temporary folder" in text


def test_limits_act_inside_the_cell(graded):
    def errors(student: str) -> set[str]:
        path = graded.course / "autograded" / student / ASSIGNMENT / NOTEBOOK
        outputs = [o for c in read_notebook(path)["cells"] for o in c.get("outputs", [])]
        return {o["ename"] for o in outputs if o["output_type"] == "error"}

    assert "MemoryError" in errors("memory-bomb")
    assert "CellTimeoutError" in errors("loop-in-answer")
    assert "CellTimeoutError" in errors("loop-in-function")


def _outputs(graded: Graded, student: str) -> dict[str, list[dict]]:
    path = graded.course / "autograded" / student / ASSIGNMENT / NOTEBOOK
    cells = read_notebook(path)["cells"]
    return {c["metadata"]["nbgrader"]["grade_id"]: c.get("outputs", []) for c in cells}


def test_a_dead_kernel_fails_its_cell_and_grading_goes_on(graded):
    for student, dead in [("os-exit", "add"), ("segfault", "add"), ("exit-in-test", "test_mean")]:
        outputs = _outputs(graded, student)
        enames = {o["ename"] for o in outputs[dead] if o["output_type"] == "error"}
        assert enames == {"DeadKernelError"}, (student, outputs[dead])
    # The fresh kernel ran the cells above again, but not the dead one: add is undefined.
    add_errors = [o for o in _outputs(graded, "os-exit")["test_add"] if o["output_type"] == "error"]
    assert [o["ename"] for o in add_errors] == ["NameError"]


def test_child_processes_work_within_the_process_limit(graded):
    text = "".join("".join(o.get("text", "")) for o in _outputs(graded, "child-processes")["add"])
    assert "children worked" in text, _outputs(graded, "child-processes")["add"]
