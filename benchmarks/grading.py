"""Benchmark: sandboxed autograding of a batch of generated submissions, 1 and 2 workers.

From the release and the reference solution of one assignment (default
``a2_quantization_pruning``, which needs no data and no training), N submissions in a fixed
mix: half good (the reference solution), the rest the untouched release, a syntax error, an
infinite loop (it costs one cell timeout), a memory bomb and a kernel that exits. For each
worker count, in a fresh copy of the course: release, collect, ``kdlab.grading.autograde``.
Measured: wall time of the grading batch, submissions per minute, the peak resident memory
of the whole process tree (this process, the nbgrader processes and their kernels, sampled
every 0.2 s) and of its largest process, and lost grades: a submission that should have a
grade (every kind but the exiting kernel) with none in the gradebook, or a good one below
full marks. Saves ``benchmarks/results/grading.json``.

    python benchmarks/grading.py                       # a2, 30 submissions, 1 and 2 workers
    python benchmarks/grading.py -n 6 --workers 2      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

from kdlab import grading
from kdlab.grading.nbgrader import copy_course, open_gradebook, source_of

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# What each kind of submission does to the first solution cell, and its expected outcome.
MIX = (
    "good",
    "untouched",
    "good",
    "syntax-error",
    "good",
    "infinite-loop",
    "good",
    "memory-bomb",
    "good",
    "kernel-exit",
)
DEFECTS = {
    "syntax-error": "def oops(:\n",
    "infinite-loop": "while True:\n    pass\n",
    "memory-bomb": "_hog = []\nwhile True:\n    _hog.append(bytearray(10**8))\n",
    "kernel-exit": "import os\nos._exit(1)\n",
}


def submissions(release: dict, source: dict, n: int) -> dict[str, tuple[str, dict]]:
    """``n`` submissions, ``{student: (kind, notebook)}``, kinds cycling through MIX."""
    reference = grading.reference_submission(release, source)
    first = next(
        c for c in reference["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    )
    at = reference["cells"].index(first)
    out = {}
    for i in range(n):
        kind = MIX[i % len(MIX)]
        nb = json.loads(json.dumps(release if kind == "untouched" else reference))
        if kind in DEFECTS:
            cell = nb["cells"][at]
            cell["source"] = DEFECTS[kind] + source_of(cell)
        out[f"s{i:03d}-{kind}"] = (kind, nb)
    return out


def _tree_rss() -> tuple[int, int]:
    """Resident memory (bytes) of this process and all its descendants, and of the largest."""
    parents, rss = {}, {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    sizes = [rss.get(pid, 0) for pid in tree]
    return sum(sizes), max(sizes)


class PeakMemory:
    """Samples :func:`_tree_rss` in a thread while the ``with`` block runs."""

    def __enter__(self) -> PeakMemory:
        self.total = self.largest = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            total, largest = _tree_rss()
            self.total, self.largest = max(self.total, total), max(self.largest, largest)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def grade_batch(
    source_course: Path, assignment: str, n: int, workers: int, limits: grading.Limits, tmp: Path
) -> dict:
    """Release, collect and autograde ``n`` generated submissions with ``workers`` workers
    in a fresh copy of ``source_course``; what was measured."""
    course = copy_course(source_course, tmp / f"course-{workers}", [assignment])
    leaks = grading.release(course, [assignment])[assignment]
    if leaks:
        raise RuntimeError(f"the release of {assignment} leaks: {leaks[:3]}")
    nb_name = f"{assignment}.ipynb"
    release = json.loads((course / "release" / assignment / nb_name).read_text())
    source = json.loads((course / "source" / assignment / nb_name).read_text())
    subs = submissions(release, source, n)
    drop = tmp / f"dropbox-{workers}"
    drop.mkdir()
    for student, (_, nb) in subs.items():
        (drop / f"{student}_{assignment}.ipynb").write_text(json.dumps(nb))
    grading.collect(course, drop)
    caps = grading.probe()
    with PeakMemory() as peak:
        start = time.perf_counter()
        results = grading.autograde(course, [assignment], workers=workers, limits=limits, caps=caps)
        wall = time.perf_counter() - start
    with open_gradebook(course) as gb:
        recorded = {
            s.student.id: (float(s.score), float(s.max_score))
            for s in gb.assignment_submissions(assignment)
        }
    by_student = {r.student: r for r in results}
    lost = sorted(s for s, (kind, _) in subs.items() if kind != "kernel-exit" and s not in recorded)
    wrong = sorted(
        s
        for s, (kind, _) in subs.items()
        if kind == "good" and (s not in recorded or recorded[s][0] != recorded[s][1])
    )
    return {
        "workers": workers,
        "submissions": n,
        "wall_seconds": wall,
        "per_minute": 60 * n / wall,
        "peak_tree_rss_mb": peak.total / 2**20,
        "peak_process_rss_mb": peak.largest / 2**20,
        "lost": lost,
        "good_below_full": wrong,
        "errors": {s: r.error for s, r in by_student.items() if r.error},
        "scores": {s: r.score for s, r in by_student.items()},
        "gradebook_problems": grading.check_gradebook(course),
        "sandbox_warnings": caps.warnings(),
    }


def run(
    course: Path,
    assignment: str,
    n: int,
    workers: list[int],
    limits: grading.Limits,
) -> dict:
    """Grade the same ``n`` generated submissions once per worker count, one after the
    other (same load on the machine, so the ratio means more than each time)."""
    if n < 1:
        raise ValueError(f"n must be at least 1 submission, got {n}")
    start, load = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kdlab-bench-grading-") as tmp:
        runs = [grade_batch(Path(course), assignment, n, w, limits, Path(tmp)) for w in workers]
    return {
        "assignment": assignment,
        "mix": list(MIX),
        "limits": {
            "cell_seconds": limits.cell_seconds,
            "notebook_seconds": limits.notebook_seconds,
            "memory_mb": limits.memory_mb,
        },
        "runs": runs,
        "cpus": os.cpu_count(),
        "load_average": {"start": load[0], "end": os.getloadavg()[0]},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "total_seconds": time.perf_counter() - start,
    }


def report(result: dict) -> str:
    runs = result["runs"]
    lines = [
        f"Sandboxed autograding of {runs[0]['submissions']} generated submissions of "
        f"{result['assignment']} ({result['machine']}, load average "
        f"{result['load_average']['start']:.1f} at the start, "
        f"{result['load_average']['end']:.1f} at the end; cell limit "
        f"{result['limits']['cell_seconds']} s)",
        "",
        "| workers | wall s | submissions / min | peak memory, all processes MB | "
        "largest process MB | lost grades | good below full | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['workers']} | {r['wall_seconds']:.0f} | {r['per_minute']:.1f} | "
            f"{r['peak_tree_rss_mb']:.0f} | {r['peak_process_rss_mb']:.0f} | {len(r['lost'])} | "
            f"{len(r['good_below_full'])} | {len(r['errors'])} |"
        )
    if len(runs) > 1:
        lines.append("")
        lines.append(
            f"- speed-up of {runs[-1]['workers']} workers over {runs[0]['workers']}: "
            f"{runs[0]['wall_seconds'] / runs[-1]['wall_seconds']:.2f}x"
        )
    for r in runs:
        for problem in r["gradebook_problems"]:
            lines.append(f"- gradebook ({r['workers']} workers): {problem}")
        for warning in r["sandbox_warnings"]:
            lines.append(f"- not enforced: {warning}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="a2_quantization_pruning")
    parser.add_argument("-n", type=int, default=30, help="submissions")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cell-timeout", type=int, default=30)
    parser.add_argument("--notebook-timeout", type=int, default=300)
    parser.add_argument("--memory-mb", type=int, default=3000)
    args = parser.parse_args()
    limits = grading.Limits(
        cell_seconds=args.cell_timeout,
        notebook_seconds=args.notebook_timeout,
        memory_mb=args.memory_mb,
    )
    result = run(ROOT / "assignments", args.assignment, args.n, args.workers, limits)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "grading.json"
    out.write_text(json.dumps(result, indent=2))  # saved first: a report bug loses nothing
    print(report(result))
    print(f"\nsaved {out}")


if __name__ == "__main__":
    main()
