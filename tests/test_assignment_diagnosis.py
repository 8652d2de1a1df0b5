"""Every classic bug of an assignment is named in its feedback.

Each assignment spec (``assignment_specs/aN.py``) lists its diagnosed bugs as patches of the
reference solution. For each one, the source notebook's code cells run, in one Python
process per assignment, from the setup cell to the test cell that must catch the bug, with
the patched solution in place: that test cell must fail (an error, or output on stderr, as
nbgrader scores it), every test cell before it must pass, and the message must name the bug
(and show the expected and the obtained value). The unpatched reference passes every test
cell. ``assignments/README.md`` lists the same bugs, one table row each.

Run as a script, ``python tests/test_assignment_diagnosis.py a1_soft_targets`` prints for
each bug whether its cell failed and whether the message named it, on whatever notebook is
in ``assignments/source`` (a patch that no longer applies shows as such).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from assignment_specs import Assignment, Diagnosis, all_assignments

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "assignments" / "source"
README = REPO / "assignments" / "README.md"
# Run as a script, only the assignment asked for is imported.
ASSIGNMENTS = [a for a in all_assignments() if a.diagnoses] if __name__ != "__main__" else []
REFERENCE = "reference"


def _code_cells(name: str) -> list[tuple[str, str, bool]]:
    """(grade id or "", source, is a test cell) of each code cell of the source notebook."""
    nb = json.loads((SOURCE / name / f"{name}.ipynb").read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta = cell["metadata"].get("nbgrader", {})
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        out.append((meta.get("grade_id", ""), source, bool(meta.get("grade"))))
    return out


def _patched(cells: list[tuple[str, str, bool]], d: Diagnosis) -> list[tuple[str, str, bool]]:
    out = []
    for gid, source, grade in cells:
        if gid == d.cell:
            if d.old not in source:
                raise LookupError(f"{d.old!r} is not in cell {d.cell}")
            source = source.replace(d.old, d.new)
        out.append((gid, source, grade))
    return out


def _run(cells: list[tuple[str, str, bool]], stop: str) -> dict[str, str]:
    """Run the cells in a fresh namespace up to test cell ``stop``; the message of each test
    cell that fails (an exception, or anything written to stderr)."""
    namespace: dict = {"__name__": "__main__"}
    failed = {}
    for gid, source, grade in cells:
        err = io.StringIO()
        message = ""
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                exec(compile(source, f"<cell {gid}>", "exec"), namespace)  # noqa: S102
            except Exception as error:  # a failing test cell is what we look for
                message = f"{type(error).__name__}: {error}"
        if err.getvalue() and not message:
            message = "stderr: " + err.getvalue()
        if message:
            if not grade:
                return {gid or "setup": f"a cell that is not a test failed: {message}"}
            failed[gid] = message
        if gid == stop:
            break
    return failed


def outcomes(assignment: Assignment) -> dict[str, dict[str, str] | str]:
    """For the reference and each diagnosed bug (by its README name): the failing test cells
    and their messages, or why the patch did not apply."""
    cells = _code_cells(assignment.name)
    last = max((d.loses for d in assignment.diagnoses), key=[c[0] for c in cells].index)
    out: dict[str, dict[str, str] | str] = {REFERENCE: _run(cells, last)}
    for d in assignment.diagnoses:
        try:
            out[d.bug] = _run(_patched(cells, d), d.loses)
        except LookupError as error:
            out[d.bug] = f"patch does not apply: {error}"
    return out


def _outcomes_in_subprocesses(assignments: list[Assignment]) -> dict[str, dict | Exception]:
    """``outcomes`` of each assignment, in one process each, all at once."""
    env = dict(os.environ, KDLAB_FAST="1", KDLAB_OFFLINE="1")
    runs = {
        a.name: subprocess.Popen(
            [sys.executable, __file__, a.name, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for a in assignments
    }
    out: dict[str, dict | Exception] = {}
    for name, run in runs.items():
        stdout, stderr = run.communicate(timeout=600)
        if run.returncode != 0:
            out[name] = RuntimeError(f"the diagnosis run of {name} failed:\n{stderr[-3000:]}")
        else:
            out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


def _id(value) -> str:
    return value.name if isinstance(value, Assignment) else value.bug


@pytest.fixture(scope="session")
def diagnosed():
    done: dict[str, dict | Exception] = {}

    def _get(assignment: Assignment) -> dict:
        if not done:  # every assignment at once, on the first call
            done.update(_outcomes_in_subprocesses(ASSIGNMENTS))
        if isinstance(done[assignment.name], Exception):
            raise done[assignment.name]
        return done[assignment.name]

    return _get


def verdict(d: Diagnosis, outcome: dict[str, str] | str) -> str:
    """"named" when the bug costs its test cell and the message names it, else what went wrong."""
    if isinstance(outcome, str):
        return outcome
    if not outcome:
        return "no test cell failed"
    if list(outcome) != [d.loses]:
        return f"the failing test cells are {sorted(outcome)}, expected only {d.loses}: {outcome}"
    message = outcome[d.loses]
    if d.says not in message:
        return f"the message does not name the bug ({d.says!r}): {message}"
    if d.values and not ("expected" in message and "got" in message):
        return f"the message does not show the expected and the obtained value: {message}"
    return "named"


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_reference_passes_every_test_cell(diagnosed, assignment):
    assert diagnosed(assignment)[REFERENCE] == {}


@pytest.mark.parametrize(
    "assignment, diagnosis", [(a, d) for a in ASSIGNMENTS for d in a.diagnoses], ids=_id
)
def test_each_bug_loses_its_cell_and_is_named(diagnosed, assignment, diagnosis):
    assert verdict(diagnosis, diagnosed(assignment)[diagnosis.bug]) == "named"


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=_id)
def test_bugs_have_distinct_names_and_readme_rows(assignment):
    names = [d.bug for d in assignment.diagnoses]
    assert len(names) == len(set(names)), "two diagnosed bugs share a name"
    readme = README.read_text(encoding="utf-8").replace("\\|", "|")  # table cells escape |
    missing = [d.bug for d in assignment.diagnoses if readme_row(d) not in readme]
    assert not missing, f"assignments/README.md has no row for {missing}"


def readme_row(d: Diagnosis) -> str:
    """The row of ``assignments/README.md``'s bug table that lists ``d``."""
    return f"| `{d.function}` | {d.bug} | {d.says} |"


def _main(argv: list[str]) -> None:
    spec = importlib.import_module(f"assignment_specs.{argv[0].split('_')[0]}")
    assignment = spec.ASSIGNMENT
    result = outcomes(assignment)
    if "--json" in argv:
        print(json.dumps(result))
        return
    print(f"reference: {result[REFERENCE] or 'every test cell passes'}")
    named = with_values = 0
    for d in assignment.diagnoses:
        v = verdict(d, result[d.bug])
        with_values += v == "named"
        named += v == "named" or v.startswith("the message does not show")
        print(f"{d.bug:<45} {v[:160]}")
    print(f"{assignment.name}: {len(assignment.diagnoses)} bugs, {named} named by the test cell "
          f"that catches them, {with_values} of those with the expected and obtained values")


if __name__ == "__main__":
    _main(sys.argv[1:])
