"""benchmarks/grading.py grades a small batch of generated submissions and reports what it
measured: no lost grade, the expected score of each kind of submission."""

import pytest

pytest.importorskip("nbgrader")

from fixtures.grading_corpus import ASSIGNMENT, FULL, POINTS, write_assignment  # noqa: E402
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
    limits = Limits(cell_seconds=10, notebook_seconds=60, memory_mb=256)
    result = bench.run(course, ASSIGNMENT, 4, [2], limits)
    (r,) = result["runs"]
    assert r["lost"] == [] and r["good_below_full"] == [] and r["gradebook_problems"] == []
    # good, untouched, good, syntax error in the first answer (add): its test cell scores 0
    expected = [FULL, 0, FULL, FULL - POINTS["test_add"]]
    assert [r["scores"][s] for s in sorted(r["scores"])] == expected
    assert r["per_minute"] == pytest.approx(60 * 4 / r["wall_seconds"])
    assert 0 < r["peak_process_rss_mb"] <= r["peak_tree_rss_mb"]
    text = bench.report(result)
    assert f"| 2 | {r['wall_seconds']:.0f} | {r['per_minute']:.1f} |" in text
    with pytest.raises(ValueError, match="n must be"):
        bench.run(course, ASSIGNMENT, 0, [2], limits)
