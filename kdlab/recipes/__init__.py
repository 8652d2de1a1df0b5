"""The course's standard set-ups, one file per track, shared by notebooks, assignments and
benchmarks so that both sides of a comparison run the same recipe.

- ``mnist_family``: the MNIST-family splits, the cached CNN teacher and the MLP student's
  soft-target recipe (notebooks 02-04 and 07-09, assignment a1); re-exported here;
- ``beyond_logits``: the method table of notebook 07 and ``benchmarks/methods.py``;
- ``patient_teacher``: distillation on views (notebook 08);
- ``pipeline``: distilled fine-tuning after pruning (notebooks 04 and 09);
- ``segmentation``: the aerial track's teacher and student recipe (notebook 05);
- ``distilbert``: the SST-2 recipe, the MLM encoder and the BERT teacher (notebook 06;
  import it as ``kdlab.recipes.distilbert``: it loads ``transformers``).
"""

from kdlab.recipes.mnist_family import (
    STUDENT_RECIPE,
    Splits,
    mnist_family_splits,
    train_student,
    trained_teacher,
)

__all__ = ["Splits", "mnist_family_splits", "trained_teacher", "train_student", "STUDENT_RECIPE"]
