"""What a learner's machine has: versions, compute device, threads and data sets."""

from __future__ import annotations

import os
import platform
from importlib import metadata

import torch

from kdlab import runtime
from kdlab.data import find_mnist_family
from kdlab.data.scenes import find_aerial
from kdlab.data.sst2 import find_sst2

__all__ = ["environment_report", "PACKAGES"]

PACKAGES = (
    "torch",
    "torchvision",
    "torchao",
    "torchmetrics",
    "transformers",
    "tokenizers",
    "nbgrader",
    "numpy",
    "matplotlib",
    "pandas",
    "ipywidgets",
    "tqdm",
)
"""The distributions whose versions ``kdlab check`` prints (``pyproject.toml`` declares their
floors; ``constraints.txt`` pins the versions of the last green run)."""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _data_status() -> dict[str, str]:
    status = {}
    for name in ("mnist", "fashion-mnist"):
        folder = find_mnist_family(name)
        if folder:
            status[name] = str(folder)
        elif runtime.offline():
            status[name] = "not found (offline: KDLAB_OFFLINE=1 forbids the download)"
        else:
            status[name] = "not found (downloaded on first use when online)"
    for name, find in (("dubai-aerial", find_aerial), ("sst2", find_sst2)):
        folder = find()
        status[name] = str(folder) if folder else "not found (set KDLAB_DATA)"
    return status


def _torch_build() -> str:
    """Which PyTorch wheel this is: CUDA's, ROCm's, or CPU-only (``make setup TORCH=cpu``)."""
    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip}"
    return "CPU only"


def _device() -> tuple[str, str]:
    """The device kdlab trains on (:func:`kdlab.runtime.pick_device`, which honours
    ``KDLAB_DEVICE``) and its name; a ``KDLAB_DEVICE`` this machine lacks is reported, not
    raised, since this is where a learner looks for what is wrong."""
    try:
        device = runtime.pick_device()
    except ValueError as error:
        return f"none: {error}", "-"
    if device.type == "cuda":
        return str(device), torch.cuda.get_device_name(device)
    if device.type == "mps":
        return str(device), "Apple GPU (MPS)"
    return str(device), platform.processor() or "the host CPU"


def environment_report() -> dict[str, dict[str, str]]:
    """Nested dict: ``software``, ``compute``, ``data`` and ``settings``, all as text."""
    software = {"python": platform.python_version()} | {p: _version(p) for p in PACKAGES}
    device, device_name = _device()
    compute = {
        "device": device,
        "device name": device_name,
        "torch build": _torch_build(),
        "cpu threads used by torch": str(torch.get_num_threads()),
        "CUDA available": str(torch.cuda.is_available()),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    settings = {
        "fast mode (KDLAB_FAST)": str(runtime.fast_mode()),
        "device (KDLAB_DEVICE)": os.environ.get("KDLAB_DEVICE", "").strip() or "unset",
        "data folder (KDLAB_DATA)": str(runtime.data_dir() or "unset"),
        "cache folder (KDLAB_CACHE)": str(runtime.cache_dir()),
        "offline (KDLAB_OFFLINE)": str(runtime.offline()),
    }
    return {"software": software, "compute": compute, "data": _data_status(), "settings": settings}
