"""a3_segmentation_kd: pixel-wise distillation with an ignore index, confusion matrix, mIoU."""

from assignment_specs import Assignment, Bug

A3_KL = """
log_q = F.log_softmax(student_logits / temperature, dim={dim})
log_p = F.log_softmax({teacher} / temperature, dim={dim})
kl = ({kl}).sum(dim=1)
labelled = targets != ignore_index
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

ASSIGNMENT = Assignment(
    "a3_segmentation_kd",
    (
        ("test_pixel_kd_loss", 6),
        ("test_confusion_matrix", 3),
        ("test_iou_scores", 6),
    ),
    A3_BUGS,
)
