"""Every course notebook runs top to bottom in fast mode and reports its key results.

The notebooks are found by name (``course/[0-9]*.ipynb``), so a new notebook is tested as
soon as it exists. conftest.py has already set fast mode, offline mode, a private cache and
a headless plot backend; the kernels inherit that environment.
"""

import time
import warnings
from pathlib import Path

import nbformat
import pytest

from kdlab.cli.course import collect_results

COURSE_DIR = Path(__file__).resolve().parents[1] / "course"
NOTEBOOKS = sorted(COURSE_DIR.glob("[0-9]*.ipynb"))
FAST_BUDGET_S = 60  # DESIGN.md: fast mode <= 60 s per notebook on a 2-core CPU


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(notebook, tmp_path, capsys, record_property):
    papermill = pytest.importorskip("papermill")
    executed_path = tmp_path / notebook.name
    start = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(executed_path),
        parameters={"FAST": True},
        kernel_name="python3",
        cwd=str(COURSE_DIR),
        progress_bar=False,
        execution_timeout=600,
    )
    seconds = time.perf_counter() - start
    record_property("seconds", round(seconds, 1))
    with capsys.disabled():
        print(f"\n{notebook.name}: {seconds:.1f} s in fast mode")
    if seconds > FAST_BUDGET_S:
        warnings.warn(
            f"{notebook.name} took {seconds:.0f} s in fast mode; the budget is {FAST_BUDGET_S} s",
            stacklevel=1,
        )

    executed = nbformat.read(executed_path, as_version=4)
    errors = [
        f"{output.get('ename')}: {output.get('evalue')}"
        for cell in executed.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, f"{notebook.name} raised: {errors}"
    results = collect_results(executed)
    assert results, (
        f"{notebook.name} displayed no key results; end it with kdlab.report.key_results({{...}})"
    )
