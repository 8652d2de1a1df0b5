"""Run-time switches shared by the course: fast mode, seeding, device, folders, progress
bars, and keeping library warnings off stderr (where nbgrader counts any output as a failed
test).

Environment variables (all optional):

- ``KDLAB_FAST=1``: fast mode, small subsets and few steps (tests and CI use it).
- ``KDLAB_DATA``: a folder holding data sets (searched before system folders).
- ``KDLAB_CACHE``: where trained models and downloads are kept
  (default ``~/.cache/kdlab``).
- ``KDLAB_OFFLINE=1``: never try to download anything.
- ``KDLAB_PROGRESS=0`` (or ``1``): no progress bars (or bars even in fast mode) where a
  function is left to decide (:func:`progress_default`).
- ``KDLAB_CHECK_VALUES=1``: loss inputs checked for NaN and bad labels synchronously on an
  accelerator too (slower; for debugging).
- ``KDLAB_DEVICE``: the device to train on (``cpu``, ``cuda``, ``cuda:1``, ``mps``) instead
  of the automatic choice of :func:`pick_device` (CUDA, then Apple MPS, then CPU); a device
  this machine lacks fails at once, naming the variable.

Devices: a model computes where its weights are, so the helpers that run a model (evaluation,
a model's logits over a data set) follow it (:func:`device_of`) and move each batch there;
data stay on the host (:data:`HOST`) until a batch is used.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import random
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

# Loggers that print notices to stderr from library internals the course triggers:
# torchao's import (an Enum registered as a pytree constant, also reached by importing
# transformers) and the C++ toolchain probe of torch.utils.benchmark and torch.compile.
NOISY_LOGGERS = ("torch.utils._pytree", "torch.utils.cpp_extension")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def fast_mode() -> bool:
    """True when ``KDLAB_FAST`` asks for small subsets and few steps."""
    return _flag("KDLAB_FAST")


def offline() -> bool:
    """True when ``KDLAB_OFFLINE`` forbids downloads."""
    return _flag("KDLAB_OFFLINE")


def check_values() -> bool:
    """True when ``KDLAB_CHECK_VALUES`` asks the losses to read their inputs' values on every
    device (see :mod:`kdlab.losses._checks`)."""
    return _flag("KDLAB_CHECK_VALUES")


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


HOST = torch.device("cpu")
"""The host: main memory and the CPU. Data sets, checkpoints read from disk and models
without weights live here, and torch.ao's int8 kernels run only here. Named, not written as
a string, so that each place that means the host says so (the tests look for stray ones)."""


def _available_devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names += ["cuda"] + ([f"cuda:{i}" for i in range(count)] if count > 1 else [])
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def _device_from_env(value: str) -> torch.device:
    """``KDLAB_DEVICE`` checked now: a typo or a missing GPU fails here with the fix, rather
    than as a device error deep inside the first training step."""
    fix = (
        f"set KDLAB_DEVICE to one of {', '.join(_available_devices())}, or unset it to let "
        "kdlab choose"
    )
    try:
        device = torch.device(value.lower())
    except RuntimeError:
        raise ValueError(f"KDLAB_DEVICE={value!r} is not a device name; {fix}") from None
    if device.type == "cpu":
        return device
    backend = getattr(torch, device.type, None)
    if device.type == "mps":
        backend = getattr(torch.backends, "mps", None)
    is_available = getattr(backend, "is_available", None)
    if is_available is None or not is_available():
        raise ValueError(f"KDLAB_DEVICE={value!r}, but this machine has no {device.type}; {fix}")
    count = getattr(backend, "device_count", None)
    if device.index is not None and count is not None and device.index >= count():
        raise ValueError(
            f"KDLAB_DEVICE={value!r}, but this machine has {count()} {device.type} device(s), "
            f"numbered from 0; {fix}"
        )
    return device


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device; else ``KDLAB_DEVICE``'s (checked: one this machine lacks raises a
    ValueError naming the variable); else the best available one: CUDA, then Apple MPS, then
    CPU."""
    if device is not None:
        return torch.device(device)
    value = os.environ.get("KDLAB_DEVICE", "").strip()
    if value:
        return _device_from_env(value)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return HOST


def device_of(model: torch.nn.Module) -> torch.device:
    """Where ``model`` computes: the device of its first parameter, else of its first buffer,
    else :data:`HOST` (a model without either, say torch.ao's dynamic int8 one, runs on the
    host). Helpers that run a model move each batch here, so they work wherever training
    left it."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return HOST


@contextlib.contextmanager
def devices_restored(*models: torch.nn.Module | None) -> Iterator[None]:
    """Inside the block, models may move (a Distiller moves its student and teacher to its
    device, in place); on leaving it, each goes back to where it was (None is skipped). So a
    recipe hands models back where the caller had them, and a notebook cell that calls
    ``model(x)`` with host data works on a GPU machine as on a laptop."""
    before = [(m, device_of(m)) for m in models if m is not None]
    try:
        yield
    finally:
        for model, device in before:
            if device_of(model) != device:
                model.to(device)


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Inside the block, warnings are ignored and :data:`NOISY_LOGGERS` pass only errors;
    both are restored afterwards.

    A logger filter, not ``setLevel``: changing a level clears every logger's cache, which
    costs more than a small int8 forward pass.
    """
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.addFilter(_errors_only)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(_errors_only)


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"{category.__name__}: {message}", file=sys.stdout)


class _StdoutHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"{record.levelname} ({record.name}): {record.getMessage()}", file=sys.stdout)


def warnings_to_stdout() -> None:
    """For the rest of the session (an assignment's set-up cell): print warnings, and the log
    messages of ``transformers`` when it is installed, on stdout, and drop the notices of
    :data:`NOISY_LOGGERS`. nbgrader gives zero to a test cell that writes to stderr; this
    way a harmless warning costs no points, and the student still reads it."""
    warnings.showwarning = _print_warning
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _errors_only not in logger.filters:
            logger.addFilter(_errors_only)
    if importlib.util.find_spec("transformers") is not None:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_default_handler()
        root = transformers_logging.get_logger()
        if not any(isinstance(h, _StdoutHandler) for h in root.handlers):
            transformers_logging.add_handler(_StdoutHandler())


def progress_default(progress: bool | None = None) -> bool:
    """Whether a loop shows a progress bar: ``progress`` itself when it is True or False;
    for None, the course's rule: off when ``KDLAB_PROGRESS`` is ``0`` (on when ``1``),
    otherwise on in full mode and off in fast mode (tests and CI)."""
    if progress is not None:
        return bool(progress)
    value = os.environ.get("KDLAB_PROGRESS", "").strip().lower()
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    return not fast_mode()


def progress_bar(iterable: Iterable | None = None, *, progress: bool | None = None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, switched off unless
    :func:`progress_default` of ``progress`` says on: a widget in a notebook, text on stderr
    in a terminal. A bar that is off prints nothing."""
    return tqdm(iterable, disable=not progress_default(progress), **kwargs)


def progress_print(message: str) -> None:
    """Print ``message`` on stdout, flushed, above any progress bar (not through it)."""
    tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()
