"""Progress where a person waits, silence where nobody does: the rule of
kdlab.runtime.progress_default, the training loop's bar, the defaults of the recipes, and
autograde's line per finished submission (with a stand-in for the grading itself)."""

from __future__ import annotations

import inspect
import io
import json
import re
import time

import pytest
import torch

from kdlab import grading, runtime
from kdlab.data import batches
from kdlab.distill import Distiller
from kdlab.distill import bert as bert_training
from kdlab.grading import autograding, slot
from kdlab.grading.grades import GradeResult
from kdlab.models import StudentMLP
from kdlab.recipes import beyond_logits, distilbert, mnist_family, patient_teacher, pipeline
from kdlab.recipes import segmentation as segmentation_recipes


@pytest.fixture
def full_mode(monkeypatch):
    monkeypatch.delenv("KDLAB_FAST", raising=False)
    monkeypatch.delenv("KDLAB_PROGRESS", raising=False)


@pytest.fixture
def fast_mode(monkeypatch):
    monkeypatch.setenv("KDLAB_FAST", "1")
    monkeypatch.delenv("KDLAB_PROGRESS", raising=False)


def test_progress_is_on_in_full_mode_and_off_in_fast_mode(monkeypatch):
    monkeypatch.delenv("KDLAB_PROGRESS", raising=False)
    monkeypatch.delenv("KDLAB_FAST", raising=False)
    assert runtime.progress_default() is True
    monkeypatch.setenv("KDLAB_FAST", "1")
    assert runtime.progress_default(None) is False


@pytest.mark.parametrize("fast", ["", "1"])
def test_kdlab_progress_decides_where_it_is_set(monkeypatch, fast):
    monkeypatch.setenv("KDLAB_FAST", fast)
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    assert runtime.progress_default() is False
    monkeypatch.setenv("KDLAB_PROGRESS", "1")
    assert runtime.progress_default() is True
    monkeypatch.setenv("KDLAB_PROGRESS", "maybe")  # not a switch: the mode decides
    assert runtime.progress_default() is (fast != "1")


@pytest.mark.parametrize("progress", [True, False])
def test_an_explicit_choice_wins_over_mode_and_environment(monkeypatch, progress):
    monkeypatch.setenv("KDLAB_FAST", "" if progress is False else "1")
    monkeypatch.setenv("KDLAB_PROGRESS", "1" if progress is False else "0")
    assert runtime.progress_default(progress) is progress


def test_a_bar_that_is_off_writes_nothing_and_yields_everything(fast_mode, capsys):
    assert list(runtime.progress_bar(range(5), desc="nothing")) == list(range(5))
    runtime.progress_print("a line")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == "a line\n"


def _fit(epochs: int = 2, **kwargs):
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    distiller = Distiller(StudentMLP(), device="cpu")
    return distiller.fit(batches(x, y, batch_size=16), epochs, **kwargs)


def test_fit_shows_one_bar_over_the_run_in_full_mode(full_mode, capsys):
    history = _fit(2)
    captured = capsys.readouterr()
    assert len(history) == 2
    assert "epoch 1/2" in captured.err and "/8" in captured.err  # 2 epochs of 4 steps
    assert captured.out == ""


def test_fit_is_silent_in_fast_mode_and_with_kdlab_progress_0(fast_mode, monkeypatch, capsys):
    _fit(1)
    assert capsys.readouterr() == ("", "")
    monkeypatch.delenv("KDLAB_FAST")
    monkeypatch.setenv("KDLAB_PROGRESS", "0")
    _fit(1)
    assert capsys.readouterr() == ("", "")
    _fit(1, progress=True)  # asked for: shown whatever the environment says
    assert "epoch 1/1" in capsys.readouterr().err


def test_fit_counts_steps_of_data_without_len(full_mode, capsys):
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    data = (b for b in batches(x, y, batch_size=16))
    Distiller(StudentMLP(), device="cpu").fit(data, 1)
    assert "epoch 1/1" in capsys.readouterr().err


TRAINING_FUNCTIONS = [
    mnist_family.trained_teacher,
    mnist_family.train_student,
    pipeline.distilled_student,
    pipeline.finetune_distilled,
    patient_teacher.transfer_setup,
    patient_teacher.distil_with_views,
    segmentation_recipes.trained_teacher,
    segmentation_recipes.train_student,
    distilbert.pretrained_encoder,
    distilbert.bert_teacher,
    beyond_logits.run_method,
    bert_training.pretrain_mlm,
    bert_training.fine_tune,
    bert_training.distil,
    Distiller.fit,
]


@pytest.mark.parametrize("function", TRAINING_FUNCTIONS, ids=lambda f: f.__qualname__)
def test_every_training_function_leaves_progress_to_the_rule(function):
    params = inspect.signature(function).parameters
    switches = [params[name] for name in ("progress", "verbose") if name in params]
    assert switches, f"{function.__qualname__} has no progress or verbose parameter"
    for param in switches:
        assert param.default is None, (
            f"{function.__qualname__}({param.name}={param.default!r}): default to None, "
            "so that kdlab.runtime.progress_default decides"
        )


# -- autograde: one line per submission as it finishes --------------------------------------

STUDENTS = {"ada": 0.6, "bob": 0.0, "cy": 0.3}  # seconds each stand-in grading takes


def _course(tmp_path):
    course = tmp_path / "course"
    (course / "source" / "a1").mkdir(parents=True)
    (course / "source" / "a1" / "a1.ipynb").write_text("{}")
    (course / "nbgrader_config.py").write_text("")
    (course / "gradebook.db").write_bytes(b"")
    for student in STUDENTS:
        (course / "submitted" / student / "a1").mkdir(parents=True)
    (tmp_path / "scratch").mkdir()
    return course


def test_autograde_reports_each_submission_as_it_finishes(tmp_path, monkeypatch):
    def grade(course, assignment, student, limits, caps, batch, cache, slot_number):
        time.sleep(STUDENTS[student])
        if student == "cy":
            return GradeResult(student, assignment, None, None, "the kernel died", 0.3)
        return GradeResult(student, assignment, 7.0, 8.0, "", STUDENTS[student])

    monkeypatch.setattr(autograding, "grade_in_slot", grade)
    stream = io.StringIO()
    caps = grading.Capabilities(None, False, False, "test", "test")
    results = grading.autograde(
        _course(tmp_path), workers=3, caps=caps, scratch=tmp_path / "scratch", stream=stream
    )
    assert [r.student for r in results] == ["ada", "bob", "cy"]  # submission order
    lines = stream.getvalue().splitlines()
    assert lines[0] == "grading 3 submission(s), 3 at a time"
    assert [line.split()[1] for line in lines[1:]] == ["1/3", "2/3", "3/3"]
    assert [line.split()[3] for line in lines[1:]] == ["bob:", "cy:", "ada:"]  # finish order
    assert "7/8 points" in lines[1] and "about" in lines[1] and "left" in lines[1]
    assert "ERROR: the kernel died" in lines[2]
    assert re.search(r"all done in \d+ s$", lines[3])


def test_autograde_can_be_quiet(tmp_path, monkeypatch, capsys):
    def grade(course, assignment, student, *args):
        return GradeResult(student, assignment, 1.0, 1.0)

    monkeypatch.setattr(autograding, "grade_in_slot", grade)
    caps = grading.Capabilities(None, False, False, "test", "test")
    results = grading.autograde(
        _course(tmp_path), caps=caps, scratch=tmp_path / "scratch", progress=False
    )
    assert len(results) == 3 and capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "elapsed, done, says",
    [
        (20.0, 1, "about 40 s left"),
        (60.0, 1, "about 2 min left"),
        (7200.0, 1, "about 4 h 00 min left"),
        (30.0, 3, "all done in 30 s"),
    ],
)
def test_progress_line_estimates_the_time_left(elapsed, done, says):
    line = autograding.progress_line(GradeResult("ada", "a1", 8.0, 8.0), done, 3, elapsed)
    assert line.startswith(f"graded {done}/3 a1 ada: 8/8 points") and says in line


def test_the_grading_kernel_runs_without_progress_bars(tmp_path, monkeypatch):
    """The kernel that runs a submission gets KDLAB_PROGRESS=0, so a training loop in a
    grade cell draws no bar, whatever the instructor's environment says."""
    course = _course(tmp_path)
    notebook = course / "submitted" / "ada" / "a1" / "a1.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4}))
    seen = {}

    class Stop(Exception):
        pass

    class Worker:  # the slot's grading process, which builds the kernel from job.spec
        def grade(self, job):
            seen.update(job.spec["env"])
            raise Stop

    monkeypatch.setattr(slot, "_grade_ids", lambda *args: {"x"})
    monkeypatch.setattr(slot, "_precheck", lambda *args: "")
    monkeypatch.setattr(slot, "worker", lambda slot_number: Worker())
    monkeypatch.setenv("KDLAB_PROGRESS", "1")
    caps = grading.Capabilities(None, False, False, "test", "test")
    batch = tmp_path / "batch"
    batch.mkdir()
    with pytest.raises(Stop):
        slot.grade_in_slot(course, "a1", "ada", grading.Limits(), caps, batch, None, 0)
    assert seen["KDLAB_PROGRESS"] == "0"
