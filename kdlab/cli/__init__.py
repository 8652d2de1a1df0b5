"""The ``kdlab`` command line: ``kdlab course`` runs the course, ``kdlab check`` the set-up;
``release``, ``selfcheck``, ``collect``, ``autograde``, ``feedback`` and ``export`` are the
instructor's workflow (assignments/README.md); ``validate`` is the students' check before
they submit."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ["main", "plain_text", "version"]

# reStructuredText markup of docstrings: roles (:func:`x`) and literals (``x``) read as x.
_RST_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """``text`` with the reStructuredText roles and double backticks of a docstring removed,
    for help pages that argparse shows as they are."""
    return _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(r"\1", text))


class _PlainHelp(argparse.HelpFormatter):
    """Help text without reStructuredText markup, whoever wrote the description or help."""

    def _fill_text(self, text, width, indent):
        return super()._fill_text(plain_text(text), width, indent)

    def _split_lines(self, text, width):
        return super()._split_lines(plain_text(text), width)


class _Parser(argparse.ArgumentParser):
    """An argument parser (and, through ``add_subparsers``, its subcommands' parsers) whose
    help pages are plain text."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _PlainHelp)
        super().__init__(*args, **kwargs)


def version() -> str:
    """The installed distribution's version, else the package's ``__version__`` (a source
    tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("kdlab")
    except PackageNotFoundError:
        # The package root is this package's parent, so it is imported already.
        return sys.modules["kdlab"].__version__


def _course(args: argparse.Namespace) -> int:
    from kdlab.cli.course import run_course, summary_table

    course_dir = Path(args.course_dir)
    if not course_dir.is_dir():
        print(f"error: course folder {course_dir} does not exist", file=sys.stderr)
        return 2
    try:
        runs = run_course(course_dir, Path(args.build), fast=args.fast, only=args.only or None)
    except FileNotFoundError as err:
        print(f"error: {err}; name notebooks by number, e.g. kdlab course 02", file=sys.stderr)
        return 2
    print()
    print(summary_table(runs, args.fast))
    print(f"Executed notebooks are in {args.build}/")
    return 0 if all(r.status == "ok" for r in runs) else 1


def _site(args: argparse.Namespace) -> int:
    from kdlab.cli.site import build_site

    out = Path(args.out)
    pages = build_site(out, Path(args.course_dir), Path(args.executed))
    for page in pages:
        print(f"{page.href:40s} {page.label}")
    if any(page.label == "not executed" for page in pages):
        print("Pages without outputs: run `make course` (or FAST=1) first to include them.")
    print(f"Open {out / 'index.html'}")
    return 0


def _check(_: argparse.Namespace) -> int:
    from kdlab.cli.envcheck import environment_report

    for section, values in environment_report().items():
        print(section)
        for key, value in values.items():
            print(f"  {key:28s} {value}")
    return 0


def _limits(args: argparse.Namespace):
    from kdlab.grading import Limits

    return Limits(
        cell_seconds=args.cell_timeout,
        notebook_seconds=args.notebook_timeout,
        memory_mb=args.memory_mb,
    )


def _sandbox_report():
    from kdlab.grading import probe

    caps = probe()
    for line in caps.enforced():
        print(f"enforced: {line}")
    for line in caps.warnings():
        print(f"WARNING: not enforced: {line}", file=sys.stderr)
    return caps


def _print_results(results) -> int:
    for r in results:
        grade = f"{r.score:g} / {r.max_score:g}" if r.error == "" else "ERROR"
        print(f"{r.assignment:28s} {r.student:20s} {grade:12s} {r.seconds:6.1f} s  {r.error}")
    return 1 if any(r.error for r in results) else 0


def _release(args: argparse.Namespace) -> int:
    from kdlab.grading import release

    leaks = release(Path(args.course), args.assignments or None)
    for name, found in leaks.items():
        print(f"{name}: " + ("clean" if not found else f"{len(found)} leaks"))
        for leak in found:
            print(f"  {leak}")
    return 1 if any(leaks.values()) else 0


def _selfcheck(args: argparse.Namespace) -> int:
    from kdlab.grading import selfcheck

    caps = _sandbox_report()
    rows = selfcheck(
        Path(args.course),
        args.assignments or None,
        workers=args.workers,
        limits=_limits(args),
        caps=caps,
    )
    for assignment, student, score, max_score, verdict in rows:
        print(f"{assignment:28s} {student:10s} {score} / {max_score}  {verdict}")
    return 0 if all(row[4] == "ok" for row in rows) else 1


def _collect(args: argparse.Namespace) -> int:
    from kdlab.grading import collect

    report = collect(Path(args.course), Path(args.source))
    print(f"collected {len(report.collected)} submissions")
    for name, reason in report.rejected:
        print(f"REJECTED {name}: {reason}", file=sys.stderr)
    return 1 if report.rejected else 0


def _autograde(args: argparse.Namespace) -> int:
    from kdlab.grading import autograde, check_gradebook, write_report

    course = Path(args.course)
    if args.scheduler:
        from kdlab.grading.cluster import autograde_on_cluster

        results = autograde_on_cluster(
            course,
            args.scheduler,
            args.assignments or None,
            students=args.student or None,
            limits=_limits(args),
        )
    else:
        results = autograde(
            course,
            args.assignments or None,
            students=args.student or None,
            workers=args.workers,
            limits=_limits(args),
            caps=_sandbox_report(),
        )
    status = _print_results(results)
    write_report(results, course / "grading_report.csv")
    print(f"report: {course / 'grading_report.csv'}")
    problems = check_gradebook(course)
    for problem in problems:
        print(f"GRADEBOOK: {problem}", file=sys.stderr)
    return 1 if problems else status


def _feedback(args: argparse.Namespace) -> int:
    from kdlab.grading import feedback

    feedback(Path(args.course), args.assignments or None, show_hidden_tests=args.show_hidden_tests)
    print(f"feedback pages are in {Path(args.course) / 'feedback'}/")
    return 0


def _export(args: argparse.Namespace) -> int:
    from kdlab.grading import export_grades, export_per_question

    if not args.csv and not args.per_question:
        print("error: name a CSV file, --per-question PATH, or both", file=sys.stderr)
        return 2
    if args.csv:
        export_grades(Path(args.course), Path(args.csv))
        print(f"grades written to {args.csv}")
    if args.per_question:
        report = export_per_question(Path(args.course), Path(args.per_question))
        print(f"{report.students} students, {len(report.columns)} columns: {args.per_question}")
        for item in report.pending:
            print(f"pending manual grading (left empty): {item}")
        for item in report.ungraded:
            print(f"WARNING: submitted but not graded (left empty): {item}", file=sys.stderr)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from kdlab.grading.validating import validate

    result = validate(
        Path(args.notebook), Path(args.course), assignment=args.assignment, limits=_limits(args)
    )
    print("\n".join(result.lines()))
    return 0 if result.ok else 1


def _instructor(sub) -> None:
    def command(name: str, func, help: str, assignments: bool = True):
        parser = sub.add_parser(name, help=help)
        parser.add_argument("--course", default="assignments", help="the nbgrader course root")
        if assignments:
            parser.add_argument("assignments", nargs="*", help="default: every assignment")
        parser.set_defaults(func=func)
        return parser

    def grading(parser) -> None:
        parser.add_argument("--workers", type=int, default=1, help="submissions graded at once")
        parser.add_argument("--cell-timeout", type=int, default=600, help="seconds per cell")
        parser.add_argument(
            "--notebook-timeout", type=int, default=1800, help="wall seconds per submission"
        )
        parser.add_argument("--memory-mb", type=int, default=6144, help="memory per kernel")

    command("release", _release, "generate every release and check it leaks nothing")
    grading(command("selfcheck", _selfcheck, "reference solutions full marks, releases zero"))
    collect = command("collect", _collect, "copy <student>_<assignment>.ipynb files", False)
    collect.add_argument("source", help="a folder or a zip archive of submissions")
    autograde = command("autograde", _autograde, "grade submissions in parallel, sandboxed")
    autograde.add_argument("--student", action="append", help="grade only this student")
    autograde.add_argument(
        "--scheduler", help="grade on this Dask cluster (tcp://HOST:8786) instead of here"
    )
    grading(autograde)
    feedback = command("feedback", _feedback, "one HTML feedback page per graded submission")
    feedback.add_argument(
        "--show-hidden-tests",
        action="store_true",
        help="show the hidden tests' code and tracebacks (default: each failing test's message)",
    )
    export = command("export", _export, "write the gradebook's grades to CSV files", False)
    export.add_argument("csv", nargs="?", help="nbgrader's export to this file, e.g. grades.csv")
    export.add_argument(
        "--per-question", metavar="PATH", help="a column per test cell, for Canvas or Moodle"
    )
    validate = command("validate", _validate, "check a notebook before submitting it", False)
    validate.add_argument("notebook", help="your assignment notebook (.ipynb)")
    validate.add_argument("--assignment", help="default: from the file name or its cells")
    grading(validate)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="kdlab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"kdlab {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="execute every course notebook into a build folder")
    course.add_argument("--fast", action="store_true", help="small subsets, few steps")
    course.add_argument("--course-dir", default="course")
    course.add_argument("--build", default="build/course")
    course.add_argument("only", nargs="*", help="run only notebooks whose name starts so")
    course.set_defaults(func=_course)
    site = sub.add_parser("site", help="render the course and the API reference as HTML")
    site.add_argument("--course-dir", default="course")
    site.add_argument("--executed", default="build/course", help="the executed notebooks")
    site.add_argument("--out", default="build/site")
    site.set_defaults(func=_site)
    check = sub.add_parser("check", help="print versions, device and which data sets are found")
    check.set_defaults(func=_check)
    _instructor(sub)
    from kdlab.cli.train import add_train_command  # kdlab train teacher|mlm (torchrun: N)

    add_train_command(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
