"""Training with several processes (kdlab.distill.parallel): two CPU processes under torchrun
(gloo) train the weights one process trains from the same global batches and seed; rank 0
alone writes the cache; a failing rank ends the run with its error instead of a hang.

This file is also the program torchrun starts: ``python tests/test_ddp.py worker MODE OUT``.

Tolerance: the two runs compute the same mathematical update (DDP averages the gradients of
two half-batch means, which is the gradient of the global batch mean), but float32 sums
the examples in another order and grouping, so each step differs by a few units in the last
place (~1e-7 relative); Adam then carries these differences along the run. Over the 15 steps
here the largest weight differs by 3e-8 (measured); we allow ``atol=1e-5``, 300 times that,
so that another BLAS or CPU passes. A real fault is far larger: training on half batches
without the averaging (what a rank alone does) moves the weights 3e-2 from the reference.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from kdlab.data import batches
from kdlab.data.tokenizer import Encoded, LengthBatches, length_batches
from kdlab.distill import Distiller, parallel
from kdlab.models import MLP

N, BATCH, EPOCHS, N_VAL = 100, 24, 3, 40  # 5 steps per epoch, the last of 4 examples
ATOL = 1e-5
FAIL_MESSAGE = "rank 1 failed on purpose"


def data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def tiny_model(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP((16,), dropout=0.0)  # no dropout, no batch norm: nothing depends on the rank


def train(model: torch.nn.Module, **kwargs) -> Distiller:
    x, y = data(N, 0)
    distiller = Distiller(model, lr=3e-3, lr_schedule="cosine", seed=0, device="cpu", **kwargs)
    val = batches(*data(N_VAL, 1), batch_size=20)
    train_data = batches(x, y, batch_size=BATCH, shuffle=True, seed=0)
    distiller.fit(train_data, EPOCHS, val, progress=False)
    return distiller


# -- the program torchrun starts ----------------------------------------------------------------


def worker(mode: str, out: Path) -> None:
    import torch.distributed as dist

    from kdlab.cache import cached_model

    torch.set_num_threads(1)
    assert parallel.init(), "expected two processes"
    if mode == "fail":

        def fail(epoch, record):
            if parallel.rank() == 1:
                raise RuntimeError(FAIL_MESSAGE)

        distiller = Distiller(tiny_model(), lr=3e-3, device="cpu")
        x, y = data(N, 0)
        distiller.fit(batches(x, y, batch_size=BATCH), 50, progress=False, callbacks=[fail])
        return
    distiller = train(tiny_model())
    assert distiller.distributed
    states = [None] * parallel.world_size()
    dist.all_gather_object(states, distiller.student.state_dict())

    def train_cached(model):
        train(model)
        return {"rank": parallel.rank()}

    cached, info = cached_model("ddp-check", {"n": N}, lambda: tiny_model(1), train_cached)
    cached_states = [None] * parallel.world_size()
    dist.all_gather_object(cached_states, (info["status"], cached.state_dict()))
    if parallel.is_main():
        result = {"states": states, "history": distiller.history.epochs, "cached": cached_states}
        torch.save(result, out / "result.pt")
    parallel.cleanup()


def torchrun(
    mode: str, out: Path, timeout: float = 90
) -> tuple[subprocess.CompletedProcess, float]:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", __file__, "worker", mode, str(out)]
    env = os.environ | {"KDLAB_CACHE": str(out / "cache"), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    return done, time.perf_counter() - start


# -- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """One run of two processes: their weights, history and cache."""
    out = tmp_path_factory.mktemp("ddp")
    done, _ = torchrun("train", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, done, torch.load(out / "result.pt", weights_only=False)


def test_two_processes_train_the_weights_one_process_trains(two_processes):
    _, _, result = two_processes
    single = train(tiny_model())
    assert not single.distributed
    rank0, rank1 = result["states"]
    for key, value in single.student.state_dict().items():
        assert torch.equal(rank0[key], rank1[key]), f"the ranks disagree on {key}"
        torch.testing.assert_close(rank0[key], value, rtol=0, atol=ATOL, msg=key)
    moved = max(float((v - tiny_model().state_dict()[k]).abs().max()) for k, v in rank0.items())
    assert moved > 100 * ATOL  # the tolerance is far below what training changed
    # the record: means over both ranks' examples, the validation of rank 0
    for mine, theirs in zip(result["history"], single.history.epochs, strict=True):
        assert set(mine) == set(theirs)
        for key in set(mine) - {"seconds"}:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5), key


def test_only_rank_0_writes_the_cache_and_the_others_load_it(two_processes):
    out, done, result = two_processes
    files = sorted((out / "cache" / "models").iterdir())
    assert [f.name.startswith("ddp-check-") and f.suffix == ".pt" for f in files] == [True]
    saved = torch.load(files[0], weights_only=True)
    assert saved["info"]["summary"] == {"rank": 0}
    for status, state in result["cached"]:
        assert status == "trained"
        for key, value in saved["state_dict"].items():
            assert torch.equal(state[key], value), key
    assert done.stdout.count("ddp-check: trained") <= 1


def test_a_failing_rank_ends_the_run_with_its_error(tmp_path):
    done, seconds = torchrun("fail", tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert FAIL_MESSAGE in output
    assert "ChildFailedError" in output
    assert re.search(r"Root Cause.*?rank\s*:\s*1 ", output, re.DOTALL), output[-3000:]
    assert seconds < 60, f"the run took {seconds:.0f} s to end"


# -- sharding, in one process -------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_the_ranks_batches_together_are_the_single_process_batches(shuffle):
    x = torch.arange(50.0)
    single = batches(x, x, batch_size=10, shuffle=shuffle, seed=3)
    shards = [
        parallel.shard(batches(x, x, batch_size=10, shuffle=shuffle, seed=3), r, 2) for r in (0, 1)
    ]
    assert all(len(s) == len(single) for s in shards)
    for epoch in range(3):
        for s in shards:
            parallel.set_epoch(s, epoch)
        parts = [list(s) for s in shards]
        for k, (whole, _) in enumerate(single):
            mine, theirs = parts[0][k][0], parts[1][k][0]
            assert len(mine) == len(theirs) == 5
            assert sorted(mine.tolist() + theirs.tolist()) == sorted(whole.tolist())


def test_length_batches_shards_split_each_global_batch():
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 12, (37,), generator=g)
    mask = (torch.arange(12) < lengths[:, None]).long()
    ids = torch.randint(5, 100, (37, 12), generator=g) * mask
    data = Encoded(ids, mask, torch.arange(37))
    whole = LengthBatches(data, 8, seed=1)
    shards = [whole.shard(r, 2) for r in (0, 1)]
    for _ in range(2):  # two passes: each draws the next seed, like the single process
        expected = list(whole)
        parts = [list(s) for s in shards]
        assert len(parts[0]) == len(parts[1]) == len(expected) == len(whole)
        for (_, _, labels), a, b in zip(expected, *parts, strict=True):
            assert len(a[2]) == len(b[2])  # an uneven batch is padded
            assert set(a[2].tolist()) | set(b[2].tolist()) == set(labels.tolist())
            for ids_, mask_, _ in (a, b):  # each part cut to its own longest sentence
                assert ids_.shape == mask_.shape and int(mask_[:, -1].max()) == 1
    assert [b[2].tolist() for b in length_batches(data, 8, 1)] == [
        b[2].tolist() for b in LengthBatches(data, 8, seed=1)
    ]


def test_other_batches_are_split_by_rows():
    batch = (torch.arange(5.0), torch.arange(5), None)
    parts = [list(parallel.shard([batch], r, 2))[0] for r in (0, 1)]
    assert parts[0][0].tolist() == [0, 2, 4] and parts[1][0].tolist() == [1, 3, 0]
    assert parts[0][2] is None


def test_a_global_batch_must_split_evenly_and_distributed_needs_torchrun():
    x = torch.arange(10.0)
    with pytest.raises(ValueError, match="divisible"):
        parallel.shard(batches(x, x, batch_size=5), 0, 2)
    with pytest.raises(ValueError, match="divisible"):
        LengthBatches(Encoded(x[:, None].long(), x[:, None].long(), x.long()), 5, world_size=2)
    with pytest.raises(RuntimeError, match="torchrun"):
        Distiller(tiny_model(), device="cpu", distributed=True)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    from torch.distributed.elastic.multiprocessing.errors import record

    record(worker)(sys.argv[2], Path(sys.argv[3]))
