"""What a learner's machine has: versions, compute device, threads and data sets."""

from __future__ import annotations

import platform
from importlib import metadata

import torch

from kdlab import runtime
from kdlab.data import find_mnist_family
from kdlab.data.scenes import find_aerial
from kdlab.data.sst2 import find_sst2

__all__ = ["environment_report", "PACKAGES"]

PACKAGES = ("torch", "torchvision", "numpy", "matplotlib", "pandas", "ipywidgets", "tqdm")


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


def environment_report() -> dict[str, dict[str, str]]:
    """Nested dict: ``software``, ``compute``, ``data`` and ``settings``, all as text."""
    software = {"python": platform.python_version()} | {p: _version(p) for p in PACKAGES}
    compute = {
        "device": str(runtime.pick_device()),
        "cpu threads used by torch": str(torch.get_num_threads()),
        "CUDA available": str(torch.cuda.is_available()),
        "machine": f"{platform.system()} {platform.machine()}",
    }
    settings = {
        "fast mode (KDLAB_FAST)": str(runtime.fast_mode()),
        "data folder (KDLAB_DATA)": str(runtime.data_dir() or "unset"),
        "cache folder (KDLAB_CACHE)": str(runtime.cache_dir()),
        "offline (KDLAB_OFFLINE)": str(runtime.offline()),
    }
    return {"software": software, "compute": compute, "data": _data_status(), "settings": settings}
