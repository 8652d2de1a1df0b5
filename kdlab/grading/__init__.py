"""The instructor's workflow around nbgrader: release, self-check, collect, autograde in
parallel and in a sandbox, feedback, grades. nbgrader does the work; its gradebook
(``gradebook.db`` in the course root) is the record.

- ``nbgrader``: running nbgrader, the course root, assignment and notebook names, cells
- ``releasing``: ``release`` and the leak check of a release
- ``collecting``: ``collect`` students' files into ``submitted/``
- ``autograding``: ``autograde`` in parallel, one worker slot per submission at a time
- ``slot``: one submission graded in its own scratch folder, with the sandbox kernel
- ``sandbox``: that kernel's launcher (limits, namespaces, user) and the machine probe
- ``grades``: results, their CSV report, the gradebook check
- ``feedback``: feedback pages that show failing tests' messages, not the hidden tests
- ``exporting``: nbgrader's CSV export and the per-question CSV for Canvas and Moodle
- ``validating``: the student's check of a notebook before submitting
- ``cluster``: autograde on a Dask cluster, the gradebook written by this process
- ``reference``: the reference submission and the self-check
"""

from kdlab.grading.autograding import autograde
from kdlab.grading.collecting import CollectReport, collect
from kdlab.grading.exporting import export_grades, export_per_question
from kdlab.grading.feedback import feedback
from kdlab.grading.grades import GradeResult, check_gradebook, write_report
from kdlab.grading.nbgrader import assignments, run_nbgrader
from kdlab.grading.reference import reference_submission, selfcheck
from kdlab.grading.releasing import release, release_leaks
from kdlab.grading.sandbox import Capabilities, Limits, kernel_spec, probe

__all__ = [
    "Capabilities",
    "CollectReport",
    "GradeResult",
    "Limits",
    "assignments",
    "autograde",
    "check_gradebook",
    "collect",
    "export_grades",
    "export_per_question",
    "feedback",
    "kernel_spec",
    "probe",
    "reference_submission",
    "release",
    "release_leaks",
    "run_nbgrader",
    "selfcheck",
    "write_report",
]
