"""kdlab.bert: DistilBERT's layer-subset initialisation checked by running the teacher's own
modules by hand; copies not shared; argument errors; BERT masking; training plumbing.
Tiny configurations keep it fast."""

import pytest
import torch
import torch.nn.functional as F

from kdlab.data import tokenizer as tok
from kdlab.data.tokenizer import Encoded
from kdlab.distill import bert as train
from kdlab.models import bert as models
from kdlab.recipes import distilbert as recipe

VOCAB = 60
SPECIAL = (0, 1, 2, 3, 4)  # [PAD], [UNK], [CLS], [SEP], [MASK]


def tiny_teacher(layers: int = 4, seed: int = 0):
    config = models.bert_config(VOCAB, layers=layers, hidden=16, heads=2, max_length=12)
    return models.bert_classifier(config, seed=seed)


def tiny_batch(n: int = 6, length: int = 10, seed: int = 0):
    """Right-padded token ids ``[CLS] ... [SEP] [PAD]...`` of random lengths, and labels."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    lengths[0] = length
    ids = torch.randint(len(SPECIAL), VOCAB, (n, length), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
    ids[:, 0] = 2
    ids[torch.arange(n), lengths - 1] = 3
    ids[mask == 0] = 0
    labels = torch.randint(0, 2, (n,), generator=g)
    return Encoded(ids, mask, labels)


@torch.no_grad()
def run_teacher_layers(teacher, layers, ids, mask):
    """The student's function written with the teacher's own modules: embeddings, the
    chosen encoder layers in order, pooler (tanh of a dense layer on [CLS]), classifier."""
    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    h = teacher.bert.embeddings(input_ids=ids)
    for index in layers:
        h = teacher.bert.encoder.layer[index](h, attention_mask=additive)
        h = h[0] if isinstance(h, tuple) else h
    pooled = torch.tanh(teacher.bert.pooler.dense(h[:, 0]))
    return h, teacher.classifier(pooled)


@pytest.mark.parametrize(
    "teacher_layers, layers, expected_layers",
    [
        (4, None, (0, 2)),
        (6, None, (0, 2, 4)),
        (5, None, (0, 2, 4)),
        (4, (1, 3), (1, 3)),
        (4, (3,), (3,)),
        (3, (0, 1, 2), (0, 1, 2)),
    ],
)
def test_student_computes_the_teacher_embedding_and_chosen_layers(
    teacher_layers, layers, expected_layers
):
    teacher = tiny_teacher(teacher_layers).eval()
    student = models.student_from_teacher(teacher, layers).eval()
    assert student.config.num_hidden_layers == len(expected_layers)
    batch = tiny_batch()
    with torch.no_grad():
        out = student(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            output_hidden_states=True,
        )
    hidden, logits = run_teacher_layers(
        teacher, expected_layers, batch.input_ids, batch.attention_mask
    )
    real = batch.attention_mask.bool()
    assert torch.allclose(out.hidden_states[-1][real], hidden[real], atol=1e-5)
    assert torch.allclose(out.logits, logits, atol=1e-5)


def test_a_different_layer_choice_gives_a_different_function():
    # Guards the test above: the check tells layer choices apart.
    teacher = tiny_teacher(4).eval()
    batch = tiny_batch()
    _, logits_02 = run_teacher_layers(teacher, (0, 2), batch.input_ids, batch.attention_mask)
    _, logits_13 = run_teacher_layers(teacher, (1, 3), batch.input_ids, batch.attention_mask)
    assert not torch.allclose(logits_02, logits_13, atol=1e-4)


def test_student_tensors_are_copies_and_training_it_leaves_the_teacher():
    teacher = tiny_teacher(4)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = models.student_from_teacher(teacher)
    teacher_ptrs = {p.data_ptr() for p in teacher.parameters()}
    assert not teacher_ptrs & {p.data_ptr() for p in student.parameters()}
    # embeddings and head start equal to the teacher's
    for key in (
        "bert.embeddings.word_embeddings.weight",
        "bert.pooler.dense.weight",
        "classifier.weight",
        "classifier.bias",
    ):
        assert torch.equal(student.state_dict()[key], before[key])
    batch = tiny_batch()
    optimizer = torch.optim.SGD(student.parameters(), lr=1.0)
    loss = F.cross_entropy(
        student(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits, batch.labels
    )
    loss.backward()
    optimizer.step()
    assert not torch.equal(
        student.state_dict()["bert.embeddings.word_embeddings.weight"],
        before["bert.embeddings.word_embeddings.weight"],
    )
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), f"{key} moved with the student"


def test_student_keeps_the_teacher_mode_and_class():
    teacher = tiny_teacher(4).eval()
    student = models.student_from_teacher(teacher)
    assert type(student) is type(teacher) and not student.training
    assert teacher.config.num_hidden_layers == 4  # the teacher's configuration is untouched


def test_student_from_an_mlm_teacher_copies_the_mlm_head():
    from transformers import BertForMaskedLM

    teacher = BertForMaskedLM(tiny_teacher(4).config).eval()
    student = models.student_from_teacher(teacher).eval()
    key = "cls.predictions.transform.dense.weight"
    assert torch.equal(student.state_dict()[key], teacher.state_dict()[key])
    batch = tiny_batch()
    with torch.no_grad():
        s = student(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert s.shape == (6, 10, VOCAB)


@pytest.mark.parametrize(
    "layers, match",
    [
        ((0, 4), r"out of range.*4 layers"),
        ((-1, 2), "out of range"),
        ((0, 2, 2), "repeated"),
        ((2, 0), "increasing order.*\\(0, 2\\)"),
        ((), "empty"),
        ((0.0, 2), "ints"),
        ((True,), "ints"),
        ("02", "sequence"),
        (3, "sequence"),
    ],
)
def test_layer_list_errors(layers, match):
    with pytest.raises(ValueError, match=match):
        models.student_from_teacher(tiny_teacher(4), layers)


def test_teacher_must_be_a_bert():
    with pytest.raises(ValueError, match="BERT model"):
        models.student_from_teacher(torch.nn.Linear(3, 2))


def test_default_layers_take_one_out_of_two():
    for n in range(1, 13):
        layers = models.default_layers(n)
        assert layers[0] == 0 and len(layers) == (n + 1) // 2
        assert all(b - a == 2 for a, b in zip(layers, layers[1:], strict=False))


def test_random_student_has_fresh_weights_of_the_same_shape():
    teacher = tiny_teacher(4)
    student = models.random_student(teacher, 2, seed=1)
    assert student.config.num_hidden_layers == 2
    copied = models.student_from_teacher(teacher)
    for key, value in copied.state_dict().items():
        assert student.state_dict()[key].shape == value.shape
    emb = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(student.state_dict()[emb], teacher.state_dict()[emb])
    with pytest.raises(ValueError, match="num_layers"):
        models.random_student(teacher, 5)


def test_bert_config_validates():
    with pytest.raises(ValueError, match="divisible"):
        models.bert_config(100, hidden=30, heads=4)
    with pytest.raises(ValueError, match="layers"):
        models.bert_config(100, layers=0)


def test_mask_tokens_follows_bert_rates_and_skips_specials_and_padding():
    g = torch.Generator().manual_seed(0)
    n, length = 400, 50
    ids = torch.randint(len(SPECIAL), 1000, (n, length), generator=g)
    ids[:, 0], ids[:, 1] = 2, 3
    mask = torch.ones(n, length, dtype=torch.long)
    mask[:, -10:] = 0
    ids[mask == 0] = 0
    corrupted, labels = train.mask_tokens(
        ids, mask, mask_token_id=4, vocab_size=1000, special_ids=SPECIAL, generator=g
    )
    chosen = labels != -100
    candidates = (mask == 1) & (ids >= len(SPECIAL))
    assert not (chosen & ~candidates).any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(corrupted[~chosen], ids[~chosen])
    rate = chosen.sum() / candidates.sum()
    assert 0.14 < rate < 0.16
    as_mask = (corrupted[chosen] == 4).float().mean()
    kept = (corrupted[chosen] == ids[chosen]).float().mean()
    assert 0.78 < as_mask < 0.82 and 0.08 < kept < 0.12


def test_mask_tokens_validates_probability():
    batch = tiny_batch()
    with pytest.raises(ValueError, match="probability"):
        train.mask_tokens(
            batch.input_ids,
            batch.attention_mask,
            mask_token_id=4,
            vocab_size=VOCAB,
            special_ids=SPECIAL,
            probability=0.0,
        )


def test_evaluation_on_length_buckets_equals_full_length_evaluation():
    model = tiny_teacher(2).eval()
    data = tiny_batch(n=23, seed=3)
    with torch.no_grad():
        logits = model(input_ids=data.input_ids, attention_mask=data.attention_mask).logits
    expected_accuracy = float((logits.argmax(1) == data.labels).float().mean())
    expected_loss = float(F.cross_entropy(logits, data.labels))
    scores = train.evaluate_classifier(model, data, batch_size=4)
    assert scores["accuracy"] == pytest.approx(expected_accuracy)
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_training_batches_cover_every_example_once_with_little_padding():
    data = tiny_batch(n=37, seed=4)
    seen = []
    for ids, mask, _ in tok.length_batches(data, 5, seed=0):
        assert mask[:, -1].any()  # cut to the longest sentence of the batch
        seen += [tuple(row[m.bool()].tolist()) for row, m in zip(ids, mask, strict=True)]
    full = [
        tuple(r[m.bool()].tolist())
        for r, m in zip(data.input_ids, data.attention_mask, strict=True)
    ]
    assert sorted(seen) == sorted(full)


def test_distil_trains_the_student_only_and_reports_the_three_terms():
    teacher = tiny_teacher(4)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = models.student_from_teacher(teacher)
    start = {k: v.clone() for k, v in student.state_dict().items()}
    data = tiny_batch(n=16)
    history = train.distil(
        student,
        teacher,
        data,
        epochs=2,
        batch_size=8,
        lr=1e-2,
        w_soft=1.0,
        w_hard=0.5,
        w_cos=2.0,
        val=data,
    )
    record = history.last
    assert {"loss", "soft_loss", "hard_loss", "cos_loss", "val_accuracy"} <= set(record)
    expected = record["soft_loss"] + 0.5 * record["hard_loss"] + 2.0 * record["cos_loss"]
    assert record["loss"] == pytest.approx(expected, rel=1e-5)
    assert not teacher.training
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(v, start[k]) for k, v in student.state_dict().items())
    with pytest.raises(ValueError, match="same model"):
        train.distil(teacher, teacher, data)


def test_pretrained_encoder_and_teacher_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path))

    class Tok:  # the attributes pretrain_mlm reads from a tokenizer
        mask_token_id = 4
        all_special_ids = list(SPECIAL)

    config = tiny_teacher(2).config
    data = tiny_batch(n=12)
    mlm_kwargs = dict(tokenizer=Tok(), epochs=1, batch_size=4, verbose=False)
    missing, info = recipe.pretrained_encoder(config, data, train_if_missing=False, **mlm_kwargs)
    assert missing is None and info["status"] == "not cached"
    encoder, info = recipe.pretrained_encoder(config, data, **mlm_kwargs)
    assert info["status"] == "trained" and len(info["summary"]["mlm"]["epochs"]) == 1
    assert encoder.config.hidden_dropout_prob == 0.0 and config.hidden_dropout_prob == 0.1
    encoder_again, info = recipe.pretrained_encoder(config, data, **mlm_kwargs)
    assert info["status"] == "loaded from cache"

    kwargs = dict(epochs=1, batch_size=4, verbose=False)
    first, info = recipe.bert_teacher(config, data, encoder=encoder, **kwargs)
    again, info_again = recipe.bert_teacher(config, data, encoder=encoder_again, **kwargs)
    assert (info["status"], info_again["status"]) == ("trained", "loaded from cache")
    for key, value in first.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)
    # the teacher starts from the encoder: with lr ~ 0 its embeddings stay the encoder's
    frozen, _ = recipe.bert_teacher(config, data, encoder=encoder, **(kwargs | {"lr": 1e-12}))
    assert torch.allclose(
        frozen.bert.embeddings.word_embeddings.weight,
        encoder.bert.embeddings.word_embeddings.weight,
    )
    _, no_mlm = recipe.bert_teacher(config, data, encoder=None, **kwargs)
    assert no_mlm["status"] == "trained"  # another encoder (none), another teacher
    wide = models.bert_config(config.vocab_size, layers=2, hidden=32, heads=2)
    with pytest.raises(ValueError, match="does not fit"):
        recipe.bert_teacher(wide, data, encoder=encoder, **kwargs)


def test_random_tokens_wrapper_gives_logits_for_bench():
    from kdlab import bench

    model = tiny_teacher(2)
    wrapped = models.RandomTokens(model)
    assert wrapped(torch.randn(3, 12)).shape == (3, 2)
    assert bench.latency(wrapped, (12,), 2, min_run_time=0.01).median_s > 0
