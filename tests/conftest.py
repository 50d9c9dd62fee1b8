"""Shared test helpers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def load_script():
    """Import ``scripts/<name>.py`` as a module (the scripts are not a package)."""

    def load(name):
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def toy(n: int, seed: int = 0):
    """A small 4-class problem on 16 inputs that every rule learns in a few epochs
    (``from conftest import toy``)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16)).astype(np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(int) + 2 * (x[:, 0] > 0.5)
    return x, y
