"""kdlab.cli and its course runner: a tiny course of two notebooks run in real kernels."""

import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from kdlab.cli import main
from kdlab.cli.course import NotebookRun, kernel_config, run_course, summary_table


def write_notebook(path, *cells):
    nb = new_notebook(cells=list(cells))
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Py"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def course_run(tmp_path_factory):
    """One run of a course whose first notebook fails and whose second reports results."""
    course = tmp_path_factory.mktemp("course")
    parameters = new_code_cell("FAST = False")
    parameters.metadata["tags"] = ["parameters"]
    write_notebook(
        course / "01_broken.ipynb",
        new_markdown_cell("# A notebook that fails"),
        new_code_cell('raise RuntimeError("boom in the first notebook")'),
        new_code_cell("from kdlab.report import key_results\nkey_results({'never': 1})"),
    )
    write_notebook(
        course / "02_fine.ipynb",
        parameters,
        new_code_cell(
            "from kdlab.report import key_results\n"
            "key_results({'answer': 42})\n"
            "key_results({'fast': FAST, 'ratio': 0.125})"
        ),
    )
    write_notebook(course / "scratch.ipynb", new_code_cell("raise SystemExit('not a lesson')"))
    build = tmp_path_factory.mktemp("build")
    runs = run_course(course, build, fast=True, timeout=120)
    return runs, build


def test_every_numbered_notebook_runs_in_order(course_run):
    runs, build = course_run
    assert [r.name for r in runs] == ["01_broken", "02_fine"]
    assert sorted(p.name for p in build.glob("*.ipynb")) == ["01_broken.ipynb", "02_fine.ipynb"]


def test_failure_is_recorded_and_the_run_goes_on(course_run):
    broken, fine = course_run[0]
    assert broken.status == "FAILED" and "RuntimeError" in broken.error
    assert "boom in the first notebook" in broken.error and broken.results == {}
    assert fine.status == "ok" and fine.error == ""


def test_key_results_are_collected_with_the_fast_parameter(course_run):
    fine = course_run[0][1]
    assert fine.results == {"answer": 42, "fast": True, "ratio": 0.125}


def test_summary_files_are_written(course_run):
    runs, build = course_run
    markdown = (build / "summary.md").read_text()
    assert "fast mode" in markdown and "1/2 ok" in markdown
    assert "| 01_broken | FAILED |" in markdown and "| 02_fine | ok |" in markdown
    assert "answer = 42" in markdown and "ratio = 0.125" in markdown
    saved = json.loads((build / "summary.json").read_text())
    assert [(r["name"], r["status"]) for r in saved] == [(r.name, r.status) for r in runs]
    assert saved[1]["results"] == {"answer": 42, "fast": True, "ratio": 0.125}


def test_summary_table_without_kernels():
    runs = [
        NotebookRun("00_a", "ok", 1.4, {"acc": 0.91234, "n": 1200}),
        NotebookRun("01_b", "FAILED", 2.6, {}, "ValueError: bad"),
    ]
    table = summary_table(runs)
    assert "full mode" in table and "acc = 0.9123; n = 1,200" in table
    assert "| 01_b | FAILED | 3 | ValueError: bad |" in table
    assert "Total: 4 s, 1/2 ok" in table


def test_no_matching_notebooks_raises(tmp_path):
    write_notebook(tmp_path / "01_x.ipynb", new_code_cell("1"))
    with pytest.raises(FileNotFoundError, match="no notebooks"):
        run_course(tmp_path, tmp_path / "build", only=["09"])


def test_cli_check_returns_zero(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for section in ("software", "compute", "data", "settings"):
        assert f"{section}\n" in out
    assert "torch" in out and "fast mode (KDLAB_FAST)" in out


def test_cli_course_missing_folder(tmp_path, capsys):
    assert main(["course", "--course-dir", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_save_results_writes_the_json_before_the_report_can_fail(tmp_path, capsys):
    import json

    import pytest

    from kdlab.report import save_results

    result = {"speedup": 2.5, "rows": [1, 2]}
    path = save_results(result, tmp_path / "out" / "r.json", lambda r: f"speed-up {r['speedup']}x")
    assert json.loads(path.read_text()) == result
    assert "speed-up 2.5x" in capsys.readouterr().out

    def broken(_):
        raise KeyError("column")

    with pytest.raises(KeyError):
        save_results({"kept": 1}, tmp_path / "b.json", broken)
    assert json.loads((tmp_path / "b.json").read_text()) == {"kept": 1}


@pytest.mark.skipif(os.name != "posix", reason="IPC sockets need a POSIX system")
def test_kernel_config_uses_ipc_sockets_in_the_given_folder(tmp_path):
    config = kernel_config(tmp_path)
    assert config.KernelManager.transport == "ipc"
    assert config.KernelManager.ip == str(tmp_path.resolve() / "kernel")


def test_the_kernel_does_not_warn_about_unencrypted_tcp(tmp_path, capfd):
    """ipykernel logs 'Kernel is running over TCP without encryption' to the stderr the runner
    passes on to it; the runner gives the kernel IPC sockets (or CurveZMQ keys) instead."""
    course = tmp_path / "course"
    course.mkdir()
    write_notebook(
        course / "01_where.ipynb",
        new_code_cell(
            "from ipykernel.kernelapp import IPKernelApp\nprint(IPKernelApp.instance().transport)"
        ),
    )
    (run,) = run_course(course, tmp_path / "build", timeout=120)
    assert run.status == "ok", run.error
    err = capfd.readouterr().err
    assert "without encryption" not in err, err
    executed = nbformat.read(tmp_path / "build" / "01_where.ipynb", as_version=4)
    transport = executed.cells[-1].outputs[0]["text"].strip()
    assert transport == ("ipc" if os.name == "posix" else "tcp")
    assert not list(course.glob("kernel*")), "IPC socket files left in the course folder"
