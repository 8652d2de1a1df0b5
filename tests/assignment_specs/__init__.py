"""One module per nbgrader assignment: ``aN.py`` defines ``ASSIGNMENT``, its test cells
with their points, its classic bugs as whole solutions (graded by nbgrader in
``test_assignments.py``) and its catalogue of diagnosed bugs as patches of the reference
solution (run in one process per assignment by ``test_assignment_diagnosis.py``). Both tests
find them all, so a new assignment is one more module here."""

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
class Diagnosis:
    """A classic bug as a patch of the reference solution: in solution cell ``cell`` (which
    defines ``function``) every ``old`` becomes ``new``. Test cell ``loses`` must then fail,
    every test cell before it pass, and the failure message contain ``says`` (the name of the
    bug in ``assignments/README.md``'s table) and, when ``values``, the expected and the
    obtained value ("expected ..., got ...")."""

    cell: str
    function: str
    bug: str
    old: str
    new: str
    loses: str
    says: str
    values: bool = True


@dataclass(frozen=True)
class Assignment:
    name: str
    points: tuple[tuple[str, float], ...]  # (test cell grade id, points), in notebook order
    bugs: tuple[Bug, ...]
    diagnoses: tuple[Diagnosis, ...] = ()
    # (grade id, points) of each cell an instructor grades by hand (a written answer):
    # autograding scores it 0 and leaves it to the instructor when the student answered.
    manual: tuple[tuple[str, float], ...] = ()

    @property
    def notebook(self) -> str:
        return self.name


def all_assignments() -> list[Assignment]:
    """Every ``ASSIGNMENT`` defined by a module of this package, in module-name order."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}").ASSIGNMENT for name in names]
