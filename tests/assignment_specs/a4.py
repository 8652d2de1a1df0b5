"""a4_distilbert: DistilBERT's layer-subset initialisation, the masked cosine loss and the
triple loss."""

from assignment_specs import Assignment, Bug, Diagnosis

# student_from_teacher built from a fresh model and load_state_dict, with holes to fill:
# the default layer choice, the teacher layer that student layer k copies, and the
# embeddings and head copies (left out by two of the bugs).
A4_BUILD = """
num_layers = len(teacher.bert.encoder.layer)
chosen = tuple({default}) if layers is None else tuple(layers)
if not chosen or any(not isinstance(i, int) or not 0 <= i < num_layers for i in chosen):
    raise ValueError(f"layers {{chosen}} out of range")
if list(chosen) != sorted(set(chosen)):
    raise ValueError(f"layers {{chosen}} must be in increasing order, each layer once")
config = copy.deepcopy(teacher.config)
config.num_hidden_layers = len(chosen)
student = type(teacher)(config)
{embeddings}
for k, i in enumerate(chosen):
    student.bert.encoder.layer[k].load_state_dict(teacher.bert.encoder.layer[{source}].state_dict())
{head}
return student.train(teacher.training)
"""
A4_EMBEDDINGS = "student.bert.embeddings.load_state_dict(teacher.bert.embeddings.state_dict())"
A4_HEAD = """student.bert.pooler.load_state_dict(teacher.bert.pooler.state_dict())
student.classifier.load_state_dict(teacher.classifier.state_dict())"""


def a4_build(
    default: str = "range(0, num_layers, 2)",
    source: str = "i",
    embeddings: str = A4_EMBEDDINGS,
    head: str = A4_HEAD,
) -> str:
    return A4_BUILD.format(default=default, source=source, embeddings=embeddings, head=head)


A4_BUGS = (
    Bug(
        "bug-layers-off-by-one",
        "student_from_teacher",
        a4_build(default="range(1, num_layers, 2)"),
        "test_student_from_teacher",
        "off by one",
    ),
    Bug(
        "bug-first-k-layers",
        "student_from_teacher",
        a4_build(source="k"),
        "test_student_from_teacher",
        "first k layers",
    ),
    Bug(
        "bug-embeddings-not-copied",
        "student_from_teacher",
        a4_build(embeddings=""),
        "test_student_from_teacher",
        "embeddings not copied",
    ),
    Bug(
        "bug-head-not-copied",
        "student_from_teacher",
        a4_build(head=""),
        "test_student_from_teacher",
        "head not copied",
    ),
    Bug(
        "bug-shared-tensors",
        "student_from_teacher",
        """
num_layers = len(teacher.bert.encoder.layer)
chosen = tuple(range(0, num_layers, 2)) if layers is None else tuple(layers)
if not chosen or any(not isinstance(i, int) or not 0 <= i < num_layers for i in chosen):
    raise ValueError(f"layers {chosen} out of range")
if list(chosen) != sorted(set(chosen)):
    raise ValueError(f"layers {chosen} must be in increasing order, each layer once")
config = copy.deepcopy(teacher.config)
config.num_hidden_layers = len(chosen)
student = type(teacher)(config)
student.bert.embeddings = teacher.bert.embeddings
student.bert.encoder.layer = nn.ModuleList([teacher.bert.encoder.layer[i] for i in chosen])
student.bert.pooler = teacher.bert.pooler
student.classifier = teacher.classifier
return student.train(teacher.training)
""",
        "test_student_is_a_copy",
        "shared instead of copied",
    ),
    Bug(
        "bug-cosine-over-padding",
        "masked_cosine_loss",
        """
cos = F.cosine_similarity(student_hidden, teacher_hidden.detach(), dim=-1)
return ((1 - cos) * attention_mask).sum() / attention_mask.numel()
""",
        "test_masked_cosine_loss",
        "averaged over padding",
    ),
    Bug(
        "bug-cosine-teacher-gradient",
        "masked_cosine_loss",
        """
keep = attention_mask.bool()
if not keep.any():
    raise ValueError("no real token")
cos = F.cosine_similarity(student_hidden[keep], teacher_hidden[keep], dim=-1)
return (1 - cos).mean()
""",
        "test_masked_cosine_loss",
        "gradients flowing into the teacher",
    ),
    Bug(
        "bug-weights-swapped",
        "triple_loss",
        """
soft = soft_target_loss(student_logits, teacher_logits, temperature)
hard = F.cross_entropy(student_logits, labels)
cos = masked_cosine_loss(student_hidden, teacher_hidden, attention_mask)
return w_hard * soft + w_soft * hard + w_cos * cos
""",
        "test_triple_loss",
        "weights applied to the wrong terms",
    ),
)

SFT, COS, TRI = "student_from_teacher", "masked_cosine_loss", "triple_loss"
T_SFT, T_COPY, T_COS, T_TRI = (
    "test_student_from_teacher",
    "test_student_is_a_copy",
    "test_masked_cosine_loss",
    "test_triple_loss",
)
RET = "return student"
PAIR = "student_hidden[keep], teacher_hidden.detach()[keep]"
COS_LINE = f"cos = F.cosine_similarity({PAIR}, dim=-1)"

A4_DIAGNOSES = (
    Diagnosis(SFT, SFT, "layers (1, 3, ...): off by one", "range(0, num_layers, 2)",
              "range(1, num_layers, 2)", T_SFT, "off by one"),
    Diagnosis(SFT, SFT, "the first k layers", "student.bert.encoder.layer[i] for i in chosen",
              "student.bert.encoder.layer[k] for k in range(len(chosen))", T_SFT,
              "first k layers"),
    Diagnosis(SFT, SFT, "config.num_hidden_layers not updated",
              "student.config.num_hidden_layers = len(chosen)", "pass", T_SFT,
              "num_hidden_layers"),
    Diagnosis(SFT, SFT, "embeddings left at random", RET,
              f"student.bert.embeddings = type(teacher)(teacher.config).bert.embeddings\n    {RET}",
              T_SFT, "embeddings not copied"),
    Diagnosis(SFT, SFT, "head left at random", RET,
              f"student.classifier = type(teacher)(teacher.config).classifier\n    {RET}", T_SFT,
              "head not copied"),
    Diagnosis(SFT, SFT, "the teacher itself returned", "student = copy.deepcopy(teacher)",
              "student = teacher", T_SFT, "a new model"),
    Diagnosis(SFT, SFT, "empty layer list accepted", "if not chosen:", "if False:", T_SFT,
              "(empty)"),
    Diagnosis(SFT, SFT, "negative layer index accepted", "not 0 <= i < num_layers",
              "not i < num_layers", T_SFT, "(out of range)"),
    Diagnosis(SFT, SFT, "repeated or unordered layers accepted",
              "if list(chosen) != sorted(set(chosen)):", "if False:", T_SFT, "(repeated)"),
    Diagnosis(SFT, SFT, "embeddings shared with the teacher", RET,
              f"student.bert.embeddings = teacher.bert.embeddings\n    {RET}", T_COPY,
              "shared instead of copied"),
    Diagnosis(COS, COS, "mean over every position, padding included", PAIR,
              "student_hidden, teacher_hidden.detach()", T_COS, "averaged over padding"),
    Diagnosis(COS, COS, "padding zeroed but counted", "return (1 - cos).mean()",
              "return (1 - cos).sum() / attention_mask.numel()", T_COS, "averaged over padding"),
    Diagnosis(COS, COS, "mean of per-sentence means", f"{COS_LINE}\n    return (1 - cos).mean()",
              "cos = F.cosine_similarity(student_hidden, teacher_hidden.detach(), dim=-1)\n"
              "    m = attention_mask.float()\n"
              "    per = ((1 - cos) * m).sum(1) / m.sum(1).clamp(min=1)\n"
              "    return per[m.sum(1) > 0].mean()", T_COS, "averaged per sentence first"),
    Diagnosis(COS, COS, "teacher not detached", "teacher_hidden.detach()[keep]",
              "teacher_hidden[keep]", T_COS, "gradients flowing into the teacher"),
    Diagnosis(COS, COS, "cosine over the tokens", "dim=-1)", "dim=0)", T_COS,
              "cosine over the wrong dimension"),
    Diagnosis(COS, COS, "integer mask used as an index", "keep = attention_mask.bool()",
              "keep = attention_mask", T_COS, "attention_mask.bool()"),
    Diagnosis(COS, COS, "all-padding batch gives NaN", "if not keep.any():", "if False:", T_COS,
              "no real token"),
    Diagnosis(COS, COS, "cosine by hand, NaN for a zero vector",
              f"F.cosine_similarity({PAIR}, dim=-1)",
              "(student_hidden[keep] * teacher_hidden.detach()[keep]).sum(-1) / "
              "(student_hidden[keep].norm(dim=-1) * teacher_hidden.detach()[keep].norm(dim=-1))",
              T_COS, "zero hidden state"),
    Diagnosis(TRI, TRI, "soft and hard weights swapped", "w_soft * soft + w_hard * hard",
              "w_hard * soft + w_soft * hard", T_TRI, "weights applied to the wrong terms"),
    Diagnosis(TRI, TRI, "soft term without T^2",
              "soft_target_loss(student_logits, teacher_logits, temperature)",
              "soft_target_loss(student_logits, teacher_logits, temperature) / temperature**2",
              T_TRI, "missing T^2"),
    Diagnosis(TRI, TRI, "hard loss at temperature T", "F.cross_entropy(student_logits, labels)",
              "F.cross_entropy(student_logits / temperature, labels)", T_TRI,
              "the hard loss must use the student's logits at T=1"),
    Diagnosis(TRI, TRI, "teacher and student swapped in the soft term",
              "soft_target_loss(student_logits, teacher_logits,",
              "soft_target_loss(teacher_logits, student_logits,", T_TRI,
              "teacher and student swapped"),
    Diagnosis(TRI, TRI, "a weight of 0 still computes its term", " if w_cos else 0.0", "", T_TRI,
              "a weight of 0 skips its term"),
)

ASSIGNMENT = Assignment(
    "a4_distilbert",
    (
        ("test_student_from_teacher", 4),
        ("test_student_is_a_copy", 2),
        ("test_masked_cosine_loss", 3),
        ("test_triple_loss", 3),
    ),
    A4_BUGS,
    A4_DIAGNOSES,
    manual=(("written_answer", 2),),
)
