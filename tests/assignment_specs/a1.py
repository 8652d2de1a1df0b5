"""a1_soft_targets: the soft-target loss, the distillation step and a distilled student."""

from assignment_specs import Assignment, Bug, Diagnosis

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

SM, SOFT, MIX, STEP = (
    "softmax_with_temperature",
    "soft_target_loss",
    "distillation_loss",
    "distillation_step",
)
T_SM, T_SOFT, T_MIX, T_STEP = (f"test_{name}" for name in (SM, SOFT, MIX, STEP))

A1_DIAGNOSES = (
    Diagnosis(SM, SM, "softmax over the batch", "dim=1)", "dim=0)", T_SM,
              "softmax over the wrong dimension"),
    Diagnosis(SM, SM, "logits multiplied by T", "logits / T", "logits * T", T_SM,
              "logits multiplied by T"),
    Diagnosis(SM, SM, "temperature ignored", "logits / T", "logits", T_SM, "temperature ignored"),
    Diagnosis(SM, SM, "exp by hand, overflows", "F.softmax(logits / T, dim=1)",
              "torch.exp(logits / T) / torch.exp(logits / T).sum(dim=1, keepdim=True)", T_SM,
              "no numerical stability"),
    Diagnosis(SM, SM, "T <= 0 accepted", "if T <= 0:", "if False:", T_SM, "T <= 0"),
    Diagnosis(SOFT, SOFT, "missing T^2", " * T**2", "", T_SOFT, "missing T^2"),
    Diagnosis(SOFT, SOFT, "reduction mean instead of batchmean", 'reduction="batchmean"',
              'reduction="mean"', T_SOFT, "'mean' instead of 'batchmean'"),
    Diagnosis(SOFT, SOFT, "KL direction swapped", "F.kl_div(log_q, log_p,",
              "F.kl_div(log_p, log_q,", T_SOFT, "KL arguments swapped"),
    Diagnosis(SOFT, SOFT, "student logits not divided by T", "F.log_softmax(student_logits / T",
              "F.log_softmax(student_logits", T_SOFT, "student's logits are not divided by T"),
    Diagnosis(SOFT, SOFT, "teacher logits not divided by T", "teacher_logits.detach() / T",
              "teacher_logits.detach()", T_SOFT, "teacher's logits are not divided by T"),
    Diagnosis(SOFT, SOFT, "probabilities instead of log-probabilities", "F.kl_div(log_q,",
              "F.kl_div(log_q.exp(),", T_SOFT, "probabilities instead of log-probabilities"),
    Diagnosis(SOFT, SOFT, "log_target missing", ", log_target=True", "", T_SOFT,
              "log_target=True"),
    Diagnosis(SOFT, SOFT, "teacher not detached", "teacher_logits.detach()", "teacher_logits",
              T_SOFT, "the teacher receives gradients"),
    Diagnosis(SOFT, SOFT, "log of softmax, not log_softmax",
              "F.log_softmax(student_logits / T, dim=1)",
              "torch.log(F.softmax(student_logits / T, dim=1))", T_SOFT, "no numerical stability"),
    Diagnosis(SOFT, SOFT, "log-softmax over the batch", "dim=1)", "dim=0)", T_SOFT,
              "softmax over the wrong dimension"),
    Diagnosis(SOFT, SOFT, "empty batch not refused", "if len(student_logits) == 0:", "if False:",
              T_SOFT, "empty batch"),
    Diagnosis(MIX, MIX, "alpha on the soft term", "alpha * hard + (1 - alpha) * soft",
              "(1 - alpha) * hard + alpha * soft", T_MIX, "alpha applied to the wrong term"),
    Diagnosis(MIX, MIX, "hard loss at temperature T", "F.cross_entropy(student_logits, targets)",
              "F.cross_entropy(student_logits / T, targets)", T_MIX,
              "the hard loss must use the student's logits at T=1"),
    Diagnosis(MIX, MIX, "teacher and student swapped in the soft term",
              "soft_target_loss(student_logits, teacher_logits, T)",
              "soft_target_loss(teacher_logits, student_logits, T)", T_MIX,
              "teacher and student swapped"),
    Diagnosis(MIX, MIX, "alpha outside [0, 1] accepted", "if not 0 <= alpha <= 1:", "if False:",
              T_MIX, "alpha must be in [0, 1]"),
    Diagnosis(STEP, STEP, "teacher in train mode", "teacher.eval()", "pass", T_STEP,
              "teacher left in train mode"),
    Diagnosis(STEP, STEP, "student not in train mode", "student.train()", "pass", T_STEP,
              "student not in train mode"),
    Diagnosis(STEP, STEP, "teacher forward records a graph", "with torch.no_grad():", "if True:",
              T_STEP, "teacher forward not under torch.no_grad()"),
    Diagnosis(STEP, STEP, "zero_grad missing", "optimizer.zero_grad()", "pass", T_STEP,
              "gradients accumulate across steps"),
    Diagnosis(STEP, STEP, "step before backward", "loss.backward()\n    optimizer.step()",
              "optimizer.step()\n    loss.backward()", T_STEP,
              "optimizer.step() before loss.backward()"),
    Diagnosis(STEP, STEP, "loss returned as a tensor", "return loss.item()", "return loss", T_STEP,
              "Python float"),
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
    A1_DIAGNOSES,
    manual=(("written_answer", 2),),
)
