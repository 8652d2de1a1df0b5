"""Test-wide settings: fast mode, no downloads, a private cache, a headless plot backend."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["KDLAB_FAST"] = "1"
os.environ["KDLAB_OFFLINE"] = "1"
# One thread: the tests check correctness, and on a shared 2-core machine a second
# OpenMP thread waits for a busy core, which made small training steps 100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Models trained by tests go to a fresh folder, never the user's cache."""
    path = tmp_path_factory.mktemp("kdlab-cache")
    os.environ["KDLAB_CACHE"] = str(path)
    return path
