"""The cluster path: submissions graded on a Dask LocalCluster of 2 worker processes give
the grades that grading on this machine gives, and killing a worker in the middle of the
batch loses no grade and records none twice (Dask reruns the lost worker's tasks).

The tiny plain-Python assignment of the grading corpus keeps it fast.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import threading
import time

import pytest

pytest.importorskip("nbgrader")
distributed = pytest.importorskip("distributed")

from fixtures.grading_corpus import ASSIGNMENT, with_code  # noqa: E402
from fixtures.small_course import NOTEBOOK, released_course, submit_all  # noqa: E402
from nbgrader_helpers import scores  # noqa: E402

from kdlab import grading  # noqa: E402
from kdlab.grading.cluster import autograde_on_cluster  # noqa: E402

pytestmark = pytest.mark.nbgrader

LIMITS = grading.Limits(cell_seconds=20, notebook_seconds=120, memory_mb=512)
MEAN_OF_ENDS = "def mean(values):\n    return (values[0] + values[-1]) / 2"
WRONG_ADD = "def add(a, b):\n    return a - b"


def _course(root):
    course, release, good = released_course(root / "course")
    submit_all(
        course,
        {
            "good-1": good,
            "good-2": good,
            "mean-of-ends": with_code(good, "mean", MEAN_OF_ENDS, "after"),
            "wrong-add": with_code(good, "add", WRONG_ADD, "after"),
            "broken-json": "{not json",
        },
    )
    return course


def _kill_a_busy_worker(address: str, killed: list) -> None:
    """Kill (SIGKILL) the process of a worker while it grades a submission."""
    with distributed.Client(address) as client:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            if busy:
                time.sleep(1.0)  # into the grading of that submission
                if client.processing().get(busy[0]):
                    pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(busy[0])
                    return
            time.sleep(0.2)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    here = _course(tmp_path_factory.mktemp("local"))
    there = tmp_path_factory.mktemp("cluster") / "course"
    shutil.copytree(here, there)
    local = grading.autograde(here, [ASSIGNMENT], workers=2, limits=LIMITS, progress=False)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        killed: list = []
        address = cluster.scheduler_address
        killer = threading.Thread(target=_kill_a_busy_worker, args=(address, killed))
        killer.start()
        remote = autograde_on_cluster(
            there, cluster.scheduler_address, [ASSIGNMENT], limits=LIMITS, progress=False
        )
        killer.join()
    return here, there, local, remote, killed


def test_cluster_grades_equal_local_grades(graded):
    here, there, local, remote, _ = graded
    assert scores(there, ASSIGNMENT, ASSIGNMENT) == scores(here, ASSIGNMENT, ASSIGNMENT)
    outcome = {r.student: (r.score, r.max_score, bool(r.error)) for r in local}
    assert {r.student: (r.score, r.max_score, bool(r.error)) for r in remote} == outcome
    assert outcome["good-1"] == (5.0, 5.0, False) and outcome["mean-of-ends"][0] == 2.0
    assert outcome["broken-json"][2], "a broken notebook must give an error, not a grade"
    for r in remote:
        graded_nb = there / "autograded" / r.student / ASSIGNMENT / NOTEBOOK
        assert graded_nb.is_file() == (not r.error)
    assert grading.check_gradebook(there) == []


def test_killing_a_worker_loses_no_grade_and_records_none_twice(graded):
    _, there, local, remote, killed = graded
    assert killed, "no worker was busy: the kill did not happen mid-batch"
    assert sorted(r.student for r in remote) == sorted(r.student for r in local)
    assert [r.error for r in remote if r.error and "worker" in r.error] == []
    with sqlite3.connect(there / "gradebook.db") as db:
        rows = db.execute("SELECT student_id FROM submitted_assignment").fetchall()
    students = [row[0] for row in rows]
    assert sorted(students) == sorted(r.student for r in remote if not r.error)
    assert len(students) == len(set(students))
