"""The course's standard set-ups, one file per track, shared by notebooks, assignments and
benchmarks so that both sides of a comparison run the same recipe.

- ``mnist_family``: the MNIST-family splits, the cached CNN teacher and the MLP student's
  soft-target recipe (notebooks 02-04 and 07-09, assignment a1); re-exported here;
- ``limited_data``: Hinton et al.'s 3 %-of-the-data experiment, with soft targets and with
  function matching (notebook 02, ``benchmarks/limited_data.py``);
- ``pipeline``: the cached distilled student and the distilled fine-tune after pruning
  (notebooks 04 and 09, ``benchmarks/compression.py``);
- ``beyond_logits``: the method table (``METHODS``, ``TRAINING``), ``compare`` and
  ``run_method`` (notebook 07, ``benchmarks/methods.py``);
- ``patient_teacher``: the transfer set-up, distillation on views and a scored run
  (notebook 08, ``benchmarks/patient_teacher.py``);
- ``segmentation``: ``SegmentationRecipe``, the aerial splits and patches, the cached U-Net
  teacher and the student's training (notebook 05, ``benchmarks/segmentation.py``);
- ``edge_camera``: ``EdgeCameraRecipe``, the land-cover splits, the cached DenseNet teacher
  and pre-trained SqueezeNet student, and the student trained further with or without the
  teacher; ``edge_deployment``: its int8 flows, ``torch.export`` and cost tables (notebook
  10, ``benchmarks/edge_camera.py``);
- ``distilbert``: ``BertRecipe``, the cached MLM encoder and the BERT teacher (notebook 06,
  ``benchmarks/distilbert.py``).
"""

from kdlab.recipes.mnist_family import (
    STUDENT_RECIPE,
    Splits,
    StudentRecipe,
    mnist_family_splits,
    train_student,
    trained_teacher,
)

__all__ = [
    "Splits",
    "mnist_family_splits",
    "trained_teacher",
    "train_student",
    "StudentRecipe",
    "STUDENT_RECIPE",
]
