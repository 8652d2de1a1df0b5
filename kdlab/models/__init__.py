"""Models only: the networks of the course, each file one family.

- ``mnist``: for 28x28 images, ``TeacherCNN``, ``StudentMLP``, ``StudentCNN`` and Hinton et
  al.'s MLP sizes;
- ``unet``: the U-Net teacher and its slim student for segmentation (Ronneberger et al. 2015);
- ``bert``: small BERTs and DistilBERT's student-from-teacher surgery (import it as
  ``kdlab.models.bert``: it loads ``transformers``);
- ``outputs``: a model's logits over a whole tensor, in batches.
"""

from kdlab.models.mnist import (
    IMAGE_SHAPE,
    MLP,
    NUM_CLASSES,
    StudentCNN,
    StudentMLP,
    TeacherCNN,
    conv_stage,
    hinton_student,
    hinton_teacher,
)
from kdlab.models.outputs import logits_of
from kdlab.models.unet import SlimUNet, UNet

__all__ = [
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "MLP",
    "TeacherCNN",
    "StudentMLP",
    "StudentCNN",
    "conv_stage",
    "hinton_teacher",
    "hinton_student",
    "logits_of",
    "UNet",
    "SlimUNet",
]
