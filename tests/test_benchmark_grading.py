"""benchmarks/grading.py grades a small batch of good submissions with vanilla nbgrader and
with kdlab, and reports what it measured: no lost grade, full marks, ratios to nbgrader."""

import pytest

pytest.importorskip("nbgrader")

from fixtures.grading_corpus import ASSIGNMENT, FULL, write_assignment  # noqa: E402
from nbgrader_helpers import COURSE_ROOT  # noqa: E402
from test_benchmarks import load  # noqa: E402

from kdlab.grading import Limits  # noqa: E402

pytestmark = pytest.mark.nbgrader


def test_grading_benchmark_loses_no_grade_and_reports_its_numbers(tmp_path):
    bench = load("grading")
    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_bytes((COURSE_ROOT / "nbgrader_config.py").read_bytes())
    write_assignment(course)
    limits = Limits(cell_seconds=10, notebook_seconds=60, memory_mb=2048)
    result = bench.run(course, ASSIGNMENT, 3, [2], limits)
    vanilla, kdlab = result["runs"]
    assert (vanilla["grader"], vanilla["sandbox"]) == ("nbgrader", False)
    assert (kdlab["grader"], kdlab["workers"], kdlab["sandbox"]) == ("kdlab", 2, True)
    for r in (vanilla, kdlab):
        assert r["lost"] == [] and r["differ"] == [] and r["gradebook_problems"] == []
        assert list(r["scores"].values()) == [FULL] * 3
        assert r["per_minute"] == pytest.approx(60 * 3 / r["wall_seconds"])
        assert 0 < r["peak_process_rss_mb"] <= r["peak_tree_rss_mb"]
    assert vanilla["throughput_ratio"] == 1.0
    assert kdlab["throughput_ratio"] == pytest.approx(
        vanilla["wall_seconds"] / kdlab["wall_seconds"]
    )
    text = bench.report(result)
    row = f"| kdlab | 2 | yes | {kdlab['wall_seconds']:.0f} | {kdlab['per_minute']:.1f} | "
    assert row + f"{kdlab['throughput_ratio']:.2f}x | 0 | 0 |" in text
    with pytest.raises(ValueError, match="n must be"):
        bench.run(course, ASSIGNMENT, 0, [2], limits)
