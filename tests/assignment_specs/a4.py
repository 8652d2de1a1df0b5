"""a4_distilbert: DistilBERT's layer-subset initialisation, the masked cosine loss and the
triple loss."""

from assignment_specs import Assignment, Bug

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

ASSIGNMENT = Assignment(
    "a4_distilbert",
    (
        ("test_student_from_teacher", 4),
        ("test_student_is_a_copy", 2),
        ("test_masked_cosine_loss", 3),
        ("test_triple_loss", 3),
    ),
    A4_BUGS,
)
