"""Run-time switches shared by the course: fast mode, seeding, device and folders.

Environment variables (all optional):

- ``KDLAB_FAST=1``: fast mode, small subsets and few steps (tests and CI use it).
- ``KDLAB_DATA``: a folder holding data sets (searched before system folders).
- ``KDLAB_CACHE``: where trained models and downloads are kept
  (default ``~/.cache/kdlab``).
- ``KDLAB_OFFLINE=1``: never try to download anything.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def fast_mode() -> bool:
    """True when ``KDLAB_FAST`` asks for small subsets and few steps."""
    return _flag("KDLAB_FAST")


def offline() -> bool:
    """True when ``KDLAB_OFFLINE`` forbids downloads."""
    return _flag("KDLAB_OFFLINE")


def data_dir() -> Path | None:
    """The user's data folder from ``KDLAB_DATA``, or None when unset."""
    value = os.environ.get("KDLAB_DATA", "").strip()
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The folder for trained models and downloads (created on demand)."""
    value = os.environ.get("KDLAB_CACHE", "").strip()
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "kdlab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a ``torch.Generator`` seeded the same way."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, or the best available one: CUDA, then Apple MPS, then CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
