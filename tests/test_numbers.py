"""Numbers checked (issue 26, item 5): a checkpoint holding NaN or inf is never saved nor loaded
(a damaged one is named as such in one line); float inputs that look like raw pixels warn as
integer ones do; ``Network.fit`` and ``partial_fit`` stop on divergence or saturation as a
training run does, without changing a run that does not diverge."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from reliability_helpers import SMALL, cli, snapshot, user_error

import microcircuit.network as network_module
from microcircuit import DivergenceError, Network, backend
from microcircuit.checkpoint import CheckpointError
from microcircuit.rules import network_settings


def _toy(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 16)).astype(np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(int) + 2 * (x[:, 0] > 0.5)
    return x, y


KW = dict(layers=[16, 12, 4], rule="bp", T=4, seed=1, lr=3e-3, surrogate="fast_sigmoid")


def _damage(path, key, value):
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays[key] = arrays[key].copy()
    arrays[key].flat[3] = value
    np.savez(path, **arrays)


# ------------------------------------------------------------------ checkpoints
@pytest.mark.parametrize("key, value, said", [
    ("W_0", np.nan, "non-finite weights (layer 0 W)"),
    ("b_1", np.inf, "non-finite weights (layer 1 b)"),
    ("opt_v_0", -np.inf, "non-finite values (the optimiser's v_0)"),
])
def test_load_of_a_checkpoint_holding_nan_or_inf_names_it_damaged(tmp_path, key, value, said):
    net = Network(**KW)
    net.partial_fit(*_toy())
    path = net.save(tmp_path / "net.npz")
    _damage(path, key, value)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {path} holds {said}: it is damaged")):
        Network.load(path)


def test_save_of_a_network_holding_nan_keeps_the_last_good_file(tmp_path):
    net = Network(**KW)
    net.partial_fit(*_toy())
    path = net.save(tmp_path / "net.npz")
    good = path.read_bytes()
    net.plastic_layers[1].W[0, 0] = np.nan
    with pytest.raises(CheckpointError, match=r"not written.*layer \d W.*diverged"):
        net.save(path)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["net.npz"]


def test_cli_resume_of_a_checkpoint_with_a_nan_weight_is_one_line_and_changes_nothing(tmp_path):
    out = tmp_path / "run"
    assert cli("train", *SMALL, "--epochs", "1", "--out", out).returncode == 0
    _damage(out / "checkpoint.npz", "W_1", np.nan)
    before = snapshot(out)
    proc = cli("train", *SMALL, "--epochs", "2", "--out", out, "--resume")
    line = user_error(proc, "train", str(out / "checkpoint.npz"), "damaged", "layer 1 W")
    assert "learning rate" not in line and "--lr" not in line  # not blamed on the learning rate
    assert snapshot(out) == before


# ------------------------------------------------------------------ inputs
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_images_in_0_255_warn_as_integer_ones_do(dtype):
    x, _ = _toy(64)
    net = Network([16, 8, 4], seed=0)
    with pytest.warns(UserWarning, match="up to 255.*x / 255"):
        net.predict(np.round(x * 255).astype(dtype))


def test_inputs_in_0_1_do_not_warn():
    x, y = _toy(64)
    net = Network([16, 8, 4], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net.predict(x.astype(np.float64))
        net.evaluate(np.ones_like(x), y)  # 1 itself is in range


# ------------------------------------------------------------------ divergence in the API
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_fit_stops_on_saturation_as_a_training_run_does(method):
    x, y = _toy()
    net = Network(**dict(KW, lr=1e3), epochs=3)
    with pytest.raises(DivergenceError, match="epoch 1: layer .* saturated.*lr=1000"):
        getattr(net, method)(x, y)
    assert net.epoch_ == 0  # the failing epoch is not counted, as for a non-finite loss


def test_raw_pixels_that_saturate_a_network_are_named_as_the_cause():
    x, y = _toy(64)
    net = Network([16, 8, 4], seed=0)
    with pytest.warns(UserWarning, match="255"), pytest.raises(DivergenceError, match="up to 255.*x / 255"):
        net.partial_fit(np.round(x * 255), y)


@pytest.mark.parametrize("rule", ["bp", "microcircuit-spiking"])
def test_the_saturation_check_changes_no_result(monkeypatch, rule):
    """Two epochs with the check and without it (patched out): the same weights, bit for bit."""
    x, y = _toy()
    settings = dict(KW, **network_settings(rule), epochs=2)
    checked = Network(**settings).fit(x, y)
    monkeypatch.setattr(network_module, "saturation", lambda *a, **k: None)
    unchecked = Network(**settings).fit(x, y)
    for a, b in zip(checked.plastic_layers, unchecked.plastic_layers):
        assert np.array_equal(backend.to_numpy(a.W), backend.to_numpy(b.W))
        assert np.array_equal(backend.to_numpy(a.b), backend.to_numpy(b.b))
    assert checked.history_ == unchecked.history_


def test_a_healthy_fit_is_not_stopped():
    x, y = _toy()
    net = Network(**dict(KW, weight_scale=0.05), epochs=2).fit(x, y)  # a silent start is not saturation
    assert net.epoch_ == 2
