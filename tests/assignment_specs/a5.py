"""a5_beyond_logits: the FitNets hint loss, the attention map and the RKD distance loss."""

from assignment_specs import Assignment, Bug

A5_BUGS = (
    Bug(
        "bug-regressor-teacher-side",
        "hint_loss",
        """
def __init__(self, student_channels: int, teacher_channels: int):
    super().__init__()
    self.regressor = nn.Conv2d(teacher_channels, student_channels, kernel_size=1)

def forward(self, student_features, teacher_features):
    return (student_features - self.regressor(teacher_features.detach())).pow(2).mean()
""",
        "test_hint_loss",
        "regressor on the teacher side",
    ),
    Bug(
        "bug-hint-teacher-gradient",
        "hint_loss",
        """
def __init__(self, student_channels: int, teacher_channels: int):
    super().__init__()
    self.regressor = nn.Conv2d(student_channels, teacher_channels, kernel_size=1)

def forward(self, student_features, teacher_features):
    return (self.regressor(student_features) - teacher_features).pow(2).mean()
""",
        "test_hint_loss",
        "gradients flowing into the teacher",
    ),
    Bug(
        "bug-attention-not-normalised",
        "attention_map",
        """
return features.abs().pow(p).sum(dim=1).flatten(1)
""",
        "test_attention_map",
        "attention map not normalised",
    ),
    Bug(
        "bug-distances-not-normalised",
        "rkd_distance",
        """
def distances(x):
    d = torch.cdist(x, x)
    return d[~torch.eye(len(x), dtype=torch.bool)]

return F.smooth_l1_loss(distances(student), distances(teacher.detach()))
""",
        "test_rkd_distance",
        "distances not normalised by their mean",
    ),
    Bug(
        "bug-rkd-teacher-gradient",
        "rkd_distance",
        """
def normalised(x):
    d = torch.cdist(x, x)
    pairs = ~torch.eye(len(x), dtype=torch.bool)
    return d[pairs] / d[pairs].mean()

return F.smooth_l1_loss(normalised(student), normalised(teacher))
""",
        "test_rkd_distance",
        "gradients flowing into the teacher",
    ),
)

ASSIGNMENT = Assignment(
    "a5_beyond_logits",
    (
        ("test_hint_loss", 3),
        ("test_attention_map", 2),
        ("test_rkd_distance", 3),
    ),
    A5_BUGS,
)
