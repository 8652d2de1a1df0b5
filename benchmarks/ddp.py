"""Benchmark: training with 2 processes (DistributedDataParallel, gloo) against 1, on the CPU.

One epoch of the course's CNN teacher (``TeacherCNN(32)``, Adam, global batch 128, as
:func:`kdlab.recipes.trained_teacher` trains it) on a subset of Fashion-MNIST, with the same
cores each way: 1 process with 2 threads (the single-process loop, started with ``python``)
against 2 processes with 1 thread each (``torchrun --nproc-per-node 2``, each rank 64 images
of every batch, gradients averaged by gloo). Each round runs both, in alternating order, so a
load change on a shared machine hits both; the speed-up is the median over rounds of
``epoch seconds (1 x 2) / epoch seconds (2 x 1)``. An epoch is timed inside the processes
after a warm-up of a few batches (rank 0's time; the ranks finish together), so the start-up
(Python, torch, data, and for 2 processes the rendezvous) is not in it; launch-to-exit time
is reported apart. Saves ``benchmarks/results/ddp.json`` (``ddp_fast.json`` with ``--fast``).

    python benchmarks/ddp.py                 # 12,000 images, 3 rounds
    python benchmarks/ddp.py --fast          # a smoke run in seconds

Fashion-MNIST is found as the course finds it; ``--fast`` falls back to synthetic images.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from kdlab.report import save_results

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ((1, 2), (2, 1))  # (processes, threads per process): 2 cores either way
BATCH, WARMUP_BATCHES = 128, 5


def label(processes: int, threads: int) -> str:
    return f"{processes} process{'es' if processes > 1 else ''} x {threads} thread" + (
        "s" if threads > 1 else ""
    )


def worker(out: Path, images: int, threads: int, fast: bool) -> None:
    """One training run (started by :func:`launch`): a warm-up, then one timed epoch."""
    from kdlab import runtime
    from kdlab.data import load_mnist_family
    from kdlab.distill import Distiller, parallel
    from kdlab.models import TeacherCNN

    torch.set_num_threads(threads)
    parallel.init()
    try:
        data = load_mnist_family("fashion-mnist", "train", limit=images, synthetic_fallback=fast)
        runtime.seed_everything(0)
        # the host: this benchmark measures CPU processes, even where there is a GPU
        distiller = Distiller(TeacherCNN(32), lr=1e-3, seed=0, device=runtime.HOST)
        warmup = data.take(torch.arange(WARMUP_BATCHES * BATCH))
        distiller.fit(warmup.loader(BATCH, shuffle=True, seed=1), 1, progress=False)
        record = distiller.fit(data.loader(BATCH, shuffle=True), 1, progress=False).last
        if parallel.is_main():
            result = {
                "epoch_seconds": record["seconds"],
                "loss": record["loss"],
                "train_accuracy": record["train_accuracy"],
                "images": len(data),
                "synthetic": data.synthetic,
                "processes": parallel.world_size(),
                "threads": torch.get_num_threads(),
            }
            (out / "epoch.json").write_text(json.dumps(result))
    finally:
        parallel.cleanup()


def launch(processes: int, threads: int, images: int, fast: bool) -> dict:
    """Run :func:`worker` in ``processes`` processes of ``threads`` threads; its numbers
    and the launch-to-exit seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [__file__, "--worker", tmp, "--images", str(images), "--threads", str(threads)]
        args += ["--fast"] if fast else []
        command = [sys.executable, *args]
        if processes > 1:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            command += ["--nproc-per-node", str(processes), *args]
        env = os.environ | {"OMP_NUM_THREADS": str(threads), "KDLAB_PROGRESS": "0"}
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise RuntimeError(f"{label(processes, threads)} failed:\n{done.stderr[-4000:]}")
        result = json.loads((Path(tmp) / "epoch.json").read_text())
    return result | {"launch_to_exit_seconds": seconds}


def run(images: int = 12_000, rounds: int = 3, fast: bool = False) -> dict:
    """Time one epoch with each configuration of :data:`CONFIGS`, ``rounds`` times."""
    if rounds < 1 or images < 2 * WARMUP_BATCHES * BATCH:
        raise ValueError(f"need rounds >= 1 and images >= {2 * WARMUP_BATCHES * BATCH}")
    start, load_before = time.perf_counter(), os.getloadavg()
    per_round = []
    for r in range(rounds):
        order = CONFIGS if r % 2 == 0 else CONFIGS[::-1]
        runs = {label(*c): launch(*c, images, fast) for c in order}
        single, multi = (runs[label(*c)] for c in CONFIGS)
        speedup = single["epoch_seconds"] / multi["epoch_seconds"]
        per_round.append({"round": r, "runs": runs, "speedup": speedup})
        print(f"round {r + 1}/{rounds}: speed-up {speedup:.2f}x", flush=True)
    first = per_round[0]["runs"][label(*CONFIGS[0])]
    return {
        "model": "TeacherCNN(32)",
        "images": first["images"],
        "synthetic": first["synthetic"],
        "batch_size": BATCH,
        "configs": [label(*c) for c in CONFIGS],
        "rounds": per_round,
        "speedup": statistics.median(r["speedup"] for r in per_round),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {_cpu_name()}",
        "torch": torch.__version__,
        "load_average": {"start": load_before[0], "end": os.getloadavg()[0]},
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def report(result: dict) -> str:
    data = "synthetic images" if result["synthetic"] else "Fashion-MNIST images"
    lines = [
        f"One epoch of {result['model']} on {result['images']} {data}, global batch "
        f"{result['batch_size']}, {len(result['rounds'])} round(s); {result['machine']}; "
        f"load average {result['load_average']['start']:.1f} at start, "
        f"{result['load_average']['end']:.1f} at end; torch {result['torch']}.",
        "",
        "| configuration | epoch s (median) | images/s | launch to exit s | loss after the epoch |",
        "|---|---|---|---|---|",
    ]
    for name in result["configs"]:
        runs = [r["runs"][name] for r in result["rounds"]]
        epoch = statistics.median(r["epoch_seconds"] for r in runs)
        launch_s = statistics.median(r["launch_to_exit_seconds"] for r in runs)
        lines.append(
            f"| {name} | {epoch:.1f} | {result['images'] / epoch:.0f} | {launch_s:.1f} | "
            f"{runs[0]['loss']:.3f} |"
        )
    each = ", ".join(f"{r['speedup']:.2f}" for r in result["rounds"])
    lines += [
        "",
        f"Speed-up of {result['configs'][1]} over {result['configs'][0]} (median of the "
        f"rounds' ratios): **{result['speedup']:.2f}x** (rounds: {each}); wall time "
        f"{result['wall_seconds']:.0f} s.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="default 12000 (fast: 1536)")
    parser.add_argument("--rounds", type=int, default=None, help="default 3 (fast: 1)")
    parser.add_argument("--fast", action="store_true", help="a smoke run in seconds")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    images = args.images or (1536 if args.fast else 12_000)
    if args.worker is not None:
        worker(args.worker, images, args.threads, args.fast)
        return
    result = run(images, args.rounds or (1 if args.fast else 3), args.fast)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"ddp{suffix}.json", report)


if __name__ == "__main__":
    main()
