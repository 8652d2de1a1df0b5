"""Trained models kept on disk, keyed by everything that determined them.

A teacher trained once (for a given architecture, data, schedule and seed) is saved under
``runtime.cache_dir()`` and loaded by every later notebook, assignment and re-run. The
key is a hash of the configuration, so changing any part of it trains a new model
instead of silently reusing a stale one.

With several processes (``torchrun``, :mod:`kdlab.distill.parallel`) every rank trains
together, rank 0 alone writes the file and speaks, and the others wait for it and load it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from kdlab import runtime

__all__ = ["cache_key", "cached_model"]

FORMAT_VERSION = 1


def cache_key(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable configuration."""
    try:
        text = json.dumps({"format": FORMAT_VERSION, **config}, sort_keys=True)
    except TypeError as err:
        raise ValueError(f"cache configuration must be JSON-serialisable: {err}") from err
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rank() -> int:
    # this process's rank when several train together (torch.distributed), else 0
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _atomic_save(obj: Any, path: Path) -> None:
    # Write then rename, so a parallel reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_model(
    name: str,
    config: dict[str, Any],
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], dict[str, Any]],
    *,
    verbose: bool = True,
    train_if_missing: bool = True,
) -> tuple[nn.Module | None, dict[str, Any]]:
    """Load ``name`` trained with ``config`` from the cache, or build, train and save it.

    With ``train_if_missing=False`` a model that is not cached is not trained: the result is
    ``(None, {"status": "not cached", "path": ...})``.

    ``train(model)`` trains in place and returns a JSON-serialisable summary (for example
    the history); it is stored with the weights. Returns the model in eval mode, on the
    host (:data:`kdlab.runtime.HOST`) whether it was loaded or just trained on a GPU, so
    the code after it behaves the same on the first run and every later one; and an info
    dict with ``status`` ("loaded from cache" or "trained"), ``path``, ``summary`` and
    ``train_seconds``.
    """
    folder = runtime.cache_dir() / "models"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{cache_key({'name': name, **config})}.pt"
    verbose = verbose and _rank() == 0
    model = build()
    if path.exists():
        try:
            saved = torch.load(path, map_location=runtime.HOST, weights_only=True)
            model.load_state_dict(saved["state_dict"])
            info = {"status": "loaded from cache", "path": str(path), **saved["info"]}
            if verbose:
                print(f"{name}: loaded from cache ({path.name})")
            return model.eval(), info
        except Exception as err:  # a corrupt or outdated file: retrain rather than fail
            if verbose:
                print(f"{name}: cached file unreadable ({err.__class__.__name__}), retraining")
    if not train_if_missing:
        return None, {"status": "not cached", "path": str(path)}
    start = time.perf_counter()
    summary = train(model)
    seconds = time.perf_counter() - start
    model.to(runtime.HOST)  # where a loaded one would be; the saved file is then device-free
    info = {"summary": summary, "train_seconds": seconds, "config": config}
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        info["processes"] = dist.get_world_size()  # trained together by this many
    if _rank() == 0:
        _atomic_save({"state_dict": model.state_dict(), "info": info}, path)
    if dist.is_available() and dist.is_initialized():  # the others load what rank 0 saved
        dist.barrier()
        if _rank() != 0:
            saved = torch.load(path, map_location=runtime.HOST, weights_only=True)
            model.load_state_dict(saved["state_dict"])
    if verbose:
        print(f"{name}: trained in {seconds:.0f} s and cached ({path.name})")
    return model.eval(), {"status": "trained", "path": str(path), **info}
