"""Shared fixtures: deterministic seeds, the data root, tiny ViTs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# The test session is an entry point (slimlib.settings): relative SLIMLIB_* paths mean "relative
# to where pytest was launched" (CI: SLIMLIB_DATA=../shared/data from the repository root).
# Tests start CLIs, books and kernels in other folders and hand them this environment, so the
# paths are made absolute once, here, as slimlib's own entry points do for their children.
for _key in ("SLIMLIB_DATA", "SLIMLIB_CACHE", "SLIMLIB_RESULTS", "SLIMLIB_WEIGHTS"):
    if os.environ.get(_key) and not Path(os.environ[_key]).expanduser().is_absolute():
        os.environ[_key] = str(Path(os.environ[_key]).expanduser().resolve())


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds legacy global RNG users too
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real embedded data root; tests that use it skip with a reason when unset."""
    value = os.environ.get("SLIMLIB_DATA")
    if not value:
        pytest.skip("SLIMLIB_DATA is not set: real-data tests need the embedded data root "
                    "(CI points it at ../shared/data)")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"SLIMLIB_DATA={value!r} is not a folder")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Keep caches and results of tests out of the user's folders.

    Tests that want the shared, session-wide pretrained checkpoints use the
    ``SLIMLIB_TEST_CACHE`` environment variable instead (see tests of slimlib.train).
    """
    monkeypatch.setenv("SLIMLIB_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("SLIMLIB_RESULTS", str(tmp_path_factory.mktemp("results")))
    # tests that need the real weights root read it at import (tests/models/test_galileo.py)
    monkeypatch.delenv("SLIMLIB_WEIGHTS", raising=False)
