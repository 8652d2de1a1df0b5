"""The ``kdlab`` command line: ``kdlab course`` runs the course, ``kdlab check`` the set-up."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["main"]


def _course(args: argparse.Namespace) -> int:
    from kdlab.course import run_course, summary_table

    course_dir = Path(args.course_dir)
    if not course_dir.is_dir():
        print(f"error: course folder {course_dir} does not exist", file=sys.stderr)
        return 2
    runs = run_course(course_dir, Path(args.build), fast=args.fast, only=args.only or None)
    print()
    print(summary_table(runs, args.fast))
    print(f"Executed notebooks are in {args.build}/")
    return 0 if all(r.status == "ok" for r in runs) else 1


def _check(_: argparse.Namespace) -> int:
    from kdlab.envcheck import environment_report

    for section, values in environment_report().items():
        print(section)
        for key, value in values.items():
            print(f"  {key:28s} {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kdlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="execute every course notebook into a build folder")
    course.add_argument("--fast", action="store_true", help="small subsets, few steps")
    course.add_argument("--course-dir", default="course")
    course.add_argument("--build", default="build/course")
    course.add_argument("only", nargs="*", help="run only notebooks whose name starts so")
    course.set_defaults(func=_course)
    check = sub.add_parser("check", help="print versions, device and which data sets are found")
    check.set_defaults(func=_check)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
