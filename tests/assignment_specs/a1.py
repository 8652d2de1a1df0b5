"""a1_soft_targets: the soft-target loss, the distillation step and a distilled student."""

from assignment_specs import Assignment, Bug

A1_BUGS = (
    Bug(
        "bug-missing-t2",
        "soft_target_loss",
        """
log_q = F.log_softmax(student_logits / T, dim=1)
log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
""",
        "test_soft_target_loss",
        "missing T^2",
    ),
    Bug(
        "bug-mean-not-batchmean",
        "soft_target_loss",
        """
log_q = F.log_softmax(student_logits / T, dim=1)
log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
return F.kl_div(log_q, log_p, reduction="mean", log_target=True) * T**2
""",
        "test_soft_target_loss",
        "'mean' instead of 'batchmean'",
    ),
    Bug(
        "bug-kl-swapped",
        "soft_target_loss",
        """
log_q = F.log_softmax(student_logits / T, dim=1)
log_p = F.log_softmax(teacher_logits.detach() / T, dim=1)
return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * T**2
""",
        "test_soft_target_loss",
        "KL arguments swapped",
    ),
    Bug(
        "bug-alpha-on-soft",
        "distillation_loss",
        """
hard = F.cross_entropy(student_logits, targets)
soft = soft_target_loss(student_logits, teacher_logits, T)
return (1 - alpha) * hard + alpha * soft
""",
        "test_distillation_loss",
        "alpha applied to the wrong term",
    ),
    Bug(
        "bug-teacher-train-mode",
        "distillation_step",
        """
student.train()
with torch.no_grad():
    teacher_logits = teacher(x)
loss = distillation_loss(student(x), teacher_logits, y, T, alpha)
optimizer.zero_grad()
loss.backward()
optimizer.step()
return loss.item()
""",
        "test_distillation_step",
        "teacher left in train mode",
    ),
)

ASSIGNMENT = Assignment(
    "a1_soft_targets",
    (
        ("test_softmax_with_temperature", 2),
        ("test_soft_target_loss", 4),
        ("test_distillation_loss", 2),
        ("test_distillation_step", 4),
        ("test_distilled_student", 3),
    ),
    A1_BUGS,
)
