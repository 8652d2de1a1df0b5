"""Teachers and students for 28x28 single-channel images (MNIST, Fashion-MNIST).

Hinton, Vinyals and Dean (2015) distilled a 784-1200-1200-10 MLP teacher (dropout,
67 test errors on MNIST) into a 784-800-800-10 student (146 errors alone, 74 distilled).
``hinton_teacher`` and ``hinton_student`` build those sizes; ``TeacherCNN`` and
``StudentMLP`` are the course's default pair, sized for a 2-core CPU; ``StudentCNN`` is a
small CNN whose stages match the teacher's sizes, for the feature losses of notebook 07.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = [
    "MLP",
    "TeacherCNN",
    "StudentMLP",
    "StudentCNN",
    "hinton_teacher",
    "hinton_student",
    "conv_stage",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
]

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


def conv_stage(cin: int, cout: int) -> nn.Sequential:
    """``conv 3x3 (no bias) -> batch norm -> ReLU -> max-pool 2``: halves the image side."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class MLP(nn.Module):
    """Flatten, then ``Linear -> ReLU -> Dropout`` per hidden size, then a linear head."""

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (800, 800),
        num_classes: int = NUM_CLASSES,
        in_features: int = 28 * 28,
        dropout: float = 0.0,
    ):
        super().__init__()
        if not hidden_sizes or any(int(h) <= 0 for h in hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive ints, got {hidden_sizes!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for size in hidden_sizes:
            layers += [nn.Linear(width, int(size)), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class TeacherCNN(nn.Module):
    """Two ``conv-BN-ReLU-maxpool`` stages (``width`` and ``2 * width`` channels), then a
    dropout MLP head.

    With ``width=32``: about 0.83M parameters and 9 MFLOPs per image; about 91-92 % on
    Fashion-MNIST after a few epochs on a CPU.
    """

    def __init__(self, width: int = 32, num_classes: int = NUM_CLASSES, dropout: float = 0.3):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be a positive int, got {width}")
        self.features = nn.Sequential(conv_stage(1, width), conv_stage(width, 2 * width))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * 7 * 7, 256),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class StudentCNN(nn.Module):
    """Two ``conv-BN-ReLU-maxpool`` stages (``width``, ``2 * width`` channels; 14x14 then 7x7
    maps, like ``TeacherCNN``) and a linear head. ``width=8``: about 9k parameters, a
    hundredth of the teacher. ``features.0``/``features.1`` name the stages for hooks."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive int, got {width!r}")
        self.width = width
        self.features = nn.Sequential(conv_stage(1, width), conv_stage(width, 2 * width))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * width * 7 * 7, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class StudentMLP(MLP):
    """The course's student: a plain MLP, no convolutions (default 784-256-256-10)."""

    def __init__(self, hidden_sizes: Sequence[int] = (256, 256), num_classes: int = NUM_CLASSES):
        super().__init__(hidden_sizes, num_classes)


def hinton_teacher() -> MLP:
    """Hinton et al.'s MNIST teacher: 784-1200-1200-10 with dropout (p=0.5 on hidden units)."""
    return MLP((1200, 1200), dropout=0.5)


def hinton_student() -> MLP:
    """Hinton et al.'s MNIST student: 784-800-800-10, no regularisation."""
    return MLP((800, 800))
