"""Release: ``nbgrader generate_assignment``, then a check that the released files give
away no solution and no hidden test."""

from __future__ import annotations

import json
from pathlib import Path

from kdlab.grading.nbgrader import check_course, pick, run_nbgrader, source_of

__all__ = ["release", "release_leaks"]

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


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
    cells = [source_of(c) for nb in source_notebooks for c in json.loads(nb.read_text())["cells"]]
    solution = {s for c in cells for s in _regions(c, BEGIN_SOLUTION, END_SOLUTION, True)}
    shown = {s for c in cells for s in _regions(c, BEGIN_HIDDEN, END_HIDDEN, False)}
    hidden = {s for c in cells for s in _regions(c, BEGIN_HIDDEN, END_HIDDEN, True)} - shown
    leaks = []
    for path in released_files:
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".ipynb":
            text = "\n".join(source_of(c) for c in json.loads(text)["cells"])
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
    course = check_course(course)
    out = {}
    for name in pick(course, names):
        run_nbgrader(course, "generate_assignment", name, "--force")
        sources = sorted((course / "source" / name).glob("*.ipynb"))
        released = [p for p in sorted((course / "release" / name).rglob("*")) if p.is_file()]
        out[name] = release_leaks(sources, released)
    return out
