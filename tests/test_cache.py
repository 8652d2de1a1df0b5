"""kdlab.cache: train once, load after; a new configuration or a corrupt file retrains."""

from pathlib import Path

import pytest
import torch
from torch import nn

from kdlab.cache import cache_key, cached_model


@pytest.fixture(autouse=True)
def own_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("KDLAB_CACHE", str(tmp_path))
    return tmp_path


class Trainer:
    """Counts its calls and moves every weight, so loading can be told apart from building."""

    def __init__(self):
        self.calls = 0

    def __call__(self, model: nn.Module) -> dict:
        self.calls += 1
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        return {"calls": self.calls, "accuracy": 0.5}


def build() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_trains_once_then_loads(own_cache):
    train = Trainer()
    config = {"epochs": 2, "lr": 1e-3}
    first, info = cached_model("net", config, build, train, verbose=False)
    assert info["status"] == "trained" and train.calls == 1
    assert Path(info["path"]).is_file() and Path(info["path"]).parent.parent == own_cache
    # build() draws fresh random weights: equal weights mean they were loaded
    second, info2 = cached_model("net", config, build, train, verbose=False)
    assert info2["status"] == "loaded from cache" and train.calls == 1
    assert_same_weights(first, second)
    assert info2["summary"] == {"calls": 1, "accuracy": 0.5} and info2["config"] == config
    assert info2["path"] == info["path"] and info2["train_seconds"] >= 0
    assert not first.training and not second.training


def test_train_if_missing_false_only_loads(own_cache):
    train = Trainer()
    model, info = cached_model("net", {"e": 1}, build, train, train_if_missing=False)
    assert model is None and info["status"] == "not cached" and train.calls == 0
    assert not list(own_cache.glob("models/*.pt"))
    first, _ = cached_model("net", {"e": 1}, build, train, verbose=False)
    again, info = cached_model("net", {"e": 1}, build, train, train_if_missing=False)
    assert info["status"] == "loaded from cache" and train.calls == 1
    assert_same_weights(first, again)


def test_says_whether_it_trained_or_loaded(capsys):
    cached_model("talker", {}, build, Trainer())
    cached_model("talker", {}, build, Trainer())
    out = capsys.readouterr().out
    assert "talker: trained" in out and "talker: loaded from cache" in out


def test_changed_config_or_name_trains_again():
    train = Trainer()
    cached_model("net", {"epochs": 2}, build, train, verbose=False)
    _, info = cached_model("net", {"epochs": 3}, build, train, verbose=False)
    assert info["status"] == "trained" and train.calls == 2
    _, info = cached_model("other", {"epochs": 3}, build, train, verbose=False)
    assert info["status"] == "trained" and train.calls == 3
    _, info = cached_model("net", {"epochs": 2}, build, train, verbose=False)
    assert info["status"] == "loaded from cache" and train.calls == 3


@pytest.mark.parametrize("damage", ["garbage", "empty", "wrong-shape"])
def test_corrupt_file_is_retrained(damage):
    train = Trainer()
    _, info = cached_model("net", {"seed": 0}, build, train, verbose=False)
    path = Path(info["path"])
    if damage == "garbage":
        path.write_bytes(b"not a checkpoint" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        torch.save({"state_dict": nn.Linear(7, 7).state_dict(), "info": {}}, path)
    model, info = cached_model("net", {"seed": 0}, build, train, verbose=False)
    assert info["status"] == "trained" and train.calls == 2
    again, info = cached_model("net", {"seed": 0}, build, train, verbose=False)
    assert info["status"] == "loaded from cache" and train.calls == 2
    assert_same_weights(model, again)


def test_no_temporary_files_left(own_cache):
    cached_model("net", {}, build, Trainer(), verbose=False)
    assert [p.suffix for p in (own_cache / "models").iterdir()] == [".pt"]


def test_cache_key_is_stable_and_sensitive():
    config = {"epochs": 2, "lr": 0.001, "sizes": [1, 2, 3], "data": "fashion-mnist"}
    key = cache_key(config)
    assert key == cache_key(dict(reversed(list(config.items()))))  # key order does not matter
    assert len(key) == 16 and all(c in "0123456789abcdef" for c in key)
    for change in ({"epochs": 3}, {"lr": 0.002}, {"sizes": [1, 2, 4]}, {"seed": 0}):
        assert cache_key(config | change) != key, change
    assert cache_key({}) != cache_key({"a": None})


def test_cache_key_rejects_unserialisable_config():
    with pytest.raises(ValueError, match="JSON"):
        cache_key({"model": nn.Linear(2, 2)})
