"""One module per nbgrader assignment: ``aN.py`` defines ``ASSIGNMENT``, its test cells
with their points and its classic bugs. ``test_assignments.py`` finds them all, so a new
assignment is one more module here."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass


@dataclass(frozen=True)
class Bug:
    """A classic mistake: ``code`` replaces the solution region of solution cell ``cell``;
    test cell ``loses`` must then score zero with an error that ``says`` what went wrong."""

    student: str
    cell: str
    code: str
    loses: str
    says: str


@dataclass(frozen=True)
class Assignment:
    name: str
    points: tuple[tuple[str, float], ...]  # (test cell grade id, points), in notebook order
    bugs: tuple[Bug, ...]

    @property
    def notebook(self) -> str:
        return self.name


def all_assignments() -> list[Assignment]:
    """Every ``ASSIGNMENT`` defined by a module of this package, in module-name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}").ASSIGNMENT for name in names]
