"""a3_segmentation_kd: pixel-wise distillation with an ignore index, confusion matrix, mIoU."""

from assignment_specs import Assignment, Bug, Diagnosis

A3_KL = """
log_q = F.log_softmax(student_logits / temperature, dim={dim})
log_p = F.log_softmax({teacher} / temperature, dim={dim})
kl = ({kl}).sum(dim=1)
labelled = targets != ignore_index
if not labelled.any():
    raise ValueError("every pixel is ignored")
return {reduce}
"""

A3_IOU = """
m = confusion.double()
tp = m.diag()
union = m.sum(dim=0) + m.sum(dim=1) - tp
iou = {iou}
return iou, float(iou.mean()), len(iou)
"""


def a3_kl(
    dim: int = 1,
    teacher: str = "teacher_logits.detach()",
    kl: str = "log_p.exp() * (log_p - log_q)",
    reduce: str = "kl[labelled].mean() * temperature**2",
) -> str:
    return A3_KL.format(dim=dim, teacher=teacher, kl=kl, reduce=reduce)


A3_BUGS = (
    Bug(
        "bug-mean-over-ignored",
        "pixel_kd_loss",
        a3_kl(reduce="kl.mean() * temperature**2"),
        "test_pixel_kd_loss",
        "averaging over ignored pixels",
    ),
    Bug(
        "bug-kl-wrong-dim",
        "pixel_kd_loss",
        a3_kl(dim=-1),
        "test_pixel_kd_loss",
        "KL over the wrong dimension",
    ),
    Bug(
        "bug-missing-t2",
        "pixel_kd_loss",
        a3_kl(reduce="kl[labelled].mean()"),
        "test_pixel_kd_loss",
        "missing T^2",
    ),
    Bug(
        "bug-teacher-gradients",
        "pixel_kd_loss",
        a3_kl(teacher="teacher_logits"),
        "test_pixel_kd_loss",
        "teacher receiving gradients",
    ),
    Bug(
        "bug-kl-swapped",
        "pixel_kd_loss",
        a3_kl(kl="log_q.exp() * (log_q - log_p)"),
        "test_pixel_kd_loss",
        "KL arguments swapped",
    ),
    Bug(
        "bug-confusion-transposed",
        "confusion_matrix",
        """
labelled = target != ignore_index
index = pred[labelled].long() * num_classes + target[labelled].long()
return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, -1)
""",
        "test_confusion_matrix",
        "rows and columns swapped",
    ),
    Bug(
        "bug-confusion-counts-ignored",
        "confusion_matrix",
        """
index = target.clamp(max=num_classes - 1).long() * num_classes + pred.long()
counts = torch.bincount(index.flatten(), minlength=num_classes * num_classes)
return counts.reshape(num_classes, num_classes)
""",
        "test_confusion_matrix",
        "ignored pixels counted",
    ),
    Bug(
        "bug-iou-nan-mean",
        "iou_scores",
        A3_IOU.format(iou="tp / union"),
        "test_iou_scores",
        "IoU divides by zero",
    ),
    Bug(
        "bug-iou-zero-division-error",
        "iou_scores",
        """
ious = []
for c in range(len(confusion)):
    tp = float(confusion[c, c])
    union = float(confusion[c, :].sum() + confusion[:, c].sum()) - tp
    ious.append(tp / union)
iou = torch.tensor(ious, dtype=torch.float64)
return iou, float(iou.mean()), len(ious)
""",
        "test_iou_scores",
        "IoU divides by zero",
    ),
    Bug(
        "bug-absent-as-zero",
        "iou_scores",
        A3_IOU.format(iou="tp / union.clamp(min=1)"),
        "test_iou_scores",
        "absent class counted as 0",
    ),
    Bug(
        "bug-absent-as-one",
        "iou_scores",
        A3_IOU.format(iou="(tp + 1e-6) / (union + 1e-6)"),
        "test_iou_scores",
        "absent class counted as 1",
    ),
)

PIX, CM, IOU = "pixel_kd_loss", "confusion_matrix", "iou_scores"
T_PIX, T_CM, T_IOU = (f"test_{name}" for name in (PIX, CM, IOU))
UNION = "m.sum(dim=0) + m.sum(dim=1) - tp"
IOU_LINE = "iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, math.nan))"
MIOU = "float(iou[defined].mean())"

A3_DIAGNOSES = (
    Diagnosis(PIX, PIX, "mean over every pixel, ignored ones included", "kl[labelled].mean()",
              "kl.mean()", T_PIX, "averaging over ignored pixels"),
    Diagnosis(PIX, PIX, "sum of labelled pixels divided by the batch size",
              "kl[labelled].mean()", "kl[labelled].sum() / len(targets)", T_PIX,
              "number of labelled pixels"),
    Diagnosis(PIX, PIX, "softmax and sum over the width", "dim=1", "dim=-1", T_PIX,
              "KL over the wrong dimension"),
    Diagnosis(PIX, PIX, "missing T^2", " * temperature**2", "", T_PIX, "missing T^2"),
    Diagnosis(PIX, PIX, "teacher not detached", "teacher_logits.detach()", "teacher_logits",
              T_PIX, "teacher receiving gradients"),
    Diagnosis(PIX, PIX, "KL direction swapped", "log_p.exp() * (log_p - log_q)",
              "log_q.exp() * (log_q - log_p)", T_PIX, "KL arguments swapped"),
    Diagnosis(PIX, PIX, "student logits not divided by T",
              "F.log_softmax(student_logits / temperature", "F.log_softmax(student_logits", T_PIX,
              "student's logits are not divided by T"),
    Diagnosis(PIX, PIX, "probabilities instead of log-probabilities", "(log_p - log_q)",
              "(log_p - log_q.exp())", T_PIX, "probabilities instead of log-probabilities"),
    Diagnosis(PIX, PIX, "log of softmax, not log_softmax",
              "F.log_softmax(student_logits / temperature, dim=1)",
              "torch.log(F.softmax(student_logits / temperature, dim=1))", T_PIX,
              "no numerical stability"),
    Diagnosis(PIX, PIX, "ignore_index argument unused", "targets != ignore_index",
              "targets != IGNORE_INDEX", T_PIX, "ignore_index not used"),
    Diagnosis(PIX, PIX, "all-ignored pixels give NaN", "if not labelled.any():", "if False:",
              T_PIX, "every pixel ignored"),
    Diagnosis(CM, CM, "rows and columns swapped",
              "target[labelled].long() * num_classes + pred[labelled].long()",
              "pred[labelled].long() * num_classes + target[labelled].long()", T_CM,
              "rows and columns swapped"),
    Diagnosis(CM, CM, "ignored pixels counted", "labelled = target != ignore_index",
              "labelled = torch.ones_like(target, dtype=torch.bool)", T_CM,
              "ignored pixels counted"),
    Diagnosis(CM, CM, "ignored pixels chosen by the prediction",
              "labelled = target != ignore_index", "labelled = pred != ignore_index", T_CM,
              "ignored pixels counted"),
    Diagnosis(CM, CM, "ignore_index argument unused in the count", "target != ignore_index",
              "target != IGNORE_INDEX", T_CM, "ignore_index not used"),
    Diagnosis(CM, CM, "bincount without minlength", ", minlength=num_classes * num_classes", "",
              T_CM, "minlength"),
    Diagnosis(CM, CM, "class outside [0, num_classes) accepted", "if classes.numel() and",
              "if False and", T_CM, "outside [0, num_classes)"),
    Diagnosis(IOU, IOU, "0/0 gives a NaN mIoU", MIOU, "float(iou.mean())", T_IOU,
              "IoU divides by zero"),
    Diagnosis(IOU, IOU, "0/0 in a Python loop", IOU_LINE,
              "iou = torch.tensor([float(a) / float(b) for a, b in zip(tp, union)], "
              "dtype=torch.float64)", T_IOU, "IoU divides by zero"),
    Diagnosis(IOU, IOU, "absent class counted as 0", "torch.full_like(tp, math.nan)",
              "torch.zeros_like(tp)", T_IOU, "absent class counted as 0"),
    Diagnosis(IOU, IOU, "absent class counted as 1 (smoothing)", IOU_LINE,
              "iou = (tp + 1e-6) / (union + 1e-6)", T_IOU, "absent class counted as 1"),
    Diagnosis(IOU, IOU, "true positives counted twice in the union", UNION,
              "m.sum(dim=0) + m.sum(dim=1)", T_IOU, "TP counted twice"),
    Diagnosis(IOU, IOU, "false positives left out (recall)", UNION, "m.sum(dim=1)", T_IOU,
              "false positives left out"),
    Diagnosis(IOU, IOU, "false negatives left out (precision)", UNION, "m.sum(dim=0)", T_IOU,
              "false negatives left out"),
    Diagnosis(IOU, IOU, "mIoU averages absent classes as 0", MIOU,
              "float(iou.nan_to_num(0.0).mean())", T_IOU, "counted as 0 in the mIoU"),
    Diagnosis(IOU, IOU, "count includes absent classes", "int(defined.sum())", "len(iou)", T_IOU,
              "classes counts the absent"),
    Diagnosis(IOU, IOU, "no class at all gives mIoU 0", MIOU,
              f"{MIOU} if defined.any() else 0.0", T_IOU, "no class occurs"),
)

ASSIGNMENT = Assignment(
    "a3_segmentation_kd",
    (
        ("test_pixel_kd_loss", 6),
        ("test_confusion_matrix", 3),
        ("test_iou_scores", 6),
    ),
    A3_BUGS,
    A3_DIAGNOSES,
    manual=(("written_answer", 2),),
)
