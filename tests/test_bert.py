"""kdlab.models.bert, kdlab.distill.bert and kdlab.recipes.distilbert: DistilBERT's
layer-subset initialisation checked by running the teacher's own modules by hand; copies not
shared; argument errors; BERT masking; the BERT trainers on the one Distiller loop, checked
step by step against hand-written steps; the recipe. Tiny configurations keep it fast."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from kdlab import runtime
from kdlab.data import tokenizer as tok
from kdlab.data.tokenizer import Encoded, LengthBatches
from kdlab.distill import Distiller
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


# -- the BERT trainers on the one Distiller loop ------------------------------------------


class Tok:  # the attributes pretrain_mlm reads from a tokenizer
    mask_token_id = 4
    all_special_ids = list(SPECIAL)


def hand_adamw(model, lr):
    """BERT's AdamW written out: weight decay 0.01 on matrices, none on biases/LayerNorm."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() > 1], "weight_decay": 0.01},
            {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
        ],
        lr=lr,
    )


def test_bert_trainers_are_distillers_on_length_batches():
    teacher = tiny_teacher(4)
    student = models.student_from_teacher(teacher)
    for trainer in (
        train.BertFineTuner(tiny_teacher(2), device="cpu"),
        train.BertDistiller(student, teacher, device="cpu"),
    ):
        assert isinstance(trainer, Distiller) and trainer.lr_schedule == "linear"
        assert isinstance(trainer.optimizer, torch.optim.AdamW)
        assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.01, 0.0]


def test_fine_tuner_epoch_equals_a_hand_written_step():
    data = tiny_batch(n=7, seed=2)
    model, reference = tiny_teacher(2, seed=3), tiny_teacher(2, seed=3)  # dropout 0.1 on
    history = train.fine_tune(model, data, epochs=1, batch_size=8, lr=1e-2, seed=4)
    # one batch, one step: the warm-up schedule is at factor 1 (one step of warm-up)
    ((ids, mask, labels),) = tok.length_batches(data, 8, seed=4)
    runtime.seed_everything(4)  # the same dropout draws
    reference.train()
    optimizer = hand_adamw(reference, 1e-2)
    logits = reference(input_ids=ids, attention_mask=mask).logits
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    record = history.last
    assert set(record) == {"loss", "train_accuracy", "seconds"}
    assert record["loss"] == float(loss.detach())
    assert record["train_accuracy"] == int((logits.argmax(1) == labels).sum()) / len(labels)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_bert_distiller_step_equals_the_hand_written_triple_loss():
    teacher = tiny_teacher(4, seed=5)
    student = models.student_from_teacher(teacher)
    reference = models.student_from_teacher(teacher)
    data = tiny_batch(n=6, seed=6)
    weights = {"temperature": 3.0, "w_soft": 0.5, "w_hard": 2.0, "w_cos": 1.5}
    trainer = train.BertDistiller(student, teacher, lr=5e-3, seed=1, device="cpu", **weights)
    step = trainer.train_step(data.input_ids, data.attention_mask, data.labels)
    runtime.seed_everything(1)
    reference.train()
    optimizer = hand_adamw(reference, 5e-3)  # train_step alone: no schedule, the full lr
    ids, mask, labels = data.input_ids, data.attention_mask, data.labels
    with torch.no_grad():
        t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    s = reference(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    soft = F.kl_div(
        F.log_softmax(s.logits / 3.0, -1), F.softmax(t.logits / 3.0, -1), reduction="batchmean"
    )
    real = mask.bool()
    cos = (1 - F.cosine_similarity(s.hidden_states[-1][real], t.hidden_states[-1][real])).mean()
    hard = F.cross_entropy(s.logits, labels)
    loss = 0.5 * 9.0 * soft + 2.0 * hard + 1.5 * cos
    loss.backward()
    optimizer.step()
    assert set(step) == {"loss", "soft_loss", "hard_loss", "cos_loss", "train_accuracy"}
    assert step["loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert step["cos_loss"] == pytest.approx(float(cos.detach()), rel=1e-5)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(student.state_dict()[key], value, rtol=1e-4, atol=1e-6)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_bert_schedule_warms_up_then_decays_once_per_batch():
    data = tiny_batch(n=20, seed=1)
    trainer = train.BertFineTuner(tiny_teacher(2), lr=1e-3, warmup=0.3, device="cpu")
    seen = []
    original = trainer.train_step

    def spy(*batch):
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return original(*batch)

    trainer.train_step = spy
    trainer.fit(LengthBatches(data, 4), 2, progress=False)
    steps, warm = 10, 3  # 5 batches a pass, 2 passes; int(0.3 * 10) steps of warm-up
    expected = [1e-3 * min((t + 1) / warm, (steps - t) / (steps - warm)) for t in range(steps)]
    assert seen == pytest.approx(expected, rel=1e-12)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.0


@pytest.mark.parametrize("progress", [False, True])
def test_each_epoch_draws_the_next_seeds_length_batches(progress):
    data = tiny_batch(n=13, seed=2)
    seen = []

    class Recording(train.BertFineTuner):
        def loss_parts(self, ids, mask, labels):
            seen.append(ids.clone())
            return super().loss_parts(ids, mask, labels)

    Recording(tiny_teacher(2), device="cpu").fit(
        LengthBatches(data, 4, seed=7), 3, progress=progress
    )
    expected = [b[0] for k in range(3) for b in tok.length_batches(data, 4, seed=7 + k)]
    assert len(seen) == len(expected) == 3 * 4
    assert all(torch.equal(a, b) for a, b in zip(seen, expected, strict=True))


def test_length_batches_iterable():
    data = tiny_batch(n=11, seed=3)
    batches = LengthBatches(data, 3, seed=5)
    assert len(batches) == math.ceil(11 / 3) == 4
    for k in range(2):
        drawn = [b[0] for b in batches]
        expected = [b[0] for b in tok.length_batches(data, 3, seed=5 + k)]
        assert all(torch.equal(a, b) for a, b in zip(drawn, expected, strict=True))
    sorted_once, sorted_again = (
        list(LengthBatches(data, 3, None)),
        list(LengthBatches(data, 3, None)),
    )
    assert all(torch.equal(a[0], b[0]) for a, b in zip(sorted_once, sorted_again, strict=True))
    with pytest.raises(ValueError, match="batch_size"):
        LengthBatches(data, 0)
    with pytest.raises(ValueError, match="Encoded"):
        LengthBatches([(1, 2, 3)], 2)


def test_histories_keep_their_keys():
    data, val = tiny_batch(n=10, seed=1), tiny_batch(n=5, seed=2)
    tuned = train.fine_tune(tiny_teacher(2), data, epochs=2, batch_size=4, val=val)
    assert [set(e) for e in tuned.epochs] == [
        {"loss", "train_accuracy", "val_accuracy", "seconds"}
    ] * 2
    teacher = tiny_teacher(4)
    distilled = train.distil(
        models.student_from_teacher(teacher), teacher, data, epochs=1, batch_size=4
    )
    assert set(distilled.last) == {
        "loss",
        "soft_loss",
        "hard_loss",
        "cos_loss",
        "train_accuracy",
        "seconds",
    }
    from transformers import BertForMaskedLM

    mlm = BertForMaskedLM(tiny_teacher(2).config)
    pretrained = train.pretrain_mlm(mlm, data, tokenizer=Tok(), epochs=2, batch_size=4)
    assert [set(e) for e in pretrained.epochs] == [{"mlm_loss", "seconds"}] * 2
    assert pretrained.last["mlm_loss"] > 0


def test_mlm_skips_batches_with_nothing_to_predict():
    from transformers import BertForMaskedLM

    data = tiny_batch(n=8, length=10, seed=4)
    data.attention_mask[:4] = 0  # four rows of [CLS] [SEP] only: nothing can be masked
    data.attention_mask[:4, :2] = 1
    data.input_ids[:4] = 0
    data.input_ids[:4, 0], data.input_ids[:4, 1] = 2, 3
    data.attention_mask[4:] = 1  # four full rows, where masking always picks tokens
    data.input_ids[4:, 1:-1] = torch.arange(5, 13)
    data.input_ids[4:, 0], data.input_ids[4:, -1] = 2, 3
    model = BertForMaskedLM(tiny_teacher(2).config)
    trainer = train.MaskedLMTrainer(model, tokenizer=Tok(), probability=0.9, device="cpu")
    history = trainer.fit(LengthBatches(data, 4), 3, progress=False)
    steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert steps == {3}  # one step per epoch: the all-special batch was skipped
    assert len(history) == 3
    only_specials = Encoded(data.input_ids[:4], data.attention_mask[:4], data.labels[:4])
    with pytest.raises(ValueError, match="no batches"):
        train.pretrain_mlm(model, only_specials, tokenizer=Tok(), batch_size=4)


def test_bert_trainer_arguments_are_checked():
    teacher = tiny_teacher(4)
    student = models.student_from_teacher(teacher)
    with pytest.raises(ValueError, match="lr must be > 0"):
        train.fine_tune(tiny_teacher(2), tiny_batch(), lr=0.0)
    with pytest.raises(ValueError, match="epochs"):
        train.fine_tune(tiny_teacher(2), tiny_batch(), epochs=0)
    with pytest.raises(ValueError, match="w_cos"):
        train.BertDistiller(student, teacher, w_cos=-1.0)
    with pytest.raises(ValueError, match="needs a teacher"):
        train.BertDistiller(student, None)
    with pytest.raises(ValueError, match="hidden sizes"):
        wide = models.bert_classifier(models.bert_config(VOCAB, layers=2, hidden=32, heads=2))
        train.distil(wide, teacher, tiny_batch())
    with pytest.raises(ValueError, match="BertForMaskedLM"):
        train.pretrain_mlm(student, tiny_batch(), tokenizer=Tok())
    from transformers import BertForMaskedLM

    with pytest.raises(ValueError, match="mask_token_id"):
        train.pretrain_mlm(BertForMaskedLM(student.config), tiny_batch(), tokenizer=object())
    mlm = train.MaskedLMTrainer(BertForMaskedLM(student.config), tokenizer=Tok())
    with pytest.raises(ValueError, match="no validation"):
        mlm.fit(LengthBatches(tiny_batch(), 2), 1, val=tiny_batch(), progress=False)
    assert all(p.grad is None for p in mlm.student.parameters())  # refused before training
    with pytest.raises(ValueError, match="BERT batches"):
        train.BertFineTuner(tiny_teacher(2)).fit([(torch.zeros(2, 3),)], 1, progress=False)


# -- the recipe -------------------------------------------------------------------------

# The values the cached 20-epoch MLM encoder and the teachers were trained with: the cache
# keys hold them, so a change here retrains those models.
FULL = {
    "vocab_size": 3000,
    "mlm_sentences": None,
    "train_sentences": 8000,
    "teacher": {"layers": 6, "hidden": 128, "heads": 4},
    "mlm_epochs": 20,
    "mlm_lr": 1e-3,
    "mlm_dropout": 0.0,
    "mlm_batch_size": 64,
    "mlm_seed": 0,
    "mlm_short_epochs": 1,
    "epochs": 4,
    "lr": 3e-4,
    "batch_size": 32,
    "triple": {"temperature": 2.0, "w_soft": 1.0, "w_hard": 1.0, "w_cos": 1.0},
}
FAST = FULL | {
    "vocab_size": 2000,
    "mlm_sentences": 1500,
    "train_sentences": 600,
    "teacher": {"layers": 4, "hidden": 64, "heads": 2},
    "mlm_epochs": 1,
    "epochs": 3,
    "lr": 1e-3,
}


def test_recipe_values_are_pinned():
    import json

    full, fast = recipe.BertRecipe(), recipe.BertRecipe().fast()
    # byte for byte, as a cache key or a saved result would see them
    assert json.dumps(dataclasses.asdict(full)) == json.dumps(FULL)
    assert json.dumps(dataclasses.asdict(fast)) == json.dumps(FAST)
    assert fast.teacher == recipe.TeacherShape(4, 64, 2) and full.triple == recipe.TripleLoss()


def test_recipe_is_frozen_and_checked():
    r = recipe.BertRecipe()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.epochs = 2
    with pytest.raises(TypeError):
        dataclasses.replace(r, epoch=2)  # a misspelt name is an error, not a silent new key
    assert dataclasses.replace(r, epochs=2).epochs == 2 and r.epochs == 4
    with pytest.raises(ValueError, match="BertRecipe.lr"):
        recipe.BertRecipe(lr=0)
    with pytest.raises(ValueError, match="TeacherShape.heads"):
        recipe.TeacherShape(heads=0)
    with pytest.raises(ValueError, match="TripleLoss.w_cos"):
        recipe.TripleLoss(w_cos=-1)
    with pytest.raises(ValueError, match="teacher must be a TeacherShape"):
        recipe.BertRecipe(teacher={"layers": 2})
