"""Test of the archived one-off script backfill_train_accuracy.py (not in the main suite).

    .venv/bin/python -m pytest -q scripts/archive/test_backfill_train_accuracy.py
"""

import importlib.util
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from conftest import toy  # noqa: E402

from microcircuit import data, training  # noqa: E402

KW = dict(layers=[16, 24, 4], rule="microcircuit", T=6, seed=1, lr=3e-3, encoding="bernoulli", surrogate="fast_sigmoid")


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backfill_gives_what_the_run_would_have_logged(tmp_path, monkeypatch):
    """the script on a run made without training-set evaluation
    writes the same numbers into its last epoch as a run that evaluated as it went."""
    backfill = load_script("backfill_train_accuracy")
    x, y = toy(256)
    monkeypatch.setattr(data, "load_dataset", lambda name, split, flatten=True: (x, y))
    monkeypatch.setattr(data, "data_checksum", lambda name, split: "abc")
    results, runs = tmp_path / "results", tmp_path / "runs"
    kw = dict(KW, epochs=2, quiet=True, dataset="toy", data_checksum="abc")
    live = training.run((x, y), (x, y), tmp_path / "live", train_eval_samples=100, **kw)
    training.run((x, y), (x, y), results / "toy" / "p" / "microcircuit", train_eval_samples=0,
                 checkpoint=runs / "p" / "microcircuit.npz", **kw)
    found = list(backfill.candidates(results, runs))
    assert [c.name for c, _ in found] == ["log.json"]
    backfill.backfill(*found[0], samples=100)
    log = json.loads(found[0][0].read_text())
    assert log["epochs"][-1]["train_accuracy"] == live["epochs"][-1]["train_accuracy"]
    assert log["epochs"][-1]["train_eval_loss"] == live["epochs"][-1]["train_eval_loss"]
    assert "train_accuracy" not in log["epochs"][0] and log["backfilled"][0]["epoch"] == 2
    assert not list(backfill.candidates(results, runs))  # done once
