"""``kdlab train teacher|mlm``: train a course model into the cache, in one process or in
several under ``torchrun``, so the notebooks then load it instead of training it.

    kdlab train teacher                                    # one process
    torchrun --nproc-per-node 2 -m kdlab train teacher     # two processes (gloo on CPUs)
    torchrun --nproc-per-node 2 -m kdlab train mlm         # notebook 06's MLM pre-training

``teacher`` is :func:`kdlab.recipes.trained_teacher` on the MNIST-family splits of
notebook 02 (and the later notebooks); ``mlm`` is
:func:`kdlab.recipes.distilbert.pretrained_encoder` with notebook 06's recipe
(:class:`kdlab.recipes.distilbert.BertRecipe`): the same cache keys, so what this trains is
what they load. Fast mode (``--fast`` or ``KDLAB_FAST=1``) trains their fast-mode models.
Under ``torchrun`` every rank trains its share of each global batch
(:mod:`kdlab.distill.parallel`), and rank 0 alone prints and writes the cache.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_train_command"]

MODELS = ("teacher", "mlm")


def add_train_command(sub) -> None:
    """The ``train`` subcommand, on the ``kdlab`` parser's subparsers ``sub``."""
    train = sub.add_parser(
        "train",
        help="train the course teacher or the MLM encoder into the cache (torchrun: N processes)",
        description="Train the course's CNN teacher (notebook 02) or notebook 06's MLM encoder "
        "into the cache, where the notebooks find it: with one process, or with N under "
        "torchrun (torchrun --nproc-per-node N -m kdlab train teacher); rank 0 writes the cache.",
    )
    train.add_argument("model", choices=MODELS, help="teacher: the CNN; mlm: the BERT encoder")
    train.add_argument("--data", default="fashion-mnist", choices=("fashion-mnist", "mnist"))
    train.add_argument("--seed", type=int, default=None, help="default: the recipe's (0)")
    train.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    train.add_argument("--fast", action="store_true", help="fast mode's small models and data")
    train.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train (or find in the cache) the model ``args`` names; 0 when done."""
    # `record` puts a failing rank's traceback in torchrun's summary of the run.
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from kdlab import runtime
    from kdlab.distill import parallel

    if args.epochs is not None and args.epochs < 1:
        print(f"error: --epochs must be >= 1, got {args.epochs}", file=sys.stderr)
        return 2
    fast = args.fast or runtime.fast_mode()
    parallel.init()
    try:
        train = _teacher if args.model == "teacher" else _mlm
        model, info = train(args, fast)
        if parallel.is_main():
            _report(args.model, model, info)
    except FileNotFoundError as err:  # data not on this machine: say where to put it
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        parallel.cleanup()
    return 0


def _verbose() -> bool | None:
    # rank 0 follows the course's rule for progress bars and messages; the others are quiet
    from kdlab.distill import parallel

    return None if parallel.is_main() else False


def _teacher(args: argparse.Namespace, fast: bool):
    from kdlab.distill import parallel
    from kdlab.recipes import mnist_family_splits, trained_teacher

    seed = 0 if args.seed is None else args.seed
    with parallel.main_first():  # rank 0 downloads the data when it must
        splits = mnist_family_splits(args.data, fast=fast, seed=seed)
    if parallel.is_main():
        print(splits.describe())
    return trained_teacher(splits, epochs=args.epochs, seed=seed, verbose=_verbose())


def _mlm(args: argparse.Namespace, fast: bool):
    from dataclasses import asdict

    from kdlab.data.sst2 import load_sst2_splits
    from kdlab.data.tokenizer import MAX_LENGTH, encode, wordpiece_tokenizer
    from kdlab.distill import parallel
    from kdlab.models.bert import bert_config
    from kdlab.recipes.distilbert import BertRecipe, pretrained_encoder

    recipe = BertRecipe().fast() if fast else BertRecipe()
    seed = recipe.mlm_seed if args.seed is None else args.seed
    with parallel.main_first():  # rank 0 trains the tokenizer into the cache, the others load it
        train_all = load_sst2_splits(synthetic_fallback=fast).train
        tokenizer, _ = wordpiece_tokenizer(
            train_all.sentences, vocab_size=recipe.vocab_size, verbose=parallel.is_main()
        )
    if parallel.is_main():
        print(f"{train_all.name} ({train_all.source}): {len(train_all)} training phrases")
    data = encode(tokenizer, train_all.subset(recipe.mlm_sentences, seed=seed), MAX_LENGTH)
    config = bert_config(len(tokenizer), max_length=MAX_LENGTH, **asdict(recipe.teacher))
    return pretrained_encoder(
        config,
        data,
        tokenizer=tokenizer,
        epochs=args.epochs or recipe.mlm_epochs,
        lr=recipe.mlm_lr,
        batch_size=recipe.mlm_batch_size,
        dropout=recipe.mlm_dropout,
        seed=seed,
        verbose=_verbose(),
    )


def _report(name: str, model, info: dict) -> None:
    from kdlab.distill import parallel

    processes = parallel.world_size()
    how = f"{processes} processes" if processes > 1 else "1 process"
    if info["status"] == "trained":
        print(f"{name}: trained with {how} in {info['train_seconds']:.0f} s")
    else:
        print(f"{name}: {info['status']} (nothing to train)")
    summary = info.get("summary", {})
    if name == "teacher":
        last = summary["history"][-1]
        print(
            f"  validation accuracy {last['val_accuracy']:.2%} after {len(summary['history'])} "
            f"epochs, test accuracy {summary['test_accuracy']:.2%}"
        )
    else:
        losses = [e["mlm_loss"] for e in summary["mlm"]["epochs"]]
        print("  MLM loss per epoch: " + ", ".join(f"{v:.2f}" for v in losses))
    print(f"  cached at {info['path']}")
