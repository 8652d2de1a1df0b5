"""nbgrader plumbing: its command and environment, the course root, the names of its
assignments and notebooks, notebook cells, and the gradebook."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "COURSE_ID",
    "assignments",
    "check_course",
    "copy_course",
    "grade_id",
    "nbgrader_command",
    "nbgrader_env",
    "notebook_names",
    "open_gradebook",
    "pick",
    "run_nbgrader",
    "source_of",
]

COURSE_ID = "kdlab"

# nbgrader's command, run by this Python. jsonschema, imported through nbformat, loads
# rfc3987_syntax where it is installed, which builds a grammar at import: 1.8 of the 3 CPU
# seconds that starting nbgrader costs, paid once per graded submission. Without it,
# jsonschema only skips checking the "iri" string format, which notebooks do not use.
NBGRADER_MAIN = (
    "import sys; sys.modules['rfc3987_syntax'] = None; "
    "from nbgrader.apps.nbgraderapp import main; sys.exit(main())"
)


def nbgrader_env(extra: dict[str, str] | None = None) -> dict[str, str]:
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


def nbgrader_command(*args: str) -> list[str]:
    """The command line of ``nbgrader ARGS``, run by this Python."""
    return [sys.executable, "-c", NBGRADER_MAIN, *args]


def run_nbgrader(
    course: Path, *args: str, timeout: float | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``nbgrader ARGS`` run in ``course``, its output captured; raise ``RuntimeError``
    with the end of its log if it fails or logs an error."""
    result = subprocess.run(
        nbgrader_command(*args),
        cwd=course,
        env=nbgrader_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = result.stdout + result.stderr
    if result.returncode != 0 or "| ERROR]" in log:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed:\n{log[-3000:]}")
    return result


def check_course(course: Path) -> Path:
    """``course`` resolved, or ``ValueError`` when it is no nbgrader course root."""
    course = Path(course).resolve()
    if not (course / "nbgrader_config.py").is_file():
        raise ValueError(
            f"{course} is not an nbgrader course root (no nbgrader_config.py): pass the "
            "assignments/ folder of the repository"
        )
    return course


def copy_course(course: Path, dest: Path, names: list[str]) -> Path:
    """A fresh course root ``dest``: the config and the sources of ``names`` of ``course``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(course) / "nbgrader_config.py", dest / "nbgrader_config.py")
    for name in names:
        shutil.copytree(
            Path(course) / "source" / name,
            dest / "source" / name,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
    return dest


def assignments(course: Path) -> list[str]:
    """The assignments of the course: the folders of ``source/`` that hold a notebook."""
    source = check_course(course) / "source"
    if not source.is_dir():
        return []
    return [p.name for p in sorted(source.iterdir()) if p.is_dir() and any(p.glob("*.ipynb"))]


def notebook_names(course: Path, assignment: str) -> list[str]:
    """The names (no suffix) of the source notebooks of ``assignment``."""
    return sorted(p.stem for p in (course / "source" / assignment).glob("*.ipynb"))


def pick(course: Path, names: list[str] | None) -> list[str]:
    """``names``, checked against the course's assignments; all of them when empty."""
    known = assignments(course)
    unknown = sorted(set(names or []) - set(known))
    if unknown:
        raise ValueError(f"unknown assignments {unknown}: the course has {known}")
    return list(names) if names else known


def source_of(cell: dict) -> str:
    """A cell's source as one string (notebook files may hold it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def grade_id(cell: dict) -> str | None:
    """A cell's nbgrader grade id, or None."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def open_gradebook(course: Path):
    """nbgrader's ``Gradebook`` of ``course`` (its ``gradebook.db``), as a context manager."""
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id=COURSE_ID)
