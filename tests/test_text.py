"""kdlab.data.sst2 and kdlab.data.tokenizer: the SST-2 reader on files written here, the
synthetic set, the WordPiece tokenizer (round trips against a normalisation written
independently) and encoding."""

import re
import unicodedata

import pytest
import torch

from kdlab.data import sst2 as text
from kdlab.data.sst2 import SentenceSet, load_sst2, read_tsv, synthetic_sentiment
from kdlab.data.tokenizer import (
    MAX_LENGTH,
    SPECIAL_TOKENS,
    encode,
    hub_tokenizer,
    train_wordpiece,
    wordpiece_tokenizer,
)

ROWS = {
    "train": [("a gorgeous , witty film", 1), ("dull and lifeless", 0), ("not bad at all", 1)],
    "dev": [("it 's a charming journey .", 1), ("unflinchingly bleak", 0)],
    "test": [("uneasy mishmash of styles", 0)],
}


def write_sst2(root, rows=ROWS):
    folder = root / "sst2"
    folder.mkdir(parents=True)
    for split, pairs in rows.items():
        body = "".join(f"{s}\t{y}\n" for s, y in pairs)
        (folder / f"{split}.tsv").write_text("sentence\tlabel\n" + body, encoding="utf-8")
    return folder


@pytest.fixture
def sst2_root(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path))
    write_sst2(tmp_path)
    return tmp_path


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_DATA", str(tmp_path / "empty"))


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_load_sst2_reads_what_was_written(sst2_root, split):
    data = load_sst2(split)
    assert data.sentences == [s for s, _ in ROWS[split]]
    assert data.labels.tolist() == [y for _, y in ROWS[split]]
    assert data.name == "sst2" and not data.synthetic
    assert data.labels.dtype == torch.long


def test_subset_is_a_seeded_random_subset(sst2_root):
    full = load_sst2("train")
    a, b = load_sst2("train", limit=2, seed=3), load_sst2("train", limit=2, seed=3)
    assert a.sentences == b.sentences and len(a) == 2
    pairs = set(zip(full.sentences, full.labels.tolist(), strict=True))
    assert set(zip(a.sentences, a.labels.tolist(), strict=True)) <= pairs
    assert len(load_sst2("train", limit=100)) == len(full)
    with pytest.raises(ValueError, match="positive"):
        full.subset(0)


@pytest.mark.parametrize(
    "content, match",
    [
        ("", "expected the header"),
        ("text\tlabel\nfine\t1\n", "expected the header"),
        ("sentence\tlabel\nfine\t2\n", "line 2"),
        ("sentence\tlabel\nno tab here\n", "line 2"),
        ("sentence\tlabel\na\tb\t1\n", "line 2"),
        ("sentence\tlabel\n\n", "no labelled sentences"),
    ],
)
def test_read_tsv_errors_name_the_problem(tmp_path, content, match):
    path = tmp_path / "bad.tsv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_tsv(path)


def test_unknown_split(sst2_root):
    with pytest.raises(ValueError, match="unknown split"):
        load_sst2("validation")


def test_missing_data_says_where_to_get_sst2(no_data):
    with pytest.raises(FileNotFoundError, match="GLUE") as info:
        load_sst2("train")
    assert "KDLAB_DATA" in str(info.value)


def test_missing_data_without_data_dir(monkeypatch):
    monkeypatch.delenv("KDLAB_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="KDLAB_DATA is not set"):
        load_sst2("dev")


def test_synthetic_fallback_says_it_is_synthetic(no_data):
    train, dev = (
        load_sst2("train", synthetic_fallback=True),
        load_sst2("dev", synthetic_fallback=True),
    )
    assert train.synthetic and "synthetic" in train.name and "synthetic" in train.source
    assert train.sentences[:20] != dev.sentences[:20]  # different splits, different sentences
    assert len(load_sst2("train", synthetic_fallback=True, limit=50)) == 50


def test_synthetic_labels_follow_the_stated_rule():
    data = synthetic_sentiment(500, seed=1, noise=0.0)
    positive = set(text._POSITIVE)
    for sentence, label in zip(data.sentences, data.labels.tolist(), strict=True):
        words = sentence.split()
        expected = any(w in positive for w in words) != ("not" in words)
        assert label == int(expected), sentence
    assert 0.3 < data.labels.float().mean() < 0.7


def test_synthetic_noise_flips_about_that_share():
    clean = synthetic_sentiment(4000, seed=2, noise=0.0)
    noisy = synthetic_sentiment(4000, seed=2, noise=0.1)
    assert clean.sentences == noisy.sentences  # same draws, only labels differ
    flipped = float((clean.labels != noisy.labels).float().mean())
    assert 0.07 < flipped < 0.13


def test_synthetic_is_seeded_and_validates():
    assert synthetic_sentiment(30, seed=4).sentences == synthetic_sentiment(30, seed=4).sentences
    assert synthetic_sentiment(30, seed=4).sentences != synthetic_sentiment(30, seed=5).sentences
    with pytest.raises(ValueError, match="positive"):
        synthetic_sentiment(0)
    with pytest.raises(ValueError, match="noise"):
        synthetic_sentiment(10, noise=0.5)


def test_sentence_set_checks_lengths():
    with pytest.raises(ValueError, match="must match"):
        SentenceSet(["a", "b"], torch.tensor([1]), "x", "y")


# ------------------------------------------------------------------ tokenizer

CORPUS = (
    synthetic_sentiment(300, seed=0).sentences
    + [
        "Un café très CHARMANT, isn't it?",
        "Hide new secretions from the parental units.",
        "a gorgeous , witty , seductive movie !",
    ]
    * 3
)


def reference_normalise(s: str) -> str:
    """BERT's uncased normalisation written independently: lower case, accents removed
    (Unicode decomposition minus combining marks), punctuation split off as its own word."""
    s = unicodedata.normalize("NFD", s.lower())
    s = "".join(c for c in s if unicodedata.category(c) != "Mn")
    return " ".join(re.findall(r"\w+|[^\w\s]", s))


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(CORPUS, vocab_size=300, min_frequency=1)


@pytest.mark.parametrize(
    "sentence",
    [
        "Un café très CHARMANT, isn't it?",
        "the film is not really dull",
        "A GORGEOUS, witty... movie!",
        "new witty units hide the charm",
    ],
)
def test_decode_encode_round_trip_gives_normalised_sentence(tokenizer, sentence):
    ids = tokenizer(sentence)["input_ids"]
    assert tokenizer.unk_token_id not in ids  # every character was in the training corpus
    assert tokenizer.decode(ids, skip_special_tokens=True) == reference_normalise(sentence)


def test_special_tokens_and_wrapping(tokenizer):
    ids = tokenizer("the film")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    for token in SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id or token == "[UNK]"
    assert len(tokenizer) <= 300


def test_save_and_load_give_the_same_ids(tokenizer, tmp_path):
    from transformers import PreTrainedTokenizerFast

    tokenizer.save_pretrained(str(tmp_path))
    again = PreTrainedTokenizerFast.from_pretrained(str(tmp_path))
    for sentence in CORPUS[-3:] + ["completely unseen zebra words"]:
        assert again(sentence)["input_ids"] == tokenizer(sentence)["input_ids"]


def test_pieces_are_numbered_in_a_fixed_order(tokenizer):
    # The trainer numbers pieces in hash-map order (huggingface/tokenizers#1794): the same
    # pieces got other ids in each training run. kdlab renumbers them: specials, then sorted.
    by_id = [t for t, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
    assert by_id == [*SPECIAL_TOKENS, *sorted(set(by_id) - set(SPECIAL_TOKENS))]
    assert sorted(tokenizer.get_vocab().values()) == list(range(len(by_id)))


def test_wordpiece_tokenizer_is_cached_next_to_the_models(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path))
    first, status = wordpiece_tokenizer(CORPUS, vocab_size=300, min_frequency=1, verbose=False)
    again, status_again = wordpiece_tokenizer(
        CORPUS, vocab_size=300, min_frequency=1, verbose=False
    )
    assert (status, status_again) == ("trained", "loaded from cache")
    assert len(list((tmp_path / "models").glob("wordpiece-*/tokenizer.json"))) == 1
    for sentence in CORPUS[-3:]:
        assert again(sentence)["input_ids"] == first(sentence)["input_ids"]
    _, other = wordpiece_tokenizer(CORPUS[:50], vocab_size=300, min_frequency=1, verbose=False)
    assert other == "trained"  # other sentences, another tokenizer


def test_train_wordpiece_validates():
    with pytest.raises(ValueError, match="empty"):
        train_wordpiece([])
    with pytest.raises(ValueError, match="vocab_size"):
        train_wordpiece(["a b"], vocab_size=10)


def test_hub_tokenizer_refuses_when_offline(monkeypatch):
    monkeypatch.setenv("KDLAB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="KDLAB_OFFLINE"):
        hub_tokenizer()


# ------------------------------------------------------------------ encoding


def test_encode_pads_and_masks_to_max_length(tokenizer):
    data = SentenceSet(
        ["the film", "this movie was not very fresh , and the music"],
        torch.tensor([1, 0]),
        "t",
        "t",
    )
    enc = encode(tokenizer, data, max_length=12)
    assert enc.input_ids.shape == enc.attention_mask.shape == (2, 12)
    for row, sentence in enumerate(data.sentences):
        n = len(tokenizer(sentence)["input_ids"])
        assert enc.attention_mask[row].tolist() == [1] * min(n, 12) + [0] * (12 - min(n, 12))
        pads = enc.input_ids[row][enc.attention_mask[row] == 0]
        assert (pads == tokenizer.pad_token_id).all()
    long_row = enc.input_ids[1]
    assert long_row[0] == tokenizer.cls_token_id and long_row[-1] == tokenizer.sep_token_id
    assert torch.equal(enc.labels, data.labels)


def test_encode_default_length_and_loader(tokenizer):
    data = synthetic_sentiment(10)
    enc = encode(tokenizer, data)
    assert enc.input_ids.shape == (10, MAX_LENGTH)
    batches = list(enc.loader(4))
    assert [len(b[2]) for b in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([b[0] for b in batches]), enc.input_ids)


def test_encode_validates(tokenizer):
    with pytest.raises(ValueError, match="max_length"):
        encode(tokenizer, synthetic_sentiment(3), max_length=2)
