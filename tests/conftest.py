"""Shared test helpers."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
from reliability_helpers import KW, SMALL, cli
from reliability_helpers import toy as _toy

from microcircuit import Network, training

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


# ------------------------------------------------ runs for the hostile-user tests (issue 15)
@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One finished 1-epoch CLI run on the MNIST sample (copied by each test that needs one)."""
    out = tmp_path_factory.mktemp("base") / "run"
    proc = cli("train", *SMALL, "--epochs", "1", "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture
def run_copy(base_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base_run, out)
    return out


@pytest.fixture
def api_run(tmp_path):
    """A finished 1-epoch API run of the toy network (its folder)."""
    x, y = _toy()
    training.run((x, y), (x, y), tmp_path / "api", epochs=1, quiet=True, **KW)
    return tmp_path / "api"


@pytest.fixture
def saved(tmp_path):
    net = Network([16, 8, 4], seed=0)
    net.partial_fit(*_toy(64))
    return net.save(tmp_path / "net.npz")
