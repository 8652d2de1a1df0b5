"""Helpers for the nbgrader round trips: a private copy of the course root, submissions
made from the release and the source, one autograde call for all of them, and the scores
read back from the gradebook.

Everything runs in a temporary folder; the repository's ``assignments/`` is only read.
nbgrader is run from the virtual environment of the running Python (it calls ``alembic``
and starts kernels by name, so that environment's ``bin`` and ``share/jupyter`` go first).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COURSE_ROOT = REPO / "assignments"
COURSE_ID = "kdlab"

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def nbgrader_env() -> dict[str, str]:
    """The current environment with this Python's ``bin`` and Jupyter data folder first."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    jupyter = str(Path(sys.prefix) / "share" / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (jupyter, env.get("JUPYTER_PATH")) if p)
    return env


def run_nbgrader(course: Path, *args: str, timeout: float = 600) -> str:
    """Run ``nbgrader ARGS`` in ``course``; fail with the end of its log when it fails."""
    exe = Path(sys.executable).parent / "nbgrader"
    command = [str(exe) if exe.exists() else "nbgrader", *args]
    result = subprocess.run(
        command,
        cwd=course,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0 or "| ERROR]" in log:
        raise AssertionError(f"`nbgrader {' '.join(args)}` failed:\n{log[-4000:]}")
    return log


def copy_course(dest: Path, assignments: list[str]) -> Path:
    """A fresh course root in ``dest`` with the config and the sources of ``assignments``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COURSE_ROOT / "nbgrader_config.py", dest / "nbgrader_config.py")
    for name in assignments:
        shutil.copytree(
            COURSE_ROOT / "source" / name,
            dest / "source" / name,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    return dest


def read_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def write_notebook(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cells_by_id(nb: dict) -> dict[str, dict]:
    """Cells with nbgrader metadata, by grade id."""
    return {grade_id(c): c for c in nb["cells"] if grade_id(c)}


def _region(source: str, begin: str, end: str) -> list[list[str]]:
    """The lines strictly between each ``begin`` and ``end`` marker line."""
    regions, current = [], None
    for line in source.split("\n"):
        if begin in line:
            current = []
        elif end in line and current is not None:
            regions.append(current)
            current = None
        elif current is not None:
            current.append(line)
    return regions


def solution_lines(source: str) -> list[str]:
    return [line for region in _region(source, BEGIN_SOLUTION, END_SOLUTION) for line in region]


def hidden_lines(source: str) -> list[str]:
    return [line for region in _region(source, BEGIN_HIDDEN, END_HIDDEN) for line in region]


def lines_outside_hidden_tests(source: str) -> list[str]:
    out, inside = [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        elif not inside:
            out.append(line)
    return out


def without_markers(source: str) -> str:
    """A solution cell as a student who solved it would hand it in: no marker lines."""
    marker = re.compile(rf"^\s*({re.escape(BEGIN_SOLUTION)}|{re.escape(END_SOLUTION)})\s*$")
    return "\n".join(line for line in source.split("\n") if not marker.match(line))


def replace_solution(source: str, code: str) -> str:
    """``source`` with its solution region (markers included) replaced by ``code``,
    indented like the begin marker."""
    out, inside = [], False
    for line in source.split("\n"):
        if BEGIN_SOLUTION in line:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + row if row else row for row in code.strip("\n").split("\n")]
            inside = True
        elif END_SOLUTION in line:
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("solution region without an end marker")
    return "\n".join(out)


def make_submission(release: dict, source: dict, replace: dict[str, str] | None = None) -> dict:
    """A student's notebook: the release with its solution cells filled in from the source,
    except that the solution region of each cell named in ``replace`` becomes the given
    code (a deliberate bug)."""
    nb = json.loads(json.dumps(release))
    originals = cells_by_id(source)
    replace = dict(replace or {})
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if not gid or not cell["metadata"]["nbgrader"].get("solution"):
            continue
        text = source_of(originals[gid])
        if gid in replace:
            text = replace_solution(text, replace.pop(gid))
        cell["source"] = without_markers(text)
    if replace:
        raise KeyError(f"no solution cells named {sorted(replace)}")
    return nb


def submit(course: Path, assignment: str, notebook: str, student: str, nb: dict) -> None:
    write_notebook(nb, course / "submitted" / student / assignment / f"{notebook}.ipynb")


def scores(course: Path, assignment: str, notebook: str) -> dict[str, dict[str, float]]:
    """Autograded score of every grade cell, per student: ``{student: {grade_id: score}}``."""
    from nbgrader.api import Gradebook

    out: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        for submission in gb.assignment_submissions(assignment):
            nb = gb.find_submission_notebook(notebook, assignment, submission.student.id)
            out[submission.student.id] = {g.name: float(g.score) for g in nb.grades}
    return out


def max_scores(course: Path, assignment: str, notebook: str) -> dict[str, float]:
    """The points of every grade cell, as the gradebook recorded them: ``{grade_id: points}``."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID) as gb:
        nb = gb.find_notebook(notebook, assignment)
        return {cell.name: float(cell.max_score) for cell in nb.grade_cells}


def failures(course: Path, assignment: str, notebook: str, student: str) -> dict[str, str]:
    """For each grade cell of an autograded notebook that shows an error or stderr, the
    end of that output: why a cell lost its points."""
    path = course / "autograded" / student / assignment / f"{notebook}.ipynb"
    out = {}
    for cell in read_notebook(path)["cells"]:
        if not cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            continue
        for output in cell.get("outputs", []):
            if output["output_type"] == "error":
                out[grade_id(cell)] = f"{output['ename']}: {output['evalue']}"[:500]
            elif output["output_type"] == "stream" and output["name"] == "stderr":
                out[grade_id(cell)] = "stderr: " + "".join(output["text"])[:500]
    return out
