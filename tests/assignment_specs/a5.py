"""a5_beyond_logits: the FitNets hint loss, the attention map and the RKD distance loss."""

from assignment_specs import Assignment, Bug, Diagnosis

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
    d = torch.cdist(x, x).clamp_min(1e-6)
    pairs = ~torch.eye(len(x), dtype=torch.bool)
    return d[pairs] / d[pairs].mean()

return F.smooth_l1_loss(normalised(student), normalised(teacher))
""",
        "test_rkd_distance",
        "gradients flowing into the teacher",
    ),
)

HINT, ATT, RKD = "hint_loss", "attention_map", "rkd_distance"
T_HINT, T_ATT, T_RKD = (f"test_{name}" for name in (HINT, ATT, RKD))
NORMALISED = "d[pairs] / d[pairs].mean()"

A5_DIAGNOSES = (
    Diagnosis(HINT, "HintLoss", "regressor on the teacher side",
              "nn.Conv2d(student_channels, teacher_channels",
              "nn.Conv2d(teacher_channels, student_channels",
              T_HINT, "regressor on the teacher side"),
    Diagnosis(HINT, "HintLoss", "teacher not detached", "teacher_features.detach()",
              "teacher_features", T_HINT, "gradients flowing into the teacher"),
    Diagnosis(HINT, "HintLoss", "sum instead of mean", ".pow(2).mean()", ".pow(2).sum()", T_HINT,
              "sum instead of mean"),
    Diagnosis(HINT, "HintLoss", "summed per example, averaged over the batch", ".pow(2).mean()",
              ".pow(2).sum(dim=(1, 2, 3)).mean()", T_HINT, "summed over channels and positions"),
    Diagnosis(HINT, "HintLoss", "absolute instead of squared difference", ".pow(2).mean()",
              ".abs().mean()", T_HINT, "absolute difference"),
    Diagnosis(HINT, "HintLoss", "3x3 regressor", "kernel_size=1)", "kernel_size=3, padding=1)",
              T_HINT, "1x1"),
    Diagnosis(HINT, "HintLoss", "different spatial sizes accepted",
              "if student_features.shape[2:] != teacher_features.shape[2:]:", "if False:", T_HINT,
              "different spatial sizes"),
    Diagnosis(ATT, ATT, "not normalised", "return q / ", "return q  # ", T_ATT,
              "attention map not normalised"),
    Diagnosis(ATT, ATT, "summed over the wrong dimension", ".sum(dim=1)", ".sum(dim=-1)", T_ATT,
              "summed over the wrong dimension"),
    Diagnosis(ATT, ATT, "power p after the sum", ".abs().pow(p).sum(dim=1)",
              ".abs().sum(dim=1).pow(p)", T_ATT, "power p after the sum"),
    Diagnosis(ATT, ATT, "absolute value missing", "features.abs().pow(p)", "features.pow(p)",
              T_ATT, "absolute value"),
    Diagnosis(ATT, ATT, "normalised over the whole batch", "q.norm(dim=1, keepdim=True)",
              "q.norm()", T_ATT, "each example's map"),
    Diagnosis(ATT, ATT, "normalised by the sum (L1)", "q.norm(dim=1, keepdim=True)",
              "q.sum(dim=1, keepdim=True)", T_ATT, "L1 norm"),
    Diagnosis(ATT, ATT, "all-zero features give NaN", ".clamp_min(1e-12)", "", T_ATT,
              "all-zero feature map"),
    Diagnosis(RKD, "rkd_distance_loss", "distances not normalised", NORMALISED, "d[pairs]", T_RKD,
              "distances not normalised by their mean"),
    Diagnosis(RKD, "rkd_distance_loss", "teacher embeddings not detached",
              "normalised(teacher.detach())", "normalised(teacher)", T_RKD,
              "gradients flowing into the teacher"),
    Diagnosis(RKD, "rkd_distance_loss", "MSE instead of smooth L1", "F.smooth_l1_loss",
              "F.mse_loss", T_RKD, "MSE instead of smooth L1"),
    Diagnosis(RKD, "rkd_distance_loss", "L1 instead of smooth L1", "F.smooth_l1_loss",
              "F.l1_loss", T_RKD, "L1 instead of smooth L1"),
    Diagnosis(RKD, "rkd_distance_loss", "pairs i = j kept", NORMALISED,
              "d.flatten() / d.flatten().mean()", T_RKD, "pairs i = j"),
    Diagnosis(RKD, "rkd_distance_loss", "squared distances", "torch.cdist(x, x)",
              "(torch.cdist(x, x) ** 2)", T_RKD, "squared distances"),
    Diagnosis(RKD, "rkd_distance_loss", "all-equal embeddings give NaN", ".clamp_min(1e-6)", "",
              T_RKD, "all distances are 0"),
    Diagnosis(RKD, "rkd_distance_loss", "batch of 1 accepted", "if len(student) < 2:",
              "if False:", T_RKD, "at least 2"),
)

ASSIGNMENT = Assignment(
    "a5_beyond_logits",
    (
        ("test_hint_loss", 3),
        ("test_attention_map", 2),
        ("test_rkd_distance", 3),
    ),
    A5_BUGS,
    A5_DIAGNOSES,
    manual=(("written_answer", 2),),
)
