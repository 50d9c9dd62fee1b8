"""Runs: checkpoints, resume, divergence, provenance, the command line, MNIST sample accuracy."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import toy

from microcircuit import DivergenceError, Network, backend, data, presets, training
from microcircuit.config import is_dense


KW = dict(layers=[16, 24, 4], rule="microcircuit", T=6, seed=1, lr=3e-3, encoding="bernoulli", surrogate="fast_sigmoid")


@pytest.mark.parametrize("homeostasis", [{}, dict(threshold_adaptation=0.05, target_rate=0.2)], ids=["off", "on"])
def test_resume_equals_uninterrupted_run(tmp_path, monkeypatch, homeostasis):
    """Train 2 epochs, interrupt, resume to 4: same weights (and, with intrinsic plasticity on,
    the same thresholds) as a straight 4-epoch run."""
    x, y = toy(256)
    KW = {**globals()["KW"], **homeostasis}
    straight = training.run((x, y), (x, y), tmp_path / "a", epochs=4, quiet=True, **KW)

    real = Network.partial_fit
    calls = {"n": 0}

    def interrupted(self, *a):
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the session ends in the middle of epoch 3
        calls["n"] += 1
        return real(self, *a)

    monkeypatch.setattr(Network, "partial_fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.run((x, y), (x, y), tmp_path / "b", epochs=4, quiet=True, **KW)
    monkeypatch.setattr(Network, "partial_fit", real)
    assert json.loads((tmp_path / "b" / "log.json").read_text())["epochs"][-1]["epoch"] == 2
    resumed = training.run((x, y), (x, y), tmp_path / "b", epochs=4, quiet=True, resume=True, **KW)

    a = Network.load(tmp_path / "a" / "checkpoint.npz")
    b = Network.load(tmp_path / "b" / "checkpoint.npz")
    assert a.epoch_ == b.epoch_ == 4
    for la, lb in zip(a.plastic_layers, b.plastic_layers):
        np.testing.assert_array_equal(backend.to_numpy(la.W), backend.to_numpy(lb.W))
        assert (la.theta is None) == (lb.theta is None)
        if la.theta is not None:
            np.testing.assert_array_equal(backend.to_numpy(la.theta), backend.to_numpy(lb.theta))
    assert (a.plastic_layers[0].theta is None) == (not homeostasis)
    assert [r["test_accuracy"] for r in straight["epochs"]] == [r["test_accuracy"] for r in resumed["epochs"]]
    # each call that trained is a segment with its own provenance; the first call's stays on top
    segments = [(s["from_epoch"], s["to_epoch"]) for s in resumed["segments"]]
    assert segments == [(0, 2), (2, 4)] and resumed["provenance"]["train_samples"] == len(x)
    before = (tmp_path / "b" / "log.json").read_text()
    training.run((x, y), (x, y), tmp_path / "b", epochs=4, quiet=True, resume=True, **KW)
    assert (tmp_path / "b" / "log.json").read_text() == before  # nothing left to train: unchanged


def test_existing_run_is_not_overwritten(tmp_path):
    x, y = toy(64)
    training.run((x, y), None, tmp_path, epochs=1, quiet=True, **KW)
    with pytest.raises(FileExistsError, match="resume"):
        training.run((x, y), None, tmp_path, epochs=1, quiet=True, **KW)


def test_resume_refuses_to_leave_a_gap_in_the_log(tmp_path):
    """A checkpoint that carries no log (as written before checkpoints carried one), beside a
    deleted log.json: resuming it would write a log without its first epochs, so it is refused."""
    x, y = toy(64)
    training.run((x, y), None, tmp_path, epochs=2, quiet=True, **KW)
    ckpt = tmp_path / "checkpoint.npz"
    Network.load(ckpt).save(ckpt)  # the same network, no run log inside
    (tmp_path / "log.json").unlink()
    with pytest.raises(FileExistsError, match="has trained 2 epochs but the records of only 0 survive"):
        training.run((x, y), None, tmp_path, epochs=3, resume=True, quiet=True, **KW)
    assert not (tmp_path / "log.json").exists()  # nothing written


def test_log_has_provenance_and_records(tmp_path):
    x, y = toy(64)
    log = training.run((x, y), (x, y), tmp_path, epochs=2, quiet=True, dataset="toy", data_checksum="abc", **KW)
    on_disk = json.loads((tmp_path / "log.json").read_text())
    assert on_disk == json.loads(json.dumps(log))
    prov = on_disk["provenance"]
    assert prov["seed"] == 1 and prov["data_checksum"] == "abc" and prov["backend"] == backend.name()
    assert prov["library_version"] and prov["dtype"] == "float32"
    assert on_disk["status"] == "done" and len(on_disk["epochs"]) == 2
    assert len(on_disk["epochs"][0]["alignment_deg"]) == 2
    assert on_disk["wall_seconds"] > 0
    header = (tmp_path / "log.csv").read_text().splitlines()[0]
    assert "test_accuracy" in header and "train_loss" in header
    assert not list(tmp_path.glob(".*tmp"))


def test_log_records_accuracy_on_the_first_training_images(tmp_path, monkeypatch):
    """``train_accuracy`` is the final network's hit rate on the first N training images,
    without augmentation, evaluated on exactly those images (not on others)."""
    x, y = toy(256)
    xt, yt = toy(128, seed=5)
    seen = []
    evaluate = Network.evaluate

    def spy(self, xs, ys, *args, **kwargs):
        seen.append(np.asarray(xs).copy())
        return evaluate(self, xs, ys, *args, **kwargs)

    monkeypatch.setattr(Network, "evaluate", spy)
    log = training.run((x, y), (xt, yt), tmp_path, epochs=2, quiet=True, train_eval_samples=100, **KW)
    monkeypatch.undo()
    evaluated = [xs for xs in seen if len(xs) == 100]
    assert len(evaluated) == 2 and all(np.array_equal(xs, x[:100]) for xs in evaluated)  # once per epoch
    net = Network.load(tmp_path / "checkpoint.npz")
    hits = (net.predict(x[:100]) == y[:100]).mean()
    last = log["epochs"][-1]
    assert last["train_accuracy"] == pytest.approx(hits) and 0 < last["train_accuracy"] < 1
    assert last["test_accuracy"] == pytest.approx((net.predict(xt) == yt).mean())
    assert log["provenance"]["train_eval_samples"] == 100
    assert "train_accuracy" in (tmp_path / "log.csv").read_text().splitlines()[0]

    off = training.run((x, y), None, tmp_path / "off", epochs=1, quiet=True, train_eval_samples=0, **KW)
    assert "train_accuracy" not in off["epochs"][0]
    with pytest.raises(ValueError, match="train_eval_samples"):
        training.run((x, y), None, tmp_path / "bad", epochs=1, quiet=True, train_eval_samples=-1, **KW)


def test_training_set_evaluation_leaves_training_unchanged(tmp_path):
    """Evaluating on training images draws from its own noise: the weights are the same without it."""
    x, y = toy(128)
    for n in (0, 64):
        training.run((x, y), None, tmp_path / str(n), epochs=2, quiet=True, train_eval_samples=n, augment=1, **KW)
    a, b = (Network.load(tmp_path / n / "checkpoint.npz") for n in ("0", "64"))
    for la, lb in zip(a.plastic_layers, b.plastic_layers):
        np.testing.assert_array_equal(backend.to_numpy(la.W), backend.to_numpy(lb.W))


def test_divergence_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    """The learning rate explodes in epoch 2: the run stops, epoch 1's checkpoint stays."""
    import microcircuit.checkpoint as checkpoint_module
    import microcircuit.network as network_module

    x, y = toy(128)
    kw = dict(KW, rule="bp", optimizer="sgd", momentum=0.0, lr=1e-3, lr_schedule="constant", loss="mse")
    saved = {}
    real_get_state = checkpoint_module.get_state

    def get_state(net):  # what every checkpoint write reads
        saved[net.epoch_] = backend.to_numpy(net.layers[0].W).copy()
        return real_get_state(net)

    monkeypatch.setattr(checkpoint_module, "get_state", get_state)
    monkeypatch.setattr(network_module, "schedule", lambda kind, lr, progress, warmup: lr if progress < 0.5 else 1e38)
    with pytest.raises(DivergenceError, match="Lower the learning rate"):
        training.run((x, y), None, tmp_path, epochs=2, quiet=True, **kw)
    assert list(saved) == [1]
    kept = Network.load(tmp_path / "checkpoint.npz")
    assert kept.epoch_ == 1
    np.testing.assert_array_equal(backend.to_numpy(kept.layers[0].W), saved[1])
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["status"].startswith("diverged") and [r["epoch"] for r in log["epochs"]] == [1]


def test_cli_train_and_resume_on_sample(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "microcircuit", "train", "--dataset", "mnist", "--sample", "--limit", "300",
           "--layers", "784,32,10", "--T", "4", "--epochs", "1", "--out", str(out), "--quiet"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[-1])["epoch"] == 1
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode != 0 and "resume" in again.stderr
    cmd[cmd.index("--epochs") + 1] = "2"
    resumed = subprocess.run(cmd + ["--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    log = json.loads((out / "log.json").read_text())
    assert [r["epoch"] for r in log["epochs"]] == [1, 2]
    assert log["provenance"]["data_checksum"] == data.sample_checksum("mnist", "train")


def test_cli_rejects_unknown_rule(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "microcircuit", "train", "--dataset", "mnist", "--sample",
                           "--rule", "hebb", "--out", str(tmp_path / "r"), "--quiet"], capture_output=True, text=True)
    assert proc.returncode != 0 and "unknown rule" in proc.stderr


@pytest.mark.slow
def test_microcircuit_learns_mnist_sample_within_a_minute():
    """>= 90 % test accuracy on the bundled MNIST sample within 60 s of CPU."""
    x, y = data.load_sample("mnist", "train")
    xt, yt = data.load_sample("mnist", "test")
    net = Network([784, 800, 10], rule="microcircuit", T=8, epochs=12, lr=1e-3, seed=0, surrogate="fast_sigmoid")
    t0 = time.process_time()
    net.fit(x, y)
    cpu = time.process_time() - t0
    acc = net.evaluate(xt, yt)["accuracy"]
    assert acc >= 0.90, acc
    assert cpu <= 60, cpu


def test_run_preset_writes_where_the_book_looks(tmp_path, monkeypatch):
    x, y = toy(64)
    monkeypatch.setitem(presets.PRESETS, "toy-mlp", dict(dataset="mnist", layers=[16, 12, 4], T=4, epochs=2))
    monkeypatch.setattr(data, "load_dataset", lambda name, split, flatten=True, source="full": (x, y))
    log = training.run_preset("toy-mlp", "microcircuit-spiking", results=tmp_path / "res", runs=tmp_path / "runs")
    assert (tmp_path / "res" / "mnist" / "toy-mlp" / "microcircuit-spiking" / "seed-0" / "log.json").exists()
    assert (tmp_path / "runs" / "toy-mlp" / "microcircuit-spiking" / "seed-0.npz").exists()
    assert log["config"]["mode"] == "spiking" and log["config"]["rule"] == "microcircuit"
    assert log["provenance"]["data_checksum"] == data.data_checksum("mnist", "train")
    again = training.run_preset("toy-mlp", "microcircuit-spiking", results=tmp_path / "res", runs=tmp_path / "runs")
    assert again["epochs"] == log["epochs"]  # finished: resumed, nothing retrained
    # a finished log is kept even where its checkpoint is gone (runs/ is not committed) ...
    (tmp_path / "runs" / "toy-mlp" / "microcircuit-spiking" / "seed-0.npz").unlink()
    assert training.run_preset("toy-mlp", "microcircuit-spiking", results=tmp_path / "res",
                               runs=tmp_path / "runs")["epochs"] == log["epochs"]
    # ... and an unfinished one is refused rather than overwritten
    with pytest.raises(FileExistsError, match="holds 2 epochs but its checkpoint"):
        training.run_preset("toy-mlp", "microcircuit-spiking", results=tmp_path / "res", runs=tmp_path / "runs",
                            epochs=3)


def test_run_settings_name_the_rule_and_its_mode():
    dataset, epochs, settings = presets.run_settings("mnist-mlp", "microcircuit-spiking", seed=3)
    assert (dataset, epochs) == ("mnist", presets.PRESETS["mnist-mlp"]["epochs"])
    assert (settings["rule"], settings["mode"], settings["T_e"], settings["seed"]) == ("microcircuit", "spiking", 16, 3)
    assert "dataset" not in settings and "epochs" not in settings
    assert presets.run_settings("mnist-mlp", "fa")[2]["rule"] == "fa"
    with pytest.raises(ValueError, match="unknown rule 'hebb'"):
        presets.run_settings("mnist-mlp", "hebb")


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_every_preset_builds_a_network_that_learns_a_step(name):
    """Each preset is a valid ``Network`` for its dataset's shape, and one step moves every
    layer (a layer whose input is silent at initialisation would not move: its update is
    ``e r_pre``; the CIFAR-10 presets' ``weight_scale`` is chosen to avoid that)."""
    settings = presets.preset(name)
    dataset, epochs = settings.pop("dataset"), settings.pop("epochs")
    shape = {"mnist": (784,), "fashion-mnist": (784,), "cifar10": (3, 32, 32)}[dataset]
    flat = is_dense(settings["layers"])
    assert tuple(np.atleast_1d(settings["layers"][0])) == shape and flat == (len(shape) == 1)
    net = Network(epochs=epochs, seed=0, **settings)
    assert net.n_classes == 10
    rng = np.random.default_rng(0)
    x = rng.random((4, *shape)).astype(np.float32)
    before = [layer.W.copy() for layer in net.plastic_layers]
    loss = net.partial_fit(x, np.arange(4))
    assert np.isfinite(loss)
    assert all(not np.array_equal(b, layer.W) for b, layer in zip(before, net.plastic_layers))
    assert net.predict(x).shape == (4,)
