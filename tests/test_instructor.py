"""Fast checks of the instructor's tools that need no grading run: names, leaks, limits,
the sandbox probe and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile

import pytest

from kdlab import cli, grading
from kdlab.grading.collecting import _parse_name
from kdlab.grading.slot import _drop_duplicate_ids, _error_from_log
from kdlab.grading.warm_worker import kill_user

KNOWN = ["a1_soft_targets", "a2_quantization_pruning"]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("ada_a1_soft_targets.ipynb", ("ada", "a1_soft_targets")),
        ("j.doe-2_a2_quantization_pruning.ipynb", ("j.doe-2", "a2_quantization_pruning")),
    ],
)
def test_parse_name_good(name, expected):
    assert _parse_name(name, KNOWN) == expected


@pytest.mark.parametrize(
    "name, says",
    [
        ("ada_a1_soft_targets.py", "not a notebook"),
        ("ada_a9_unknown.ipynb", "<student>_<assignment>"),
        ("a1_soft_targets.ipynb", "<student>_<assignment>"),
        ("ada lovelace_a1_soft_targets.ipynb", "bad student id"),
    ],
)
def test_parse_name_bad(name, says):
    assert says in _parse_name(name, KNOWN)


def _course(tmp_path):
    tmp_path.mkdir(parents=True)
    (tmp_path / "nbgrader_config.py").write_text("")
    for name in KNOWN:
        (tmp_path / "source" / name).mkdir(parents=True)
        (tmp_path / "source" / name / f"{name}.ipynb").write_text("{}")
    return tmp_path


def test_collect_from_zip_reports_every_bad_file(tmp_path):
    course = _course(tmp_path / "course")
    archive = tmp_path / "subs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ada_a1_soft_targets.ipynb", "A")
        z.writestr("dl/bob_a2_quantization_pruning.ipynb", "B")
        z.writestr("notes.txt", "C")
    report = grading.collect(course, archive)
    assert sorted(report.collected) == [
        ("ada", "a1_soft_targets"),
        ("bob", "a2_quantization_pruning"),
    ]
    assert [name for name, _ in report.rejected] == ["notes.txt"]
    path = (
        course / "submitted" / "bob" / "a2_quantization_pruning" / "a2_quantization_pruning.ipynb"
    )
    assert path.read_text() == "B"


def test_release_leaks_finds_solution_and_hidden_lines(tmp_path):
    cell = (
        "x = 1\n### BEGIN SOLUTION\nanswer = compute()\n### END SOLUTION\n"
        "### BEGIN HIDDEN TESTS\nassert secret_check(answer)\n### END HIDDEN TESTS"
    )
    source = tmp_path / "s.ipynb"
    source.write_text(json.dumps({"cells": [{"source": cell}]}))
    clean, leaky = tmp_path / "clean.ipynb", tmp_path / "leaky.ipynb"
    clean.write_text(json.dumps({"cells": [{"source": "x = 1\n# YOUR CODE HERE"}]}))
    leaky.write_text(
        json.dumps({"cells": [{"source": "answer = compute()\nassert secret_check(answer)"}]})
    )
    assert grading.release_leaks([source], [clean]) == []
    found = grading.release_leaks([source], [leaky])
    assert any("solution line" in f for f in found) and any("hidden-test" in f for f in found)


@pytest.mark.parametrize("field", ["cell_seconds", "memory_mb", "processes"])
def test_limits_reject_non_positive(field):
    with pytest.raises(ValueError, match=field):
        grading.Limits(**{field: 0})


def test_limits_reject_notebook_shorter_than_cell():
    with pytest.raises(ValueError, match="notebook_seconds"):
        grading.Limits(cell_seconds=60, notebook_seconds=30)


def test_capabilities_warn_for_each_missing_mechanism():
    none = grading.Capabilities(None, False, False, "EPERM", "not root")
    assert len(none.warnings()) == 3
    full = grading.Capabilities(61000, True, True)
    assert full.warnings() == [] and len(full.enforced()) == 6


def test_kernel_spec_applies_what_the_probe_found(tmp_path):
    caps = grading.Capabilities(61000, True, False)
    spec = grading.kernel_spec(
        grading.Limits(), caps, home=tmp_path, pidfile=tmp_path / "p", hide=[tmp_path]
    )
    argv = spec["argv"]
    assert "--no-network" in argv and "--uid" in argv and "--hide" not in argv
    assert argv[-2:] == ["-f", "{connection_file}"]


def test_kernel_spec_with_a_server_relays_to_it(tmp_path):
    caps = grading.Capabilities(61000, True, True)
    server = tmp_path / "server"
    spec = grading.kernel_spec(
        grading.Limits(), caps, home=tmp_path, pidfile=tmp_path / "p", hide=[], server=server
    )
    argv = spec["argv"]
    assert argv[3:5] == ["relay", str(server)] and "launch" not in argv
    assert "--uid" in argv and argv[-2:] == ["-f", "{connection_file}"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to a sandbox user needs root")
def test_kill_user_ends_every_process_of_the_sandbox_user():
    uid = 61090  # a sandbox user id no grading slot uses here
    sleepers = [
        subprocess.Popen(["sleep", "60"], user=uid, group=uid, start_new_session=True)
        for _ in range(3)
    ]
    kill_user(uid)
    assert [p.wait(timeout=10) for p in sleepers] == [-9, -9, -9]


def test_probe_runs_and_explains():
    caps = grading.probe()
    assert isinstance(caps.network_namespace, bool)
    assert caps.uid is not None or caps.reason_user


def test_cli_rejects_a_folder_that_is_no_course(tmp_path):
    with pytest.raises(ValueError, match="nbgrader course root"):
        cli.main(["release", "--course", str(tmp_path)])


def test_duplicate_grade_ids_keep_only_the_last_copy(tmp_path):
    def cell(source, nbgrader=None):
        return {"cell_type": "code", "source": source, "metadata": {"nbgrader": nbgrader}}

    first, last = cell("first", {"grade_id": "t", "grade": True}), cell("last", {"grade_id": "t"})
    cells = [first, last, cell("no id", {"grade": False}), cell("other", {"grade_id": "u"})]
    cells.append({"cell_type": "markdown", "source": "text", "metadata": {}})
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    _drop_duplicate_ids(path)
    kept = [
        (c["source"], c["metadata"].get("nbgrader")) for c in json.loads(path.read_text())["cells"]
    ]
    assert kept == [
        ("first", None),
        ("last", {"grade_id": "t"}),
        ("no id", None),
        ("other", {"grade_id": "u"}),
        ("text", None),
    ]


@pytest.mark.parametrize(
    "log, says",
    [
        ("nbclient.exceptions.DeadKernelError: Kernel died", "the kernel died"),
        ("[AutogradeApp | ERROR] Kernel died while waiting for execute reply.", "the kernel died"),
        ("nbclient.exceptions.CellTimeoutError: A cell timed out", "did not stop when interrupted"),
        ("KeyError: 'grade_id'", "nbgrader failed: KeyError"),
    ],
)
def test_error_from_log_names_the_cause(log, says):
    assert says in _error_from_log(log)
