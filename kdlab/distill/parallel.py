"""Training with several processes: what :class:`kdlab.distill.Distiller` needs from
``torch.distributed`` to run under ``torchrun``, in one place.

``torchrun --nproc-per-node N -m kdlab train teacher`` starts N copies of the program;
each reads its ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` from the environment and
:func:`init` joins them into one process group (gloo on CPUs; with CUDA,
``"cpu:gloo,cuda:nccl"``, so CPU tensors use gloo and GPU tensors NCCL, each rank on the
GPU ``LOCAL_RANK``). The trainer then

- wraps the modules it trains in ``DistributedDataParallel`` (:func:`wrap`): every rank
  starts from rank 0's weights, and after each backward pass every gradient is the mean
  over the ranks, so the optimisers take the same step everywhere (PyTorch, "Getting
  started with distributed data parallel",
  https://pytorch.org/tutorials/intermediate/ddp_tutorial.html, and the
  ``torch.nn.parallel.DistributedDataParallel`` reference,
  https://pytorch.org/docs/stable/generated/torch.nn.parallel.DistributedDataParallel.html);
- gives each rank its share of every global batch (:func:`shard`): with the global batch
  ``B`` split in ``N`` equal parts of ``B / N`` examples, the mean of the ranks' gradients
  is the gradient of the global batch's mean loss, so N processes train the model one
  process would (up to float rounding) when the model has no batch statistics (batch norm
  normalises over each rank's part, unless converted to ``SyncBatchNorm``, which needs
  GPUs), no random layers (each rank draws its own dropout masks) and a loss that is a mean
  over examples (one over tokens is a mean over each rank's tokens);
- sums the epoch's logged metrics over the ranks (:func:`reduce_sums`), validates on rank 0
  and sends the scores to the others (:func:`broadcast`); only rank 0 shows progress bars
  and writes caches (:func:`kdlab.cache.cached_model`) and results.

Without ``torchrun`` (or with one process) none of this runs, and training is exactly the
single-process loop. When one rank fails, ``torchrun`` stops the others and reports the
failing rank and its traceback (https://pytorch.org/docs/stable/elastic/errors.html).
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    TensorDataset,
)

from kdlab import runtime

__all__ = [
    "init",
    "launched",
    "default_backend",
    "cleanup",
    "enabled",
    "rank",
    "local_rank",
    "world_size",
    "is_main",
    "barrier",
    "main_first",
    "local_device",
    "rank_seed",
    "wrap",
    "shard",
    "set_epoch",
    "reduce_sums",
    "broadcast",
    "any_rank",
    "ShardedOrder",
]

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (its variables are set)."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def init(backend: str | None = None) -> bool:
    """Join the process group ``torchrun`` set up (``init_method="env://"``), once; return
    whether training is distributed (more than one process). Without ``torchrun``'s
    variables, do nothing and return False. ``backend`` defaults to
    :func:`default_backend`: ``"gloo"``, or ``"cpu:gloo,cuda:nccl"`` when each rank has a
    GPU (rank ``LOCAL_RANK`` uses GPU ``LOCAL_RANK``)."""
    if _initialised():
        return enabled()
    if not (dist.is_available() and launched()):
        return False
    if torch.cuda.is_available() and local_rank() < torch.cuda.device_count():
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend or default_backend())
    return enabled()


def default_backend() -> str:
    """gloo for host tensors, and NCCL for CUDA tensors when this rank has a GPU of its own."""
    own_gpu = torch.cuda.is_available() and local_rank() < torch.cuda.device_count()
    return "cpu:gloo,cuda:nccl" if own_gpu else "gloo"


def cleanup() -> None:
    """Leave the process group (the end of a distributed run); nothing when not in one."""
    if _initialised():
        dist.destroy_process_group()


def enabled() -> bool:
    """Whether a process group of more than one process is running."""
    return _initialised() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if _initialised() else 0


_current_rank = rank


def local_rank() -> int:
    """This process's rank on its machine (``LOCAL_RANK``; 0 when not distributed)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    return dist.get_world_size() if _initialised() else 1


_current_world_size = world_size


def is_main() -> bool:
    """Whether this is rank 0, the process that prints, shows progress and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (nothing when not distributed)."""
    if _initialised():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (downloads, trains a tokenizer into the cache), then
    the others, which find its results on disk."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def local_device(device: torch.device) -> torch.device:
    """``device`` for this rank: an unnumbered CUDA device becomes ``cuda:LOCAL_RANK`` (an
    error when this machine has fewer GPUs than processes)."""
    if enabled() and device.type == "cuda" and device.index is None:
        if local_rank() >= torch.cuda.device_count():
            raise RuntimeError(
                f"process {local_rank()} of this machine has no GPU of its own (there are "
                f"{torch.cuda.device_count()}); start at most that many processes per machine, "
                "or train on the host with KDLAB_DEVICE=cpu"
            )
        return torch.device("cuda", local_rank())
    return device


def rank_seed(seed: int) -> int:
    """The seed of this rank's own random stream: ``seed`` on rank 0 (as in one process),
    a distinct one on the others, so they do not draw the same masks."""
    return seed + (rank() << 32)


class _Step(nn.Module):
    """The modules a trainer updates, as one module whose forward runs a step function
    (``trainer.loss_parts``): calling it through ``DistributedDataParallel`` prepares the
    gradient averaging for whatever the step computes, however it uses the modules."""

    def __init__(self, modules: Iterable[nn.Module]):
        super().__init__()
        self.trained = nn.ModuleList(modules)

    def forward(self, step, *args: Any) -> Any:
        return step(*args)


def wrap(modules: list[nn.Module], device: torch.device, seed: int) -> DistributedDataParallel:
    """``modules`` (the student and any other module the optimiser updates) in one
    ``DistributedDataParallel``; call it as ``ddp(step, *batch)`` to run ``step(*batch)``
    with the gradients averaged over the ranks in the backward pass.

    DDP copies rank 0's parameters and buffers to every rank, and before each forward
    pass rank 0's buffers (batch-norm running statistics). On GPUs batch norm becomes
    ``SyncBatchNorm`` (statistics over the global batch); on CPUs it stays per rank.
    Ranks other than 0 then reseed the global generator with :func:`rank_seed`, so their
    dropout masks differ from rank 0's."""
    step = _Step(modules)
    if device.type == "cuda":
        step = nn.SyncBatchNorm.convert_sync_batchnorm(step)
        ddp = DistributedDataParallel(step, device_ids=[device.index])
    else:
        ddp = DistributedDataParallel(step)
    if rank() > 0:
        torch.manual_seed(rank_seed(seed))
    return ddp


class ShardedOrder(DistributedSampler):
    """A ``DistributedSampler`` over the order another sampler draws: each epoch, every
    rank draws the epoch's full order from ``base`` (a ``SequentialSampler``, or a
    ``RandomSampler`` with a seeded generator, restarted from its state at creation and
    advanced ``epoch`` passes, as :meth:`set_epoch` says), pads it to a multiple of the
    number of ranks and keeps the positions ``rank, rank + N, ...``.

    DistributedSampler's own shuffle draws another order (seeded ``seed + epoch``); this
    one is the order one process draws from ``batches(..., shuffle=True, seed=s)``, so
    with batches of ``B / N`` the ranks' batch ``k`` together are exactly the
    single-process batch ``k``."""

    def __init__(self, base: Sampler, num_replicas: int, rank: int):
        super().__init__(base, num_replicas=num_replicas, rank=rank, shuffle=False)
        if isinstance(base, RandomSampler) and base.generator is None:
            raise ValueError(
                "a shuffled loader without a seeded generator draws another order on each "
                "rank; make it with kdlab.data.batches(..., shuffle=True, seed=...)"
            )
        self.base = base
        generator = getattr(base, "generator", None)
        self._start = None if generator is None else generator.get_state()

    def __iter__(self) -> Iterator[int]:
        if self._start is not None:
            self.base.generator.set_state(self._start)
            for _ in range(self.epoch):
                for _ in self.base:
                    pass
        order = list(self.base)
        order = (order * math.ceil(self.total_size / len(order)))[: self.total_size]
        return iter(order[self.rank : self.total_size : self.num_replicas])


class _RowShards:
    """Any other training data: every rank reads each global batch and keeps the rows
    ``rank, rank + N, ...`` of its tensors (padded by repeating rows to a multiple of N).
    Right for batches of batch-major tensors; every rank pays for the whole batch."""

    def __init__(self, data: Iterable[Any], rank: int, world_size: int):
        self.data, self.rank, self.world_size = data, rank, world_size

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        for batch in self.data:
            n = next(len(t) for t in batch if isinstance(t, Tensor))
            size = math.ceil(n / self.world_size) * self.world_size
            rows = torch.arange(size) % n
            mine = rows[self.rank :: self.world_size]
            yield tuple(t[mine] if isinstance(t, Tensor) else t for t in batch)


def _check_divisible(batch_size: int, world: int) -> None:
    if batch_size % world:
        raise ValueError(
            f"the global batch of {batch_size} does not split into {world} equal parts; "
            f"use a batch size divisible by the number of processes"
        )


def shard(data: Iterable[Any], rank: int | None = None, world_size: int | None = None) -> Any:
    """This rank's part of the training data, with the same global batches as ``data``.

    - data with a ``shard(rank, world_size)`` method
      (:class:`kdlab.data.tokenizer.LengthBatches`): its own sharding;
    - a loader of :func:`kdlab.data.batches` (or ``ExampleSet.loader``): the same tensors
      with a :class:`ShardedOrder` and batches of ``B / N``;
    - a DataLoader whose sampler is a ``DistributedSampler`` already: as it is;
    - anything else: each global batch's rows ``rank::N``.
    """
    rank_ = _current_rank() if rank is None else rank
    world = _current_world_size() if world_size is None else world_size
    if hasattr(data, "shard"):
        return data.shard(rank_, world)
    if not isinstance(data, DataLoader):
        return _RowShards(data, rank_, world)
    if any(isinstance(s, DistributedSampler) for s in _samplers(data)):
        return data
    outer = data.sampler
    if (
        isinstance(data.dataset, TensorDataset)
        and data.batch_size is None
        and isinstance(outer, BatchSampler)
        and isinstance(outer.sampler, (RandomSampler, SequentialSampler))
    ):
        _check_divisible(outer.batch_size, world)
        order = ShardedOrder(outer.sampler, world, rank_)
        batches = BatchSampler(order, outer.batch_size // world, drop_last=outer.drop_last)
        return DataLoader(data.dataset, sampler=batches, batch_size=None)
    return _RowShards(data, rank_, world)


def _samplers(loader: DataLoader) -> list[Any]:
    found = [loader.sampler, loader.batch_sampler]
    found += [getattr(s, "sampler", None) for s in found]
    return [s for s in found if s is not None]


def set_epoch(data: Any, epoch: int) -> None:
    """Tell the data's ``DistributedSampler`` (or the data itself) which epoch starts, so
    every rank draws that epoch's order."""
    candidates = [data] + (_samplers(data) if isinstance(data, DataLoader) else [])
    for candidate in candidates:
        if hasattr(candidate, "set_epoch"):
            candidate.set_epoch(epoch)
            return


def _float64(values: list[float]) -> Tensor:
    # gloo reduces host tensors; a CUDA-only backend (NCCL) needs them on this rank's GPU
    device = runtime.HOST
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    return torch.tensor(values, dtype=torch.float64, device=device)


def reduce_sums(sums: dict[str, float], count: int) -> tuple[dict[str, float], int]:
    """The sums of every rank's ``sums`` and ``count``, on every rank (one ``all_reduce``
    in double precision); the keys are the same on every rank, which run the same steps."""
    keys = sorted(sums)
    total = _float64([sums[k] for k in keys] + [float(count)])
    dist.all_reduce(total)
    values = total.tolist()
    return dict(zip(keys, values[:-1], strict=True)), int(round(values[-1]))


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (a picklable object, such as validation scores)."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on at least one rank."""
    total = _float64([float(flag)])
    dist.all_reduce(total, op=dist.ReduceOp.MAX)
    return bool(total.item())
