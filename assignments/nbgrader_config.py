"""nbgrader configuration of the kdlab course: this folder is the course root.

Run nbgrader from this folder (``cd assignments``), for example ``nbgrader
generate_assignment a1_soft_targets`` and ``nbgrader autograde a1_soft_targets``;
README.md here gives the whole workflow.
"""

from pathlib import Path

c = get_config()  # noqa: F821 (traitlets defines it when it loads this file)

# The course root is this folder, wherever nbgrader is started from.
c.CourseDirectory.root = str(Path(__file__).resolve().parent)
c.CourseDirectory.course_id = "kdlab"

# Solution regions (### BEGIN SOLUTION ... ### END SOLUTION) become this stub in the release.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Executing a submission: in full mode a cell may train a student for a few minutes (two
# epochs of a1 took up to 5 minutes on 2 busy cores), so a cell may run for 10 minutes.
# The teacher comes from the kdlab cache; warm it before grading (README.md) so that no
# cell has to train it.
c.Execute.timeout = 600
c.Execute.interrupt_on_timeout = True
# After a cell's reply its last output may take a while to arrive on a busy machine; with
# nbgrader's 4 s a correct submission failed as a whole ("Timeout waiting for IOPub output").
c.Execute.iopub_timeout = 60

# A test cell that a student deleted is put back (and graded) instead of being skipped.
c.OverwriteCells.add_missing_cells = True
