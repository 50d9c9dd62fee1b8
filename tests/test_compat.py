"""Files written before the library's current layout still load: a checkpoint and a log."""

import json
import shutil
from pathlib import Path

import numpy as np

from microcircuit import Network, report

FIXTURES = Path(__file__).parent / "fixtures"


def _inputs():
    rng = np.random.default_rng(0)
    x = rng.random((48, 1, 8, 8)).astype(np.float32)
    return x, rng.integers(0, 4, 48)


def test_a_checkpoint_of_211a2ea_loads_and_continues_as_it_would_have():
    expected = json.loads((FIXTURES / "checkpoint-211a2ea.json").read_text())
    x, y = _inputs()
    net = Network.load(FIXTURES / "checkpoint-211a2ea.npz")
    assert net.epoch_ == 1 and net.T == 4
    rates, v = net.scores(x[:8])
    np.testing.assert_allclose(rates, expected["rates"], atol=1e-6)
    np.testing.assert_allclose(v, expected["v"], atol=1e-5)
    loss = net.partial_fit(x, y)  # same data order, augmentation and error-cell noise
    assert abs(loss - expected["loss_epoch2"]) < 1e-5
    np.testing.assert_allclose(net.scores(x[:8])[0], expected["rates_after_epoch2"], atol=1e-6)


def test_a_log_of_211a2ea_is_read_in_both_layouts(tmp_path):
    log = json.loads((FIXTURES / "log-211a2ea.json").read_text())
    last = log["epochs"][-1]
    for folder in ("mnist/mnist-mlp/bp/seed-0", "mnist/mnist-mlp/bp"):  # with seeds, and before them
        root = tmp_path / folder.replace("/", "-")
        (root / folder).mkdir(parents=True)
        shutil.copy(FIXTURES / "log-211a2ea.json", root / folder / "log.json")
        res = report.load_results(root)
        assert [(r["rule"], r["seed"]) for r in res.runs] == [("bp", 0)] and not res.problems
        row = next(r for r in report.accuracy_table(res) if r["rule"] == "bp")
        assert row["final_accuracy"] == last["test_accuracy"] and row["epochs"] == last["epoch"]
