"""Benchmark: DistilBERT-style distillation on SST-2, over several seeds (Sanh et al. 2019).

With notebook 06's recipe (:class:`kdlab.recipes.distilbert.BertRecipe`): one MLM
pre-training on all the training phrases (cached: 40-50 minutes on 2 CPU cores the first
time), then for each seed (a labelled subset and the initialisations) the BERT teacher
fine-tuned from that encoder, the same teacher fine-tuned from random weights (what the
pre-training is worth), the student made of every other teacher layer and trained on the
triple loss (soft targets, hard labels, cosine on hidden states), and the same student
architecture from a random initialisation trained on the hard labels only. Prints SST-2 dev
accuracy (mean and spread), the share of the teacher's accuracy each model retains, the
parameter ratio, the latency ratio at batch 1 and 32 (sequences of 64 tokens; medians over
rounds that time teacher and student in turn) and the wall time, then the goals, met or NOT
met from these measurements; saves everything to ``benchmarks/results/distilbert_sst2.json``
first.

    python benchmarks/distilbert.py                        # SST-2, seeds 0 1 2
    python benchmarks/distilbert.py --seeds 0 1 2 3 4
    python benchmarks/distilbert.py --fast --seeds 0       # a smoke run in seconds

SST-2 is read from ``$KDLAB_DATA/sst2``; ``--fast`` falls back to a synthetic set when it
is missing (the report then says so).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from kdlab import bench, runtime
from kdlab.data.sst2 import load_sst2
from kdlab.data.tokenizer import MAX_LENGTH, encode, wordpiece_tokenizer
from kdlab.distill.bert import distil, evaluate_classifier, fine_tune
from kdlab.models.bert import RandomTokens, bert_config, random_student, student_from_teacher
from kdlab.recipes.distilbert import BertRecipe, bert_teacher, pretrained_encoder
from kdlab.report import format_spread, save_results, spread

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("teacher", "teacher_no_mlm", "student", "random_student")
LABELS = {
    "teacher": "teacher (MLM + fine-tuning)",
    "teacher_no_mlm": "teacher (fine-tuning only)",
    "student": "student (layer copy + triple loss)",
    "random_student": "student (random init, hard labels)",
}
BATCHES = (1, 32)
GOALS = {"retention": 97.0, "speedup": 1.8, "margin_points": 2.0, "mlm_points": 0.0}
FAST_EVAL = 200  # dev sentences in fast mode


def run(seeds: list[int], fast: bool = False) -> dict:
    """Train and measure the three models for each seed; return every number measured."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds!r}")
    start = time.perf_counter()
    load_before = os.getloadavg()
    recipe = BertRecipe().fast() if fast else BertRecipe()
    train_all = load_sst2("train", synthetic_fallback=fast)
    dev_set = load_sst2("dev", synthetic_fallback=fast, limit=FAST_EVAL if fast else None)
    tokenizer, _ = wordpiece_tokenizer(
        train_all.sentences, vocab_size=recipe.vocab_size, verbose=False
    )
    dev = encode(tokenizer, dev_set, MAX_LENGTH)
    config = bert_config(len(tokenizer), max_length=MAX_LENGTH, **asdict(recipe.teacher))
    schedule = {"epochs": recipe.epochs, "batch_size": recipe.batch_size, "lr": recipe.lr}
    # One pre-trained encoder for every seed, as one BERT checkpoint serves many fine-tunings.
    mlm = encode(tokenizer, train_all.subset(recipe.mlm_sentences, seed=recipe.mlm_seed))
    encoder, encoder_info = pretrained_encoder(
        config,
        mlm,
        tokenizer=tokenizer,
        epochs=recipe.mlm_epochs,
        lr=recipe.mlm_lr,
        batch_size=recipe.mlm_batch_size,
        dropout=recipe.mlm_dropout,
        seed=recipe.mlm_seed,
    )
    mlm_losses = [e["mlm_loss"] for e in encoder_info["summary"]["mlm"]["epochs"]]
    runtime.progress_print(
        f"MLM encoder {encoder_info['status']} (pre-training took "
        f"{encoder_info['train_seconds']:.0f} s): loss per epoch "
        + ", ".join(f"{v:.2f}" for v in mlm_losses)
    )
    per_seed = []
    for seed in runtime.progress_bar(seeds, desc="seeds"):
        t0 = time.perf_counter()
        # The seed picks the labelled subset as well as the initialisations.
        train = encode(tokenizer, train_all.subset(recipe.train_sentences, seed=seed))
        teacher, info = bert_teacher(
            config, train, encoder=encoder, seed=seed, **schedule
        )
        no_mlm, no_mlm_info = bert_teacher(
            config, train, encoder=None, seed=seed, **schedule
        )
        seconds = {"teacher": info["train_seconds"], "teacher_no_mlm": no_mlm_info["train_seconds"]}
        student = student_from_teacher(teacher)
        t = time.perf_counter()
        distil(student, teacher, train, seed=seed, **schedule, **asdict(recipe.triple))
        seconds["student"] = time.perf_counter() - t
        scratch = random_student(teacher, config.num_hidden_layers // 2, seed=seed)
        t = time.perf_counter()
        fine_tune(scratch, train, seed=seed, **schedule)
        seconds["random_student"] = time.perf_counter() - t
        models = {
            "teacher": teacher,
            "teacher_no_mlm": no_mlm,
            "student": student,
            "random_student": scratch,
        }
        accuracy = {k: evaluate_classifier(m, dev)["accuracy"] for k, m in models.items()}
        row = {
            "seed": seed,
            "dev_accuracy": accuracy,
            "retention": {k: accuracy[k] / accuracy["teacher"] for k in MODELS[1:]},
            "teacher_status": info["status"],
            "train_seconds": seconds,
            "seconds": time.perf_counter() - t0,
        }
        per_seed.append(row)
        runtime.progress_print(
            f"seed {seed}: dev accuracy "
            + ", ".join(f"{k} {100 * v:.1f}%" for k, v in accuracy.items())
            + f" (teacher {info['status']}; {row['seconds']:.0f} s)"
        )
    latency = side_by_side(
        {"teacher": RandomTokens(teacher), "student": RandomTokens(student)},
        rounds=3 if fast else 7,
        min_run_time=0.05 if fast else 0.2,
    )
    params = {
        "teacher": bench.count_parameters(teacher),
        "student": bench.count_parameters(student),
    }
    result = {
        "data": train_all.name,
        "synthetic": train_all.synthetic,
        "n_dev": len(dev_set),
        "seeds": seeds,
        "recipe": asdict(recipe),
        "mlm": {
            "status": encoder_info["status"],
            "train_seconds": encoder_info["train_seconds"],
            "loss_per_epoch": mlm_losses,
        },
        "per_seed": per_seed,
        "parameters": params,
        "parameter_ratio": params["student"] / params["teacher"],
        "latency_ms": latency,
        "speedup": {
            f"batch{b}": latency["teacher"][f"batch{b}"] / latency["student"][f"batch{b}"]
            for b in BATCHES
        },
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
        "load_average": {"start": load_before[0], "end": os.getloadavg()[0]},
        "wall_seconds": time.perf_counter() - start,
        "fast": fast,
    }
    result["goals"] = goals(result)
    return result


def side_by_side(
    models: dict[str, torch.nn.Module], rounds: int, min_run_time: float
) -> dict[str, dict[str, float]]:
    """Median latency (ms) per model and batch size over ``rounds`` rounds that time every
    model in turn (:func:`kdlab.bench.latency`), so a change of load on a shared machine
    hits all models alike and cancels in the ratios."""
    times: dict[str, dict[str, list[float]]] = {
        m: {f"batch{b}": [] for b in BATCHES} for m in models
    }
    for _ in range(rounds):
        for b in BATCHES:
            for name, model in models.items():
                lat = bench.latency(model, (MAX_LENGTH,), b, min_run_time=min_run_time)
                times[name][f"batch{b}"].append(lat.median_ms)
    return {m: {k: statistics.median(v) for k, v in per.items()} for m, per in times.items()}


def goals(result: dict) -> list[dict]:
    """The issue's goals judged from the measurements (means over the seeds)."""
    rows = result["per_seed"]
    acc = {k: 100 * spread([r["dev_accuracy"][k] for r in rows])[0] for k in MODELS}
    retention = 100 * acc["student"] / acc["teacher"]
    margin = acc["student"] - acc["random_student"]
    mlm_gain = acc["teacher"] - acc["teacher_no_mlm"]
    out = [
        {
            "id": "mlm_helps",
            "goal": "MLM pre-training raises the teacher's dev accuracy",
            "measured": f"{mlm_gain:+.1f} points",
            "met": mlm_gain > GOALS["mlm_points"],
        },
        {
            "id": "retention",
            "goal": f"student keeps >= {GOALS['retention']:.0f}% of the teacher's dev accuracy",
            "measured": f"{retention:.1f}%",
            "met": retention >= GOALS["retention"],
        },
    ]
    for b in BATCHES:
        speedup = result["speedup"][f"batch{b}"]
        out.append(
            {
                "id": f"speedup_batch{b}",
                "goal": f"student >= {GOALS['speedup']}x faster at batch {b}",
                "measured": f"{speedup:.2f}x",
                "met": speedup >= GOALS["speedup"],
            }
        )
    out.append(
        {
            "id": "beats_random_init",
            "goal": f"student beats the random-init student by >= {GOALS['margin_points']:.0f} "
            "points of dev accuracy",
            "measured": f"{margin:+.1f} points",
            "met": margin >= GOALS["margin_points"],
        }
    )
    return out


def report(result: dict) -> str:
    rows = result["per_seed"]
    synthetic = " (SYNTHETIC sentences: says nothing about SST-2)" if result["synthetic"] else ""
    lines = [
        f"DistilBERT-style distillation on {result['data']}{synthetic}: {len(rows)} seeds, "
        f"{result['n_dev']} dev sentences; {result['machine']}; load average "
        f"{result['load_average']['start']:.1f} at start, {result['load_average']['end']:.1f} "
        "at end.",
        "",
        f"MLM pre-training (one encoder for every seed): {len(result['mlm']['loss_per_epoch'])} "
        f"epochs, {result['mlm']['status']} (took {result['mlm']['train_seconds']:.0f} s when "
        f"trained); loss {result['mlm']['loss_per_epoch'][0]:.2f} after the first epoch, "
        f"{result['mlm']['loss_per_epoch'][-1]:.2f} after the last.",
        "",
        "| model | dev accuracy % (mean ± sd) | retained % of teacher | training s (mean) |",
        "|---|---|---|---|",
    ]
    for key in MODELS:
        acc = [100 * r["dev_accuracy"][key] for r in rows]
        kept = (
            "100.0"
            if key == "teacher"
            else format_spread([100 * r["retention"][key] for r in rows])
        )
        secs = spread([r["train_seconds"][key] for r in rows])[0]
        lines.append(f"| {LABELS[key]} | {format_spread(acc)} | {kept} | {secs:.0f} |")
    params, ms = result["parameters"], result["latency_ms"]
    lines += [
        "",
        "| measure | teacher | student | student / teacher |",
        "|---|---|---|---|",
        f"| parameters | {params['teacher']:,} | {params['student']:,} | "
        f"{result['parameter_ratio']:.2f} |",
    ]
    for b in BATCHES:
        lines.append(
            f"| ms at batch {b} (length {MAX_LENGTH}) | {ms['teacher'][f'batch{b}']:.2f} | "
            f"{ms['student'][f'batch{b}']:.2f} | {result['speedup'][f'batch{b}']:.2f}x faster |"
        )
    lines += ["", "| goal | measured | status |", "|---|---|---|"]
    for g in result["goals"]:
        lines.append(f"| {g['goal']} | {g['measured']} | {'met' if g['met'] else 'NOT met'} |")
    lines += [
        "",
        f"Wall time {result['wall_seconds']:.0f} s (teachers loaded from the cache: "
        f"{sum(r['teacher_status'] != 'trained' for r in rows)} of {len(rows)}).",
        "DistilBERT (Sanh et al. 2019, BERT-base on GLUE): 0.60 of the parameters, 1.6x "
        "faster, 97% of the score retained.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fast", action="store_true", help="tiny model and subsets: a smoke run")
    args = parser.parse_args()
    result = run(args.seeds, args.fast)
    suffix = "_fast" if args.fast else ""
    save_results(result, RESULTS / f"distilbert_{result['data']}{suffix}.json", report)


if __name__ == "__main__":
    main()
