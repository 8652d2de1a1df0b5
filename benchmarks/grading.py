"""Benchmark: grading throughput, vanilla nbgrader against kdlab's sandboxed grading.

The same N good submissions (the reference solution of one assignment, default
``a2_quantization_pruning``, which needs no data and no training) are graded, one run after
the other in a fresh copy of the course each (release, collect, grade):

- ``nbgrader``: vanilla ``nbgrader autograde ASSIGNMENT``, one process for the batch,
  serial, a plain ``python3`` kernel per submission, no sandbox;
- ``kdlab``: ``kdlab.grading.autograde`` with 1 worker, then 2 (and any other count given):
  a long-lived grading process per worker slot runs nbgrader's converter, and each
  submission gets a fresh sandboxed kernel forked from the slot's warm kernel server.
  The workers are started anew for each run, so each run pays its own start-up.

Measured: wall time of the batch, submissions per minute, the ratio of throughput to
vanilla nbgrader's, the peak resident memory of the whole process tree (sampled every
0.2 s), lost grades (a submission with no grade in the gradebook) and grades that differ
from vanilla nbgrader's for the same submission. Saves ``benchmarks/results/grading.json``.

    python benchmarks/grading.py                       # a2, 30 submissions, 1 and 2 workers
    python benchmarks/grading.py -n 6 --workers 2      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from kdlab import grading
from kdlab.grading.nbgrader import copy_course, nbgrader_command, nbgrader_env, open_gradebook
from kdlab.grading.warm_worker import close_workers

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


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


def prepare(source_course: Path, assignment: str, n: int, dest: Path) -> Path:
    """A fresh copy of ``source_course`` at ``dest`` with ``assignment`` released and ``n``
    collected submissions of its reference solution (students ``s000``...)."""
    course = copy_course(source_course, dest, [assignment])
    leaks = grading.release(course, [assignment])[assignment]
    if leaks:
        raise RuntimeError(f"the release of {assignment} leaks: {leaks[:3]}")
    name = f"{assignment}.ipynb"
    release = json.loads((course / "release" / assignment / name).read_text())
    source = json.loads((course / "source" / assignment / name).read_text())
    good = json.dumps(grading.reference_submission(release, source))
    drop = dest.parent / f"{dest.name}-dropbox"
    drop.mkdir()
    for i in range(n):
        (drop / f"s{i:03d}_{assignment}.ipynb").write_text(good)
    grading.collect(course, drop)
    return course


def _vanilla(course: Path, assignment: str, limits: grading.Limits) -> str:
    """``nbgrader autograde ASSIGNMENT`` as nbgrader's documentation runs it; its log."""
    args = ["autograde", assignment, "--force", f"--Execute.timeout={limits.cell_seconds}"]
    done = subprocess.run(
        nbgrader_command(*args), cwd=course, env=nbgrader_env(), capture_output=True, text=True
    )
    return done.stdout + done.stderr


def _failed_cells(course: Path, assignment: str, student: str) -> list[str]:
    """``grade id: error`` of each cell of the autograded notebook with an error output."""
    path = course / "autograded" / student / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        return []
    failed = []
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                gid = cell["metadata"].get("nbgrader", {}).get("grade_id", "?")
                failed.append(f"{gid}: {out['ename']}: {str(out.get('evalue'))[:200]}")
    return failed


def grade_batch(
    source_course: Path,
    assignment: str,
    n: int,
    workers: int | None,
    limits: grading.Limits,
    tmp: Path,
) -> dict:
    """Grade ``n`` good submissions with vanilla nbgrader (``workers`` None) or with kdlab
    and ``workers`` workers, in a fresh copy of ``source_course``; what was measured."""
    label = "nbgrader" if workers is None else f"kdlab-{workers}"
    course = prepare(source_course, assignment, n, tmp / label)
    caps = grading.probe()
    close_workers()  # each run starts its grading processes itself
    with PeakMemory() as peak:
        start = time.perf_counter()
        if workers is None:
            log = _vanilla(course, assignment, limits)
        else:
            results = grading.autograde(
                course, [assignment], workers=workers, limits=limits, caps=caps, progress=False
            )
            log = "\n".join(f"{r.student}: {r.error}" for r in results if r.error)
        wall = time.perf_counter() - start
    close_workers()
    with open_gradebook(course) as gb:
        recorded = {
            s.student.id: (float(s.score), float(s.max_score))
            for s in gb.assignment_submissions(assignment)
        }
    students = [f"s{i:03d}" for i in range(n)]
    lost = [s for s in students if s not in recorded]
    return {
        "grader": "nbgrader" if workers is None else "kdlab",
        "workers": 1 if workers is None else workers,
        "sandbox": workers is not None,
        "submissions": n,
        "wall_seconds": wall,
        "per_minute": 60 * n / wall,
        "peak_tree_rss_mb": peak.total / 2**20,
        "peak_process_rss_mb": peak.largest / 2**20,
        "lost": lost,
        "scores": {s: recorded.get(s, (None,))[0] for s in students},
        "max_score": max((m for _, m in recorded.values()), default=None),
        "log_tail": log[-2000:] if lost else "",
        "failed_cells": {s: _failed_cells(course, assignment, s) for s in students},
        "gradebook_problems": grading.check_gradebook(course),
        "sandbox_warnings": caps.warnings() if workers is not None else [],
    }


def run(
    course: Path,
    assignment: str,
    n: int,
    workers: list[int],
    limits: grading.Limits,
) -> dict:
    """Grade the same ``n`` good submissions with vanilla nbgrader, then with kdlab once per
    worker count, one after the other (same load on the machine, so the ratios mean more
    than each time)."""
    if n < 1:
        raise ValueError(f"n must be at least 1 submission, got {n}")
    start, load = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="kdlab-bench-grading-") as tmp:
        runs = [
            grade_batch(Path(course), assignment, n, w, limits, Path(tmp)) for w in [None, *workers]
        ]
    for r in runs:
        r["throughput_ratio"] = r["per_minute"] / runs[0]["per_minute"]
        r["differ"] = sorted(s for s, v in r["scores"].items() if v != runs[0]["scores"][s])
    return {
        "assignment": assignment,
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
        f"Autograding {runs[0]['submissions']} good submissions of {result['assignment']} "
        f"({result['machine']}, load average {result['load_average']['start']:.1f} at the "
        f"start, {result['load_average']['end']:.1f} at the end)",
        "",
        "| grader | workers | sandbox | wall s | submissions / min | throughput vs nbgrader | "
        "lost grades | grades unlike nbgrader's | peak memory, all processes MB | "
        "largest process MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['grader']} | {r['workers']} | {'yes' if r['sandbox'] else 'no'} | "
            f"{r['wall_seconds']:.0f} | {r['per_minute']:.1f} | {r['throughput_ratio']:.2f}x | "
            f"{len(r['lost'])} | {len(r['differ'])} | {r['peak_tree_rss_mb']:.0f} | "
            f"{r['peak_process_rss_mb']:.0f} |"
        )
    for r in runs:
        label = f"{r['grader']}, {r['workers']} worker(s)"
        for problem in r["gradebook_problems"]:
            lines.append(f"- gradebook ({label}): {problem}")
        if r["lost"]:
            lines.append(f"- lost ({label}): {r['lost'][:5]}; log: {r['log_tail'][-300:]}")
        for student in r["differ"][:3]:
            failed = "; ".join(r["failed_cells"][student]) or "no failed cell"
            lines.append(f"- grade unlike nbgrader's ({label}): {student}: {failed[:300]}")
    for warning in runs[-1]["sandbox_warnings"]:
        lines.append(f"- not enforced: {warning}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="a2_quantization_pruning")
    parser.add_argument("-n", type=int, default=30, help="submissions")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cell-timeout", type=int, default=120)
    parser.add_argument("--notebook-timeout", type=int, default=600)
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
