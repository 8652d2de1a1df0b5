"""kdlab.data.base.ExampleSet: the shared container of ImageSet, SentenceSet and AerialPatches.

Subsets are checked against the formula notebooks, benchmarks and cached models rely on:
``torch.randperm(len, generator=torch.Generator().manual_seed(seed))[:n]``.
"""

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from kdlab.data import AerialPatches, ExampleSet, ImageSet, SentenceSet, batches
from kdlab.data.patches import make_patches
from kdlab.data.scenes import synthetic_aerial

N = 30


def drawn(n: int, seed: int, length: int = N) -> list[int]:
    return torch.randperm(length, generator=torch.Generator().manual_seed(seed))[:n].tolist()


def images(name: str = "tiny") -> ImageSet:
    x = torch.arange(N, dtype=torch.float32).view(N, 1, 1, 1).expand(N, 1, 28, 28).clone()
    return ImageSet(x, torch.arange(N) % 3, name, ("a", "b", "c"), "test")


def sentences(name: str = "tiny") -> SentenceSet:
    return SentenceSet([f"sentence {i}" for i in range(N)], torch.arange(N) % 2, name, "test")


def patches(name: str = "tiny") -> AerialPatches:
    x = torch.arange(N, dtype=torch.uint8).view(N, 1, 1, 1).expand(N, 3, 4, 4).clone()
    tiles = tuple(f"Tile {i}" for i in range(N))
    return AerialPatches(
        x, torch.arange(N, dtype=torch.uint8).view(N, 1, 1).expand(N, 4, 4), tiles, name
    )


def ids(data) -> list[int]:
    """Which original example each entry is (the builders above number them)."""
    if isinstance(data, ImageSet):
        return data.x[:, 0, 0, 0].long().tolist()
    if isinstance(data, SentenceSet):
        return [int(s.split()[1]) for s in data.sentences]
    return data.images[:, 0, 0, 0].long().tolist()


BUILDERS = [images, sentences, patches]


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize(("n", "seed"), [(1, 0), (7, 0), (7, 3), (29, 11)])
def test_subset_draws_exactly_the_documented_permutation(build, n, seed):
    data = build()
    got = ids(data.subset(n, seed=seed))
    expected = drawn(n, seed)
    # AerialPatches keeps the drawn patches in their original (scene) order
    assert got == (sorted(expected) if build is patches else expected)
    assert ids(data.subset(n, seed)) == got  # the same seed, the same subset


def test_subset_keeps_every_field_paired_and_the_whole_set_fields():
    a, s, p = images().subset(9, 5), sentences().subset(9, 5), patches().subset(9, 5)
    assert a.y.tolist() == [i % 3 for i in ids(a)]
    assert (a.name, a.classes, a.source) == ("tiny", ("a", "b", "c"), "test")
    assert s.labels.tolist() == [i % 2 for i in ids(s)] and isinstance(s.sentences, list)
    assert p.tiles == tuple(f"Tile {i}" for i in ids(p)) and isinstance(p.tiles, tuple)
    assert p.labels[:, 0, 0].tolist() == ids(p) and p.name == "tiny"


@pytest.mark.parametrize("build", BUILDERS)
def test_subset_of_everything_is_the_set_itself_and_nonpositive_sizes_fail(build):
    data = build()
    assert data.subset(None) is data and data.subset(N) is data and data.subset(N + 5) is data
    assert len(data) == N and len(data.subset(N - 1)) == N - 1
    for bad in (0, -3):
        with pytest.raises(ValueError, match="subset size must be positive"):
            data.subset(bad)


@pytest.mark.parametrize("build", BUILDERS)
def test_synthetic_is_read_from_the_name(build):
    assert build("synthetic-digits").synthetic and build("synthetic").synthetic
    assert not build("fashion-mnist").synthetic and not build("not-synthetic").synthetic


def test_take_picks_in_the_given_order_and_rejects_masks_and_floats():
    data = sentences()
    assert ids(data.take(torch.tensor([4, 1, 4]))) == [4, 1, 4]
    assert ids(images().take(torch.tensor([2, 0], dtype=torch.int32))) == [2, 0]
    for bad in (data.labels == 1, torch.tensor([1.0, 2.0]), torch.tensor([[1, 2]]), [1, 2]):
        with pytest.raises(TypeError, match="1-D tensor of integer positions"):
            data.take(bad)


def test_without_class_keeps_order_and_other_classes():
    kept = images().without_class(1)
    assert ids(kept) == [i for i in range(N) if i % 3 != 1]


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: ImageSet(torch.zeros(3, 1, 28, 28), torch.zeros(2), "n", ("a",), "s"), "3 x, 2 y"),
        (lambda: SentenceSet(["a", "b"], torch.tensor([1]), "n", "s"), "2 sentences, 1 labels"),
        (
            lambda: AerialPatches(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), ("t",), "n"),
            "1 tiles",
        ),
    ],
)
def test_fields_of_different_lengths_are_refused(make, match):
    with pytest.raises(ValueError, match=f"{match}; they must match"):
        make()


def test_loader_batches_tensor_sets_and_refuses_sentences():
    data = images()
    got = [y for _, y in data.loader(8, shuffle=True, seed=2)]
    expected = [y for _, y in batches(data.x, data.y, batch_size=8, shuffle=True, seed=2)]
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    with pytest.raises(TypeError, match="encode"):
        sentences().loader(8)
    with pytest.raises(ValueError, match="batch_size"):
        data.loader(0)


def test_a_new_container_needs_only_its_fields():
    @dataclass
    class Pairs(ExampleSet):
        a: Tensor
        b: tuple[str, ...]
        name: str
        source: str

        _per_example = ("a", "b")

    pairs = Pairs(torch.arange(10), tuple("abcdefghij"), "synthetic-pairs", "here")
    sub = pairs.subset(4, seed=1)
    assert sub.a.tolist() == drawn(4, 1, 10) and sub.b == tuple("abcdefghij"[i] for i in sub.a)
    assert pairs.synthetic and len(sub) == 4 and sub.source == "here"

    @dataclass
    class Nothing(ExampleSet):
        name: str
        source: str

    with pytest.raises(TypeError, match="per-example fields"):
        Nothing("x", "y")


def test_patches_say_where_they_came_from():
    scenes = synthetic_aerial(n_tiles=1, per_tile=1, size=64, seed=0)
    assert make_patches(scenes, size=32, name="synthetic-aerial").source == ""
    made = make_patches(scenes, size=32, name="synthetic-aerial", source="generated")
    assert made.source == "generated" and made.subset(2, seed=0).source == "generated"
